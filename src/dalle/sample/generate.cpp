#include "dalle/sample/generate.h"

#include "dalle/util/torch_api.h"

#include <algorithm>
#include <cstdio>

#include "dalle/rerank/reranker.h"
#include "dalle/train/checkpoint.h"
#include "dalle/util/error.h"

namespace dalle {

torch::Tensor encode_caption(const Bundle& bundle, const std::string& caption) {
  const PriorConfig& p = bundle.config.prior;
  const std::vector<int64_t> ids = pad_text(bundle.tokenizer.encode(caption), p.text_len, p.text_vocab);
  return torch::tensor(ids, torch::kLong).unsqueeze(0);
}

torch::Tensor init_image_tokens(Bundle& bundle, const Image& image, int rows) {
  const int grid = bundle.config.vae.grid();
  if (rows < 1 || rows >= grid)
    throw Error("init rows must be in 1.." + std::to_string(grid - 1) + " (the model's token grid has " +
                std::to_string(grid) + " rows), got " + std::to_string(rows));
  torch::InferenceMode inference;
  const Image square = image_square(image, bundle.config.vae.image_size);
  const torch::Tensor tokens = bundle.vae->encode_images(image_to_tensor(square).unsqueeze(0));
  return tokens.flatten(1).narrow(1, 0, int64_t(rows) * grid).cpu().contiguous();
}

std::vector<GeneratedImage> generate_images(Bundle& bundle, const GenerateRequest& request,
                                            const std::function<void(int64_t, int64_t)>& on_progress) {
  if (request.count < 1) throw Error("generate: need at least one image");
  if (request.batch < 1) throw Error("generate: batch size must be at least 1");
  if (request.keep < 0 || request.keep > request.count)
    throw Error("generate: cannot keep " + std::to_string(request.keep) + " of " + std::to_string(request.count) +
                " candidates (K must be at most N)");
  if (request.init_rows != 0 && request.init_image.width == 0)
    throw Error("generate: init rows given without an init image");
  torch::InferenceMode inference;
  const torch::Tensor text = encode_caption(bundle, request.prompt);
  const torch::Tensor uncond = encode_caption(bundle, "");  // all pad ids: the guidance baseline
  const torch::Tensor init = request.init_image.width > 0
                                 ? init_image_tokens(bundle, request.init_image, request.init_rows)
                                 : torch::Tensor();
  const int64_t per_image = bundle.prior->image_tokens();
  const int64_t given = init.defined() ? init.size(1) : 0;
  const int64_t total = (per_image - given) * request.count;
  const int grid = bundle.config.vae.grid();
  std::vector<GeneratedImage> out;
  torch::Generator gen = step_generator(request.seed, 0, 7);
  for (int start = 0; start < request.count; start += request.batch) {
    const int b = std::min(request.batch, request.count - start);
    torch::Tensor tokens = sample_image_tokens(
        bundle_decoder(bundle), text.expand({b, text.size(1)}).contiguous(), request.sampler, gen,
        [&](int64_t i) {
          if (on_progress) on_progress((per_image - given) * start + (i + 1 - given) * b, total);
        },
        uncond.expand({b, uncond.size(1)}).contiguous(),
        init.defined() ? init.expand({b, given}).contiguous() : torch::Tensor());
    const torch::Tensor on_device = bundle.vae->decode_tokens(tokens.view({b, grid, grid}));
    const torch::Tensor scores = bundle.reranker
                                     ? rerank_scores(bundle.reranker, bundle.tokenizer, request.prompt, on_device).cpu()
                                     : torch::zeros({b});
    const torch::Tensor images = on_device.cpu();
    for (int i = 0; i < b; ++i) out.push_back({image_from_tensor(images[i]), start + i, scores[i].item<double>()});
  }
  if (bundle.reranker)
    std::stable_sort(out.begin(), out.end(), [](const GeneratedImage& a, const GeneratedImage& b) { return a.score > b.score; });
  if (request.keep > 0) out.resize(static_cast<size_t>(request.keep));
  return out;
}

PngText generation_png_text(const Bundle& bundle, const std::string& model_label, const GenerateRequest& request,
                            const std::string& init_image_name, const GeneratedImage* g, int rank) {
  const SamplerSettings& s = request.sampler;
  char settings[320];
  std::snprintf(settings, sizeof(settings),
                "temperature: %g, top_k: %d, top_p: %g, cfg_scale: %g, n: %d, k: %d, batch: %d, init_rows: %d",
                s.temperature, s.top_k, s.top_p, s.cfg_scale, request.count, request.keep, request.batch,
                request.init_rows);
  PngText text{{"prompt", request.prompt},
               {"seed", std::to_string(request.seed)},
               {"sampler", settings},
               {"model", model_label}};
  if (!init_image_name.empty()) text.emplace_back("init_image", init_image_name);
  if (g) {
    char score[32];
    std::snprintf(score, sizeof(score), "%.4f", g->score);
    text.emplace_back("candidate", std::to_string(g->index + 1));
    text.emplace_back("rank", std::to_string(rank));
    text.emplace_back("rerank_score", bundle.reranker ? score : "none (no reranker in the bundle)");
  }
  text.emplace_back("software", std::string("dalle.cpp ") + DALLE_VERSION);
  return text;
}

}  // namespace dalle

#include "dalle/sample/generate.h"

#include "dalle/util/torch_api.h"

#include <algorithm>

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
  return tokens.flatten(1).narrow(1, 0, int64_t(rows) * grid).contiguous();
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
        bundle.prior, text.expand({b, text.size(1)}).contiguous(), request.sampler, gen,
        [&](int64_t i) {
          if (on_progress) on_progress((per_image - given) * start + (i + 1 - given) * b, total);
        },
        uncond.expand({b, uncond.size(1)}).contiguous(),
        init.defined() ? init.expand({b, given}).contiguous() : torch::Tensor());
    const torch::Tensor images = bundle.vae->decode_tokens(tokens.view({b, grid, grid}));
    const torch::Tensor scores =
        bundle.reranker ? rerank_scores(bundle.reranker, bundle.tokenizer, request.prompt, images) : torch::zeros({b});
    for (int i = 0; i < b; ++i) out.push_back({image_from_tensor(images[i]), start + i, scores[i].item<double>()});
  }
  if (bundle.reranker)
    std::stable_sort(out.begin(), out.end(), [](const GeneratedImage& a, const GeneratedImage& b) { return a.score > b.score; });
  if (request.keep > 0) out.resize(static_cast<size_t>(request.keep));
  return out;
}

}  // namespace dalle

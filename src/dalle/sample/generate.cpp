#include "dalle/sample/generate.h"

#include "dalle/util/torch_api.h"

#include "dalle/train/checkpoint.h"
#include "dalle/util/error.h"

namespace dalle {

torch::Tensor encode_caption(const Bundle& bundle, const std::string& caption) {
  const PriorConfig& p = bundle.config.prior;
  const std::vector<int64_t> ids = pad_text(bundle.tokenizer.encode(caption), p.text_len, p.text_vocab);
  return torch::tensor(ids, torch::kLong).unsqueeze(0);
}

std::vector<GeneratedImage> generate_images(Bundle& bundle, const GenerateRequest& request,
                                            const std::function<void(int64_t, int64_t)>& on_progress) {
  if (request.count < 1) throw Error("generate: need at least one image");
  if (request.batch < 1) throw Error("generate: batch size must be at least 1");
  torch::InferenceMode inference;
  const torch::Tensor text = encode_caption(bundle, request.prompt);
  const torch::Tensor uncond = encode_caption(bundle, "");  // all pad ids: the guidance baseline
  const int64_t per_image = bundle.prior->image_tokens();
  const int64_t total = per_image * request.count;
  const int grid = bundle.config.vae.grid();
  std::vector<GeneratedImage> out;
  torch::Generator gen = step_generator(request.seed, 0, 7);
  for (int start = 0; start < request.count; start += request.batch) {
    const int b = std::min(request.batch, request.count - start);
    torch::Tensor tokens = sample_image_tokens(
        bundle.prior, text.expand({b, text.size(1)}).contiguous(), request.sampler, gen,
        [&](int64_t i) {
          if (on_progress) on_progress(start * per_image + (i + 1) * b, total);
        },
        uncond.expand({b, uncond.size(1)}).contiguous());
    torch::Tensor images = bundle.vae->decode_tokens(tokens.view({b, grid, grid}));
    for (int i = 0; i < b; ++i) out.push_back({image_from_tensor(images[i]), start + i});
  }
  return out;
}

}  // namespace dalle

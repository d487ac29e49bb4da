#include "dalle/sample/sampler.h"

#include "dalle/util/torch_api.h"

#include "dalle/util/error.h"

namespace dalle {

torch::Tensor sample_logits(const torch::Tensor& logits, const SamplerSettings& s,
                            torch::Generator& gen) {
  if (s.temperature <= 0 || s.top_k == 1) return logits.argmax(-1);
  torch::Tensor l = logits.to(torch::kFloat32) / s.temperature;
  const int64_t vocab = l.size(-1);
  if (s.top_k > 0 && s.top_k < vocab) {
    const torch::Tensor kth = std::get<0>(l.topk(s.top_k, -1)).select(-1, s.top_k - 1).unsqueeze(-1);
    l = l.masked_fill(l < kth, -INFINITY);
  }
  if (s.top_p < 1.0) {
    auto [sorted, order] = l.sort(-1, /*descending=*/true);
    const torch::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
    // Drop a token when the mass before it already reaches top_p, so the token that crosses p
    // stays; the top token always stays (top_p 0 is argmax, not an empty distribution).
    torch::Tensor drop = (cumulative - sorted.softmax(-1)) >= s.top_p;
    drop.select(-1, 0).fill_(false);
    l = l.scatter(-1, order, sorted.masked_fill(drop, -INFINITY));
  }
  return torch::multinomial(l.softmax(-1), 1, /*replacement=*/false, gen).squeeze(-1);
}

torch::Tensor sample_image_tokens(ImageTokenDecoder& decoder, const torch::Tensor& text, const SamplerSettings& s,
                                  torch::Generator& gen, const std::function<void(int64_t)>& on_token,
                                  const torch::Tensor& uncond_text, const torch::Tensor& init) {
  torch::InferenceMode inference;
  const bool guided = s.cfg_scale != 1.0;
  if (guided && (!uncond_text.defined() || uncond_text.sizes() != text.sizes()))
    throw Error("sampling: classifier-free guidance needs an unconditional caption batch");
  const int64_t b = text.size(0);
  const int64_t n = decoder.image_tokens();
  const int64_t given = init.defined() ? init.size(1) : 0;
  if (init.defined() && (init.size(0) != b || given >= n))
    throw Error("sampling: init tokens must be [" + std::to_string(b) + ", P] with P < " + std::to_string(n));
  torch::Tensor out = torch::empty({b, n}, torch::kLong);
  if (given > 0) out.narrow(1, 0, given).copy_(init);
  const int64_t rows = guided ? 2 * b : b;
  torch::Tensor fed = torch::empty({rows}, torch::kLong);  // this step's token for every cache row
  torch::Tensor logits = decoder.start(guided ? torch::cat({text, uncond_text}, 0) : text,
                                       given == 0 ? torch::Tensor() : guided ? torch::cat({init, init}, 0) : init);
  for (int64_t i = given; i < n; ++i) {
    torch::Tensor mixed = logits;
    if (guided) {
      const torch::Tensor cond = logits.narrow(0, 0, b), uncond = logits.narrow(0, b, b);
      mixed = uncond + s.cfg_scale * (cond - uncond);
    }
    torch::Tensor token = sample_logits(mixed, s, gen);
    out.select(1, i).copy_(token);
    if (on_token) on_token(i);
    if (i + 1 < n) {
      fed.narrow(0, 0, b).copy_(token);
      if (guided) fed.narrow(0, b, b).copy_(token);
      logits = decoder.step(fed, i);
    }
  }
  return out;
}

torch::Tensor sample_image_tokens(const Prior& prior, const torch::Tensor& text, const SamplerSettings& s,
                                  torch::Generator& gen, const std::function<void(int64_t)>& on_token,
                                  const torch::Tensor& uncond_text, const torch::Tensor& init) {
  PriorDecoder decoder(prior, WeightFormat::fp32);
  return sample_image_tokens(decoder, text, s, gen, on_token, uncond_text, init);
}

}  // namespace dalle

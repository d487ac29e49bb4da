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
    // Drop a token when the mass before it already reaches top_p (the top token always stays).
    torch::Tensor drop = (cumulative - sorted.softmax(-1)) >= s.top_p;
    l = l.scatter(-1, order, sorted.masked_fill(drop, -INFINITY));
  }
  return torch::multinomial(l.softmax(-1), 1, /*replacement=*/false, gen).squeeze(-1);
}

torch::Tensor sample_image_tokens(Prior& prior, const torch::Tensor& text, const SamplerSettings& s,
                                  torch::Generator& gen, const std::function<void(int64_t)>& on_token,
                                  const torch::Tensor& uncond_text) {
  torch::InferenceMode inference;
  const bool guided = s.cfg_scale != 1.0;
  if (guided && (!uncond_text.defined() || uncond_text.sizes() != text.sizes()))
    throw Error("sampling: classifier-free guidance needs an unconditional caption batch");
  const int64_t b = text.size(0);
  const int64_t n = prior->image_tokens();
  torch::Tensor out = torch::empty({b, n}, torch::kLong);
  KvCache cache = prior->make_cache(guided ? 2 * b : b);
  torch::Tensor logits = prior->prefill(guided ? torch::cat({text, uncond_text}, 0) : text, cache);
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor mixed = logits;
    if (guided) {
      const torch::Tensor cond = logits.narrow(0, 0, b), uncond = logits.narrow(0, b, b);
      mixed = uncond + s.cfg_scale * (cond - uncond);
    }
    torch::Tensor token = sample_logits(mixed, s, gen);
    out.select(1, i).copy_(token);
    if (on_token) on_token(i);
    if (i + 1 < n) logits = prior->step(guided ? torch::cat({token, token}, 0) : token, i, cache);
  }
  return out;
}

}  // namespace dalle

// Token samplers over logits: temperature, top-k, top-p (nucleus). Temperature 1 with no
// truncation is the paper's setting; top-k = 1 is the argmax path.
#pragma once
#include <torch/types.h>

#include <functional>

#include "dalle/prior/decoder.h"

namespace dalle {

struct SamplerSettings {
  double temperature = 1.0;
  int top_k = 0;       // 0 = off
  double top_p = 1.0;  // 1 = off
  // Classifier-free guidance: logits = uncond + cfg_scale * (cond - uncond), where uncond is the
  // prior's prediction for an all-padding caption. 1 = off (plain conditional sampling).
  double cfg_scale = 1.0;
};

// logits [B, V] -> int64 [B].
torch::Tensor sample_logits(const torch::Tensor& logits, const SamplerSettings& settings,
                            torch::Generator& gen);

// Samples all image tokens for padded captions text [B, T] with the KV cache.
// `uncond_text` [B, T] (all pad ids) is needed when settings.cfg_scale != 1; guidance runs the
// conditional and unconditional rows as one batch of 2B.
// `init` [B, P] (optional) fixes the first P image tokens (image-prompted sampling: the given
// rows are prefilled through the cache, never sampled).
// `on_token(i)` is called after image token i of every row is sampled. Returns [B, N].
torch::Tensor sample_image_tokens(ImageTokenDecoder& decoder, const torch::Tensor& text,
                                  const SamplerSettings& settings, torch::Generator& gen,
                                  const std::function<void(int64_t)>& on_token = {},
                                  const torch::Tensor& uncond_text = {}, const torch::Tensor& init = {});
// The same with the fast fp32 decoder of `prior` (decoder.h).
torch::Tensor sample_image_tokens(const Prior& prior, const torch::Tensor& text,
                                  const SamplerSettings& settings, torch::Generator& gen,
                                  const std::function<void(int64_t)>& on_token = {},
                                  const torch::Tensor& uncond_text = {}, const torch::Tensor& init = {});

}  // namespace dalle

// Token samplers over logits: temperature, top-k, top-p (nucleus). Temperature 1 with no
// truncation is the paper's setting; top-k = 1 is the argmax path.
#pragma once
#include <torch/types.h>

#include <functional>

#include "dalle/prior/decoder.h"
#include "dalle/sample/sampler_settings.h"

namespace dalle {

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

// Small fp32 kernels for the fast decoder (decoder.h): residual adds, LayerNorm, GELU and one
// attention head on plain arrays, vectorised with GCC vector extensions and compiled per instruction set
// (AVX-512, AVX2, baseline), picked at load time. GELU and exp use polynomial approximations
// accurate to about 2e-7 (relative for exp, absolute for erf), below fp32 rounding of the sums
// they feed.
#pragma once
#include <cstdint>

namespace dalle {

void vec_add(const float* x, float* y, int64_t n);  // y += x
// y = (x - mean) / sqrt(var + eps) * weight + bias over one row of n.
void vec_layer_norm(const float* x, const float* weight, const float* bias, float eps, int64_t n, float* y);
void vec_gelu(float* x, int64_t n);
void vec_exp_shifted(float* x, int64_t n, float shift);  // x = exp(x - shift) in place (-inf -> 0)  // exact-erf GELU, in place (torch::gelu's default)
// Attention of one query over `heads` heads: keys and values are rows `stride` elements apart,
// head h at offset h * hd. It attends the `text` rows of text_k / text_v (shared by every row
// with the same caption), then the `listed` rows of k / v in `list`. out[h * hd ...] =
// softmax(q_h . k_h * scale) . v_h. Key-major: each key's row is read once for all heads.
// `scores` is scratch for heads * (text + listed) floats. Keys and values are fp32 or bfloat16
// bit patterns (the cache of the bf16 and int8 weight formats: half the bytes to read).
void vec_attend(const float* q, const float* text_k, const float* text_v, int64_t text, const float* k,
                const float* v, const int32_t* list, int64_t listed, int64_t stride, int64_t hd, int64_t heads,
                float scale, float* scores, float* out);
void vec_attend(const float* q, const uint16_t* text_k, const uint16_t* text_v, int64_t text, const uint16_t* k,
                const uint16_t* v, const int32_t* list, int64_t listed, int64_t stride, int64_t hd, int64_t heads,
                float scale, float* scores, float* out);
// fp32 -> bfloat16 bit patterns, rounding to nearest even.
void vec_to_bf16(const float* x, uint16_t* y, int64_t n);

}  // namespace dalle

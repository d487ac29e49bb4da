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
void vec_gelu(float* x, int64_t n);  // exact-erf GELU, in place (torch::gelu's default)
// Attention of one query over `heads` heads: keys and values are rows of k and v, `stride`
// floats apart, head h at offset h * hd; it attends rows 0 .. text-1, then the `listed` rows in
// `list`. out[h * hd ...] = softmax(q_h . k_h * scale) . v_h. Key-major: each key's row is read
// once for all heads. `scores` is scratch for heads * (text + listed) floats.
void vec_attend(const float* q, const float* k, const float* v, int64_t stride, int64_t hd, int64_t heads,
                int64_t text, const int32_t* list, int64_t listed, float scale, float* scores, float* out);

}  // namespace dalle

// Small fp32 kernels for the fast decoder (decoder.h) and the sampler: LayerNorm, GELU, the
// sampler's scale/max/exp/sum passes and attention, on plain arrays, vectorised with GCC vector
// extensions and compiled per instruction set (AVX-512, AVX2, baseline), picked at load time. GELU and exp use polynomial approximations
// accurate to about 2e-7 (relative for exp, absolute for erf), below fp32 rounding of the sums
// they feed.
#pragma once
#include <cstdint>

namespace dalle {

// y = (x - mean) / sqrt(var + eps) * weight + bias over one row of n.
void vec_layer_norm(const float* x, const float* weight, const float* bias, float eps, int64_t n, float* y);
void vec_gelu(float* x, int64_t n);  // exact-erf GELU, in place (torch::gelu's default)
float vec_scale_max(const float* x, float factor, float* y, int64_t n);  // y = x * factor; returns max(y)
float vec_sum(const float* x, int64_t n);
void vec_exp_shifted(float* x, int64_t n, float shift);  // x = exp(x - shift) in place (-inf -> 0)
// Attention of `queries` query rows that share their text keys (rows with one caption: a pool of
// candidates, or the unconditioned half under guidance), over `heads` heads of hd channels.
// Query r attends the `text` rows of text_k / text_v, then the `listed` rows of its own image
// cache, k / v + r * kv_stride, in `list`:
//   out_r[h * hd ...] = softmax(q_r,h . k_h * scale) . v_h.
// Key and value rows are `stride` elements apart, fp32 or bfloat16 bit patterns (the cache of the
// bf16 and int8 weight formats: half the bytes to read).
// With `text_kt` (the text keys transposed: head h's channel c of key j at
// text_kt[(h * hd + c) * text_kt_stride + j], rows zero-padded to a multiple of 64 keys) and a
// head size of 16, 32, 48 or 64, the kernel keeps every partial sum in registers: scores of 64
// text keys at a time without horizontal sums, each query's output accumulated over all its keys.
template <class T>
struct QueryBlock {
  int64_t queries = 1;  // at most 4 for the register-blocked kernel
  const float* q = nullptr;  // query r at q + r * q_stride, head h at + h * hd
  int64_t q_stride = 0;
  const T *text_k = nullptr, *text_v = nullptr;
  const float* text_kt = nullptr;
  int64_t text_kt_stride = 0;
  int64_t text = 0;
  const T *k = nullptr, *v = nullptr;
  int64_t kv_stride = 0;
  const int32_t* list = nullptr;
  int64_t listed = 0;
  int64_t stride = 0, hd = 0, heads = 0;
  float scale = 1;
  float* scores = nullptr;  // scratch for queries * heads * (text + listed) floats
  float* out = nullptr;     // output r at out + r * out_stride
  int64_t out_stride = 0;
};
void vec_attend(const QueryBlock<float>& block);
void vec_attend(const QueryBlock<uint16_t>& block);
// fp32 -> bfloat16 bit patterns, rounding to nearest even.
void vec_to_bf16(const float* x, uint16_t* y, int64_t n);

}  // namespace dalle

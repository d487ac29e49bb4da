// Small fp32 kernels for the fast decoder (decoder.h): dot products, LayerNorm, GELU and exp on
// plain arrays, vectorised with GCC vector extensions and compiled per instruction set
// (AVX-512, AVX2, baseline), picked at load time. GELU and exp use polynomial approximations
// accurate to about 2e-7 (relative for exp, absolute for erf), below fp32 rounding of the sums
// they feed.
#pragma once
#include <cstdint>

namespace dalle {

float vec_dot(const float* a, const float* b, int64_t n);
void vec_axpy(float a, const float* x, float* y, int64_t n);  // y += a * x
void vec_add(const float* x, float* y, int64_t n);            // y += x
// y = (x - mean) / sqrt(var + eps) * weight + bias over one row of n.
void vec_layer_norm(const float* x, const float* weight, const float* bias, float eps, int64_t n, float* y);
void vec_gelu(float* x, int64_t n);  // exact-erf GELU, in place (torch::gelu's default)
// x[i] = exp(x[i] - max) in place; returns the sum (a softmax's denominator).
float vec_exp_shifted(float* x, float max, int64_t n);

}  // namespace dalle

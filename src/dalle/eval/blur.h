// The Gaussian blur of the paper's FID sweep (SPEC §6): real and generated images are blurred
// alike at radius 0..8 before their Inception features are taken, which shows how much of a
// model's FID gap is fine detail. Radius is the Gaussian's standard deviation, as in PIL's
// ImageFilter.GaussianBlur(radius).
#pragma once
#include <torch/types.h>

namespace dalle {

// uint8 [B, H, W, 3] -> uint8 [B, H, W, 3] (rounded, clamped). Separable Gaussian with
// sigma = radius and 2 * ceil(3 sigma) + 1 taps, reflect padding (replicate along a side the
// kernel outgrows). Radius 0 returns the input itself.
torch::Tensor gaussian_blur(const torch::Tensor& images_u8, double radius);

// The same blur on float planes [B, C, H, W], without rounding: what gaussian_blur runs.
torch::Tensor gaussian_blur_planes(const torch::Tensor& planes, double sigma);

}  // namespace dalle

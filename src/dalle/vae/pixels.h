// The pixel map of SPEC §1: the logit-Laplace likelihood lives on (0, 1), so pixels are
// squeezed into [eps, 1 - eps] before encoding and as the likelihood's target.
#pragma once
#include <torch/types.h>

namespace dalle {

inline torch::Tensor map_pixels(const torch::Tensor& x, double eps) {
  return (1 - 2 * eps) * x + eps;
}

inline torch::Tensor unmap_pixels(const torch::Tensor& x, double eps) {
  return ((x - eps) / (1 - 2 * eps)).clamp(0, 1);
}

}  // namespace dalle

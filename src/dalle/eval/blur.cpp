#include "dalle/eval/blur.h"

#include "dalle/util/torch_api.h"

#include <cmath>
#include <string>
#include <vector>

#include "dalle/util/error.h"

namespace dalle {

namespace {

// Normalised taps exp(-x^2 / (2 sigma^2)) for x in [-half, half].
torch::Tensor gaussian_taps(double sigma, int64_t half) {
  const torch::Tensor x = torch::arange(-half, half + 1, torch::kFloat64);
  const torch::Tensor taps = (-(x * x) / (2.0 * sigma * sigma)).exp();
  return taps / taps.sum();
}

// Pads `half` on both ends of dimension `dim` (2: rows, 3: columns) by reflection, or by
// replication when the image is too small to reflect that far.
torch::Tensor pad_along(const torch::Tensor& x, int64_t dim, int64_t half) {
  const std::vector<int64_t> pad = dim == 3 ? std::vector<int64_t>{half, half, 0, 0} : std::vector<int64_t>{0, 0, half, half};
  return half < x.size(dim) ? torch::reflection_pad2d(x, pad) : torch::replication_pad2d(x, pad);
}

}  // namespace

torch::Tensor gaussian_blur_planes(const torch::Tensor& planes, double sigma) {
  if (planes.dim() != 4) throw Error("gaussian_blur: expected planes [B, C, H, W]");
  if (!(sigma >= 0) || !std::isfinite(sigma)) throw Error("gaussian_blur: radius must be >= 0, got " + std::to_string(sigma));
  if (sigma == 0) return planes;
  const int64_t half = static_cast<int64_t>(std::ceil(3.0 * sigma));
  const int64_t channels = planes.size(1);
  const torch::Tensor taps = gaussian_taps(sigma, half).to(planes.options());
  // Depthwise: each channel is blurred on its own, columns then rows.
  const torch::Tensor across = taps.view({1, 1, 1, -1}).expand({channels, 1, 1, 2 * half + 1}).contiguous();
  const torch::Tensor down = taps.view({1, 1, -1, 1}).expand({channels, 1, 2 * half + 1, 1}).contiguous();
  const std::vector<int64_t> unit = {1, 1}, none = {0, 0};
  const torch::Tensor x = torch::conv2d(pad_along(planes, 3, half), across, {}, unit, none, unit, channels);
  return torch::conv2d(pad_along(x, 2, half), down, {}, unit, none, unit, channels);
}

torch::Tensor gaussian_blur(const torch::Tensor& images_u8, double radius) {
  if (images_u8.dim() != 4 || images_u8.size(3) != 3 || images_u8.scalar_type() != torch::kUInt8)
    throw Error("gaussian_blur: expected uint8 images [B, H, W, 3]");
  if (!(radius >= 0) || !std::isfinite(radius)) throw Error("gaussian_blur: radius must be >= 0, got " + std::to_string(radius));
  if (radius == 0) return images_u8;
  torch::NoGradGuard no_grad;
  const torch::Tensor planes = images_u8.permute({0, 3, 1, 2}).to(torch::kFloat32);
  const torch::Tensor blurred = gaussian_blur_planes(planes, radius);
  return blurred.round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
}

}  // namespace dalle

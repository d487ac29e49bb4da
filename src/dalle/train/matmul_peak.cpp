#include "dalle/train/matmul_peak.h"

#include "dalle/util/torch_api.h"

#include <chrono>

#include <torch/cuda.h>

namespace dalle {

double matmul_peak_flops(torch::ScalarType dtype, int64_t n, const c10::Device& device) {
  torch::NoGradGuard no_grad;
  const bool gpu = device.is_cuda();
  if (gpu) n = std::max<int64_t>(n, 8192);
  const auto on = torch::TensorOptions().device(device);
  const torch::Tensor a = torch::randn({n, n}, on).to(dtype), b = torch::randn({n, n}, on).to(dtype);
  auto sync = [&] {
    if (gpu) torch::cuda::synchronize(device.index());
  };
  torch::matmul(a, b);  // warm-up: thread pool, oneDNN or cuBLAS kernels
  sync();
  const int reps = gpu ? 20 : 5;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) torch::matmul(a, b);
  sync();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * n * n * n * reps / s;
}

}  // namespace dalle

#include "dalle/train/matmul_peak.h"

#include "dalle/util/torch_api.h"

#include <chrono>

namespace dalle {

double matmul_peak_flops(torch::ScalarType dtype, int64_t n) {
  torch::NoGradGuard no_grad;
  const torch::Tensor a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
  torch::matmul(a, b);  // warm-up: thread pool, oneDNN kernels
  const int reps = 5;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) torch::matmul(a, b);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * n * n * n * reps / s;
}

}  // namespace dalle

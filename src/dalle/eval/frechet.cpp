#include "dalle/eval/frechet.h"

#include "dalle/util/torch_api.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "dalle/util/error.h"

namespace dalle {

namespace {

void check_features(const torch::Tensor& features, const char* what) {
  if (features.dim() != 2)
    throw Error(std::string(what) + ": expected features [N, D], got " + std::to_string(features.dim()) + " dimensions");
  if (features.size(0) < 2)
    throw Error(std::string(what) + ": need at least 2 features, got " + std::to_string(features.size(0)));
}

// The symmetric square root of a symmetric PSD matrix; eigenvalues that rounding made slightly
// negative count as 0.
torch::Tensor psd_sqrt(const torch::Tensor& m) {
  const auto [values, vectors] = at::linalg_eigh(m);
  return (vectors * values.clamp_min(0).sqrt().unsqueeze(0)).matmul(vectors.transpose(0, 1));
}

// Mean of the kernel matrix over its off-diagonal (same set) or all (two sets) entries.
double polynomial_kernel_mean(const torch::Tensor& x, const torch::Tensor& y, bool same_set) {
  const double d = static_cast<double>(x.size(1));
  const torch::Tensor k = (x.matmul(y.transpose(0, 1)) / d + 1.0).pow(3);
  const double m = static_cast<double>(x.size(0)), n = static_cast<double>(y.size(0));
  if (!same_set) return k.sum().item<double>() / (m * n);
  return (k.sum().item<double>() - k.diagonal().sum().item<double>()) / (m * (m - 1.0));
}

}  // namespace

GaussianStats gaussian_stats(const torch::Tensor& features) {
  check_features(features, "gaussian_stats");
  torch::NoGradGuard no_grad;
  const torch::Tensor f = features.to(torch::kCPU, torch::kFloat64);
  GaussianStats stats;
  stats.count = f.size(0);
  stats.mean = f.mean(0);
  const torch::Tensor centred = f - stats.mean;
  stats.cov = centred.transpose(0, 1).matmul(centred) / static_cast<double>(stats.count - 1);
  return stats;
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  const auto check = [](const GaussianStats& s, const char* which) {
    if (!s.mean.defined() || !s.cov.defined() || s.mean.dim() != 1 || s.cov.dim() != 2 ||
        s.cov.size(0) != s.mean.size(0) || s.cov.size(1) != s.mean.size(0))
      throw Error(std::string("frechet_distance: statistics ") + which + " are not a mean [D] and a covariance [D, D]");
  };
  check(a, "a");
  check(b, "b");
  if (a.mean.size(0) != b.mean.size(0))
    throw Error("frechet_distance: dimensions differ (" + std::to_string(a.mean.size(0)) + " and " +
                std::to_string(b.mean.size(0)) + ")");
  torch::NoGradGuard no_grad;
  const torch::Tensor mu_a = a.mean.to(torch::kCPU, torch::kFloat64), mu_b = b.mean.to(torch::kCPU, torch::kFloat64);
  const torch::Tensor s_a = a.cov.to(torch::kCPU, torch::kFloat64), s_b = b.cov.to(torch::kCPU, torch::kFloat64);
  // tr sqrt(S_a S_b) = sum of sqrt(eigenvalues of S_a S_b), and those are the eigenvalues of the
  // symmetric PSD sqrt(S_a) S_b sqrt(S_a): a symmetric eigenproblem, stable even when S_a S_b is
  // near-singular (where scipy's sqrtm, used by pytorch-fid, needs an epsilon fix-up).
  const torch::Tensor root_a = psd_sqrt(s_a);
  torch::Tensor inner = root_a.matmul(s_b).matmul(root_a);
  inner = (inner + inner.transpose(0, 1)) / 2.0;
  const double trace_sqrt = at::linalg_eigvalsh(inner).clamp_min(0).sqrt().sum().item<double>();
  const double mean_term = (mu_a - mu_b).pow(2).sum().item<double>();
  return mean_term + s_a.trace().item<double>() + s_b.trace().item<double>() - 2.0 * trace_sqrt;
}

KidResult kernel_inception_distance(const torch::Tensor& a, const torch::Tensor& b, int subsets, int subset_size,
                                    uint64_t seed) {
  check_features(a, "kernel_inception_distance");
  check_features(b, "kernel_inception_distance");
  if (a.size(1) != b.size(1))
    throw Error("kernel_inception_distance: dimensions differ (" + std::to_string(a.size(1)) + " and " +
                std::to_string(b.size(1)) + ")");
  if (subsets < 1) throw Error("kernel_inception_distance: subsets must be at least 1");
  if (subset_size < 2) throw Error("kernel_inception_distance: subset_size must be at least 2");
  torch::NoGradGuard no_grad;
  const torch::Tensor x_all = a.to(torch::kCPU, torch::kFloat64), y_all = b.to(torch::kCPU, torch::kFloat64);
  const int64_t m = std::min<int64_t>({static_cast<int64_t>(subset_size), x_all.size(0), y_all.size(0)});
  torch::Generator generator = make_cpu_generator(seed);
  const auto options = torch::TensorOptions().dtype(torch::kInt64);
  std::vector<double> mmds;
  for (int s = 0; s < subsets; ++s) {
    const torch::Tensor x = x_all.index_select(0, torch::randperm(x_all.size(0), generator, options).slice(0, 0, m));
    const torch::Tensor y = y_all.index_select(0, torch::randperm(y_all.size(0), generator, options).slice(0, 0, m));
    mmds.push_back(polynomial_kernel_mean(x, x, true) + polynomial_kernel_mean(y, y, true) -
                   2.0 * polynomial_kernel_mean(x, y, false));
  }
  KidResult result;
  for (double v : mmds) result.mean += v;
  result.mean /= static_cast<double>(mmds.size());
  for (double v : mmds) result.std += (v - result.mean) * (v - result.mean);
  result.std = std::sqrt(result.std / static_cast<double>(mmds.size()));
  return result;
}

}  // namespace dalle

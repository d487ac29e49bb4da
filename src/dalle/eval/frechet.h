// Distances between two sets of image features (Inception pool3, 2048-d): the Fréchet distance
// between Gaussians fitted to each set (FID, Heusel et al. 2017; the paper's headline metric,
// SPEC §6) and the kernel distance (KID, Binkowski et al. 2018), which is unbiased and so
// comparable across sample sizes, where FID is not.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace dalle {

// A Gaussian fitted to features, in float64.
struct GaussianStats {
  torch::Tensor mean;  // [D]
  torch::Tensor cov;   // [D, D]
  int64_t count = 0;   // features it was fitted to
};

// features [N, D] (N >= 2) -> mean and unbiased (N - 1) covariance.
GaussianStats gaussian_stats(const torch::Tensor& features);

// ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr(sqrt(S_a S_b)), in float64. Throws on mismatched
// dimensions.
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

struct KidResult {
  double mean = 0, std = 0;  // over the subsets (std with divisor subsets, as torch-fidelity)
};

// Unbiased MMD^2 with the kernel k(x, y) = (x.y / D + 1)^3, averaged over `subsets` random
// subsets of min(subset_size, N_a, N_b) features drawn without replacement from each side.
// The same seed gives the same subsets.
KidResult kernel_inception_distance(const torch::Tensor& a, const torch::Tensor& b, int subsets = 100,
                                    int subset_size = 1000, uint64_t seed = 0);

}  // namespace dalle

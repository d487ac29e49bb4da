// FID's Fréchet distance and KID against closed forms and direct loops, and the blur of the
// paper's FID sweep against a slow per-pixel twin.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "dalle/eval/blur.h"
#include "dalle/eval/frechet.h"
#include "dalle/util/error.h"
#include "dalle/util/torch_api.h"

namespace dalle {
namespace {

torch::Tensor f64(const std::vector<double>& values) { return torch::tensor(values, torch::kFloat64); }

GaussianStats stats_of(const torch::Tensor& mean, const torch::Tensor& cov) { return {mean, cov, 0}; }

// A random symmetric positive definite D x D matrix.
torch::Tensor random_spd(int64_t d, torch::Generator& gen) {
  const torch::Tensor a = torch::randn({d, 2 * d}, gen, torch::kFloat64);
  return a.matmul(a.t()) / static_cast<double>(2 * d);
}

TEST(Frechet, DiagonalCovariancesMatchTheClosedForm) {
  const torch::Tensor mu1 = f64({0.5, -1.0, 2.0, 0.0}), mu2 = f64({1.5, -1.0, 0.0, 0.25});
  const std::vector<double> s1 = {1.0, 4.0, 0.25, 2.0}, s2 = {9.0, 1.0, 0.25, 0.5};
  double expected = ((mu1 - mu2).pow(2)).sum().item<double>();
  for (size_t i = 0; i < s1.size(); ++i) expected += s1[i] + s2[i] - 2 * std::sqrt(s1[i] * s2[i]);
  const double fid = frechet_distance(stats_of(mu1, torch::diag(f64(s1))), stats_of(mu2, torch::diag(f64(s2))));
  EXPECT_NEAR(fid, expected, 1e-9 * expected);
}

TEST(Frechet, AFullCovarianceAgainstItselfIsZero) {
  torch::Generator gen = make_cpu_generator(1);
  const torch::Tensor cov = random_spd(64, gen);
  const torch::Tensor mean = torch::randn({64}, gen, torch::kFloat64);
  EXPECT_NEAR(frechet_distance(stats_of(mean, cov), stats_of(mean, cov)), 0.0, 1e-6);
}

TEST(Frechet, ScaledCovarianceGivesTraceTimesOneMinusCSquared) {
  // S2 = c^2 S1: sqrt(S1 S2) = c S1, so FID = |mu1 - mu2|^2 + tr(S1) (1 - c)^2.
  torch::Generator gen = make_cpu_generator(2);
  const torch::Tensor s1 = random_spd(32, gen);
  const torch::Tensor mu1 = torch::randn({32}, gen, torch::kFloat64), mu2 = torch::randn({32}, gen, torch::kFloat64);
  for (double c : {0.5, 1.0, 3.0}) {
    const double expected = (mu1 - mu2).pow(2).sum().item<double>() + s1.trace().item<double>() * (1 - c) * (1 - c);
    const double fid = frechet_distance(stats_of(mu1, s1), stats_of(mu2, s1 * (c * c)));
    EXPECT_NEAR(fid, expected, 1e-9 * std::max(1.0, expected)) << "c = " << c;
  }
}

TEST(Frechet, RotatedTwoByTwoCovariancesMatchTheClosedForm) {
  // Non-commuting 2x2 covariances: S1 S2 has eigenvalues l1, l2 >= 0 and
  // tr sqrt(S1 S2) = sqrt(l1) + sqrt(l2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
  const double angle = 0.7;
  const torch::Tensor r = f64({std::cos(angle), -std::sin(angle), std::sin(angle), std::cos(angle)}).view({2, 2});
  const torch::Tensor s1 = torch::diag(f64({4.0, 0.25}));
  const torch::Tensor s2 = r.matmul(torch::diag(f64({2.0, 0.5}))).matmul(r.t());
  const double trace_sqrt = std::sqrt(s1.matmul(s2).trace().item<double>() +
                                      2 * std::sqrt(s1.det().item<double>() * s2.det().item<double>()));
  const double expected = 1.0 + s1.trace().item<double>() + s2.trace().item<double>() - 2 * trace_sqrt;
  const double fid = frechet_distance(stats_of(f64({1.0, 0.0}), s1), stats_of(f64({0.0, 0.0}), s2));
  EXPECT_NEAR(fid, expected, 1e-12);
  // The distance is symmetric although S1 S2 is not.
  EXPECT_NEAR(frechet_distance(stats_of(f64({0.0, 0.0}), s2), stats_of(f64({1.0, 0.0}), s1)), expected, 1e-12);
}

TEST(Frechet, SingularCovariancesStayFiniteAndNonNegative) {
  // Fewer samples than dimensions (as with a small eval set and 2048-d features): rank-deficient.
  torch::Generator gen = make_cpu_generator(3);
  const GaussianStats a = gaussian_stats(torch::randn({10, 40}, gen, torch::kFloat32));
  const GaussianStats b = gaussian_stats(torch::randn({12, 40}, gen, torch::kFloat32));
  const double fid = frechet_distance(a, b);
  EXPECT_TRUE(std::isfinite(fid));
  EXPECT_GT(fid, 0.0);
  // sqrt of eigenvalues that are zero up to rounding (~1e-16) is ~1e-8 each: the noise floor.
  EXPECT_NEAR(frechet_distance(a, a), 0.0, 1e-5);
}

TEST(Frechet, SampleStatisticsApproachTheClosedForm) {
  torch::Generator gen = make_cpu_generator(4);
  const int64_t n = 200000, d = 4;
  const torch::Tensor l1 = torch::randn({d, d}, gen, torch::kFloat64) * 0.5, l2 = torch::randn({d, d}, gen, torch::kFloat64) * 0.5;
  const torch::Tensor mu1 = f64({0.0, 1.0, 0.0, -1.0}), mu2 = f64({0.5, 1.0, 0.0, 0.0});
  const torch::Tensor x1 = torch::randn({n, d}, gen, torch::kFloat64).matmul(l1.t()) + mu1;
  const torch::Tensor x2 = torch::randn({n, d}, gen, torch::kFloat64).matmul(l2.t()) + mu2;
  const GaussianStats a = gaussian_stats(x1.to(torch::kFloat32)), b = gaussian_stats(x2.to(torch::kFloat32));
  EXPECT_EQ(a.count, n);
  EXPECT_EQ(a.mean.scalar_type(), torch::kFloat64);
  EXPECT_LT((a.mean - mu1).abs().max().item<double>(), 0.02);
  EXPECT_LT((a.cov - l1.matmul(l1.t())).abs().max().item<double>(), 0.02);
  const double exact = frechet_distance(stats_of(mu1, l1.matmul(l1.t())), stats_of(mu2, l2.matmul(l2.t())));
  EXPECT_NEAR(frechet_distance(a, b), exact, 0.02 * exact);
}

TEST(Frechet, CovarianceIsUnbiased) {
  const torch::Tensor x = f64({1, 2, 3, 5, 5, 8}).view({3, 2});  // columns (1,3,5) and (2,5,8)
  const GaussianStats s = gaussian_stats(x);
  EXPECT_TRUE(torch::allclose(s.mean, f64({3, 5})));
  // var(1,3,5) = 8/2, var(2,5,8) = 18/2, cov = 12/2.
  EXPECT_TRUE(torch::allclose(s.cov, f64({4, 6, 6, 9}).view({2, 2})));
}

TEST(Frechet, RefusesMismatchedOrTooFewFeatures) {
  const GaussianStats a = gaussian_stats(torch::randn({5, 3})), b = gaussian_stats(torch::randn({5, 4}));
  EXPECT_THROW(frechet_distance(a, b), Error);
  EXPECT_THROW(gaussian_stats(torch::randn({1, 3})), Error);
  EXPECT_THROW(gaussian_stats(torch::randn({5})), Error);
  EXPECT_THROW(kernel_inception_distance(torch::randn({5, 3}), torch::randn({5, 4})), Error);
}

// Unbiased MMD^2 with the cubic polynomial kernel, written out as loops.
double kid_by_loops(const torch::Tensor& a, const torch::Tensor& b) {
  const auto x = a.accessor<double, 2>(), y = b.accessor<double, 2>();
  const int64_t m = a.size(0), n = b.size(0), d = a.size(1);
  const auto k = [d](const auto& u, const auto& v) {
    double dot = 0;
    for (int64_t i = 0; i < d; ++i) dot += u[i] * v[i];
    return std::pow(dot / static_cast<double>(d) + 1.0, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j)
      if (i != j) xx += k(x[i], x[j]);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i != j) yy += k(y[i], y[j]);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) xy += k(x[i], y[j]);
  return xx / (m * (m - 1.0)) + yy / (n * (n - 1.0)) - 2 * xy / (static_cast<double>(m) * n);
}

TEST(Kid, OneSubsetOfEverythingMatchesTheDirectSum) {
  torch::Generator gen = make_cpu_generator(5);
  const torch::Tensor a = torch::randn({9, 6}, gen, torch::kFloat64);
  const torch::Tensor b = torch::randn({9, 6}, gen, torch::kFloat64) * 1.5 + 0.3;
  const KidResult kid = kernel_inception_distance(a, b, /*subsets=*/1, /*subset_size=*/1000, /*seed=*/7);
  EXPECT_NEAR(kid.mean, kid_by_loops(a, b), 1e-9);
  EXPECT_EQ(kid.std, 0.0);
}

TEST(Kid, SameDistributionIsNearZeroAndAShiftIsNot) {
  torch::Generator gen = make_cpu_generator(6);
  const torch::Tensor a = torch::randn({1000, 32}, gen), b = torch::randn({1000, 32}, gen);
  const KidResult same = kernel_inception_distance(a, b, 20, 500, 1);
  const KidResult shifted = kernel_inception_distance(a, b + 0.5, 20, 500, 1);
  EXPECT_LT(std::abs(same.mean), 0.01);
  EXPECT_GT(shifted.mean, 0.1);
  EXPECT_GT(same.std, 0.0);
  EXPECT_LT(std::abs(same.mean), 3 * same.std);
  std::printf("KID same distribution %.2e +- %.2e; shifted by 0.5: %.3f +- %.3f\n", same.mean, same.std, shifted.mean,
              shifted.std);
}

TEST(Kid, TheSeedChoosesTheSubsets) {
  torch::Generator gen = make_cpu_generator(8);
  const torch::Tensor a = torch::randn({60, 8}, gen), b = torch::randn({80, 8}, gen) + 0.2;
  const KidResult first = kernel_inception_distance(a, b, 5, 20, 3);
  const KidResult again = kernel_inception_distance(a, b, 5, 20, 3);
  const KidResult other = kernel_inception_distance(a, b, 5, 20, 4);
  EXPECT_EQ(first.mean, again.mean);
  EXPECT_EQ(first.std, again.std);
  EXPECT_NE(first.mean, other.mean);
}

// The blur written out per pixel: reflect indexing (x[-1] = x[1]), or clamping where the image
// is too small to reflect.
torch::Tensor blur_by_loops(const torch::Tensor& plane, double sigma) {
  const int64_t h = plane.size(0), w = plane.size(1), half = static_cast<int64_t>(std::ceil(3 * sigma));
  std::vector<double> taps;
  double total = 0;
  for (int64_t i = -half; i <= half; ++i) total += taps.emplace_back(std::exp(-(i * i) / (2 * sigma * sigma)));
  for (double& t : taps) t /= total;
  const auto index = [half](int64_t i, int64_t n) {
    if (half >= n) return std::clamp<int64_t>(i, 0, n - 1);
    return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i;
  };
  const auto src = plane.accessor<double, 2>();
  torch::Tensor out = torch::zeros({h, w}, torch::kFloat64);
  auto dst = out.accessor<double, 2>();
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t dy = -half; dy <= half; ++dy)
        for (int64_t dx = -half; dx <= half; ++dx)
          dst[y][x] += taps[dy + half] * taps[dx + half] * src[index(y + dy, h)][index(x + dx, w)];
  return out;
}

TEST(Blur, RadiusZeroIsTheIdentity) {
  const torch::Tensor images = torch::randint(0, 256, {2, 9, 7, 3}, torch::kUInt8);
  EXPECT_TRUE(torch::equal(gaussian_blur(images, 0.0), images));
  EXPECT_THROW(gaussian_blur(images, -1.0), Error);
  EXPECT_THROW(gaussian_blur(images.to(torch::kFloat32), 1.0), Error);
}

TEST(Blur, ConstantImagesStayConstant) {
  const torch::Tensor images = torch::full({1, 12, 10, 3}, 137, torch::kUInt8);
  for (double radius : {0.5, 1.0, 2.0, 8.0}) {  // 8: a 49-tap kernel, wider than the image
    const torch::Tensor out = gaussian_blur(images, radius);
    EXPECT_EQ(out.sizes(), images.sizes());
    EXPECT_EQ(out.scalar_type(), torch::kUInt8);
    EXPECT_TRUE(torch::equal(out, images)) << "radius " << radius;
  }
}

TEST(Blur, ABrightPixelSpreadsAsTheGaussianWithItsSumKept) {
  const double sigma = 1.5;  // 11 taps
  torch::Tensor planes = torch::zeros({1, 1, 31, 31}, torch::kFloat64);
  planes[0][0][15][15] = 1.0;
  const torch::Tensor out = gaussian_blur_planes(planes, sigma)[0][0];
  EXPECT_NEAR(out.sum().item<double>(), 1.0, 1e-12);
  const torch::Tensor x = torch::arange(-5, 6, torch::kFloat64);
  torch::Tensor g = (-(x * x) / (2 * sigma * sigma)).exp();
  g = g / g.sum();
  EXPECT_LT((out.slice(0, 10, 21).slice(1, 10, 21) - g.outer(g)).abs().max().item<double>(), 1e-15);
  EXPECT_EQ(out.slice(0, 0, 10).abs().max().item<double>(), 0.0);  // nothing beyond 3 sigma

  // The same in uint8: a 255 pixel on black, rounded per pixel.
  torch::Tensor images = torch::zeros({1, 31, 31, 3}, torch::kUInt8);
  images[0][15][15] = 255;
  const torch::Tensor blurred = gaussian_blur(images, sigma);
  // fp32 arithmetic may round a value that is within 1e-5 of .5 the other way.
  const torch::Tensor expected = (out * 255).round();
  for (int c = 0; c < 3; ++c)
    EXPECT_LE((blurred.select(3, c)[0].to(torch::kFloat64) - expected).abs().max().item<double>(), 1.0) << "channel " << c;
  EXPECT_EQ(blurred[0][15][15][0].item<int>(), static_cast<int>(expected[15][15].item<double>()));
  EXPECT_NEAR(blurred.select(3, 0).to(torch::kFloat64).sum().item<double>(), 255.0, 0.5 * 121);
}

TEST(Blur, EdgesReflectAsThePerPixelTwin) {
  torch::Generator gen = make_cpu_generator(9);
  for (double sigma : {0.8, 1.7, 4.0}) {  // 4.0: 25 taps on a 9x11 image, so edges clamp
    const torch::Tensor planes = torch::rand({1, 2, 9, 11}, gen, torch::kFloat64);
    const torch::Tensor fast = gaussian_blur_planes(planes, sigma);
    for (int c = 0; c < 2; ++c)
      EXPECT_LT((fast[0][c] - blur_by_loops(planes[0][c], sigma)).abs().max().item<double>(), 1e-12) << "sigma " << sigma;
  }
}

}  // namespace
}  // namespace dalle

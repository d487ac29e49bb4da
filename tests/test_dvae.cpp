#include <gtest/gtest.h>
#include "dalle/util/torch_api.h"

#include <cmath>

#include "dalle/bundle/config.h"
#include "dalle/train/checkpoint.h"
#include "dalle/vae/dvae.h"
#include "dalle/vae/loss.h"
#include "dalle/vae/pixels.h"

using namespace dalle;

namespace {

VaeConfig tiny_vae() {
  VaeConfig c;
  c.image_size = 16;
  c.n_hid = 8;
  c.groups = 3;
  c.blocks_per_group = 1;
  c.vocab = 16;
  c.n_init = 8;
  return c;
}

}  // namespace

TEST(Dvae, ParameterNamesFollowOpenAIsReleasedLayout) {
  VaeConfig c = tiny_vae();
  c.blocks_per_group = 2;
  Dvae vae(c);
  std::set<std::string> names;
  for (const auto& p : vae->named_parameters(true)) names.insert(p.key());
  for (const char* n : {"encoder.blocks.input.w", "encoder.blocks.input.b",
                        "encoder.blocks.group_1.block_1.res_path.conv_1.w",
                        "encoder.blocks.group_1.block_2.res_path.conv_4.b",
                        "encoder.blocks.group_2.block_1.id_path.w", "encoder.blocks.output.conv.w",
                        "decoder.blocks.input.w", "decoder.blocks.group_1.block_1.id_path.w",
                        "decoder.blocks.group_3.block_2.res_path.conv_4.w", "decoder.blocks.output.conv.b"})
    EXPECT_TRUE(names.count(n)) << n;
  // Same-width blocks have no id_path conv (identity).
  EXPECT_FALSE(names.count("encoder.blocks.group_1.block_2.id_path.w"));
}

TEST(Dvae, ShapesFollowTheConfig) {
  const VaeConfig c = tiny_vae();
  Dvae vae(c);
  torch::Tensor x = torch::rand({2, 3, 16, 16});
  torch::Tensor logits = vae->encoder(x);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 16, 4, 4}));
  torch::Tensor stats = vae->decoder(torch::softmax(logits, 1));
  EXPECT_EQ(stats.sizes(), (std::vector<int64_t>{2, 6, 16, 16}));
}

TEST(Dvae, TokenDecodingEqualsOneHotDecoding) {
  Dvae vae(tiny_vae());
  torch::Tensor tokens = torch::randint(0, 16, {3, 4, 4}, torch::kLong);
  torch::Tensor one_hot = torch::one_hot(tokens, 16).permute({0, 3, 1, 2}).to(torch::kFloat32);
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::allclose(vae->decoder->forward_tokens(tokens), vae->decoder(one_hot), 1e-5, 1e-5));
}

TEST(Dvae, BottleneckGainsScaleLogitsAndCodesOnly) {
  // Same weights, gains 3 and 4: the logits are 3x those of the paper's network (so argmax
  // tokens do not change), and the decoder sees 4x the one-hot codes, on both decoding paths.
  VaeConfig paper = tiny_vae(), gained = tiny_vae();
  gained.logit_gain = 3.0;
  gained.codebook_gain = 4.0;
  torch::manual_seed(5);
  Dvae a(paper);
  torch::manual_seed(5);
  Dvae b(gained);
  torch::NoGradGuard g;
  const torch::Tensor x = torch::rand({2, 3, 16, 16});
  EXPECT_TRUE(torch::allclose(b->encoder(x), 3.0 * a->encoder(x), 1e-5, 1e-5));
  const torch::Tensor tokens = torch::randint(0, 16, {2, 4, 4}, torch::kLong);
  const torch::Tensor one_hot = torch::one_hot(tokens, 16).permute({0, 3, 1, 2}).to(torch::kFloat32);
  const torch::Tensor expected = a->decoder(4.0 * one_hot);
  EXPECT_TRUE(torch::allclose(b->decoder(one_hot), expected, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(b->decoder->forward_tokens(tokens), expected, 1e-5, 1e-5));
  EXPECT_FALSE(torch::allclose(a->decoder(one_hot), expected, 1e-3, 1e-3));
}

TEST(Dvae, EncodingIsDeterministicArgmax) {
  Dvae vae(tiny_vae());
  torch::Tensor images = torch::randint(0, 256, {4, 16, 16, 3}, torch::kUInt8);
  torch::NoGradGuard g;
  torch::Tensor a = vae->encode_images(images), b = vae->encode_images(images);
  EXPECT_TRUE(torch::equal(a, b));
  torch::Tensor x = images.permute({0, 3, 1, 2}).to(torch::kFloat32) / 255;
  EXPECT_TRUE(torch::equal(a, vae->encoder(map_pixels(x, 0.1)).argmax(1)));
}

TEST(DvaeLoss, PixelMapAndInverse) {
  torch::Tensor x = torch::tensor({0.0f, 0.5f, 1.0f});
  EXPECT_TRUE(torch::allclose(map_pixels(x, 0.1), torch::tensor({0.1f, 0.5f, 0.9f})));
  EXPECT_TRUE(torch::allclose(unmap_pixels(map_pixels(x, 0.1), 0.1), x));
  EXPECT_TRUE(torch::allclose(unmap_pixels(torch::tensor({0.0f, 1.0f}), 0.1), torch::tensor({0.0f, 1.0f})));
}

TEST(DvaeLoss, LogitLaplaceMatchesHandComputedValue) {
  // x = 0.3, mu = 0.2, ln b = -1: -ln f = ln 2 + ln b + ln(x(1-x)) + |logit x - mu| / b.
  const double x = 0.3, mu = 0.2, log_b = -1.0;
  const double logit = std::log(x / (1 - x));
  const double expected = std::log(2.0) + log_b + std::log(x * (1 - x)) + std::fabs(logit - mu) / std::exp(log_b);
  torch::Tensor nll = logit_laplace_nll(torch::full({1, 1, 1, 1}, x, torch::kFloat64),
                                        torch::full({1, 1, 1, 1}, mu, torch::kFloat64),
                                        torch::full({1, 1, 1, 1}, log_b, torch::kFloat64));
  EXPECT_NEAR(nll.item<double>(), expected, 1e-12);
}

TEST(DvaeLoss, KlToUniformMatchesHandComputedValue) {
  // Two positions over K = 2: q = (0.5, 0.5) gives 0; q = softmax(0, ln 3) = (0.25, 0.75).
  torch::Tensor logits = torch::zeros({1, 2, 1, 2}, torch::kFloat64);
  logits[0][1][0][1] = std::log(3.0);
  const double expected = 0.25 * std::log(0.25) + 0.75 * std::log(0.75) + std::log(2.0);
  EXPECT_NEAR(kl_to_uniform(logits).item<double>(), expected, 1e-12);
  EXPECT_GE(kl_to_uniform(torch::randn({3, 8, 2, 2})).min().item<double>(), -1e-6);
}

TEST(DvaeLoss, TotalIsNormalisedByPixelsAndWeightsKl) {
  torch::Tensor x = torch::full({1, 3, 2, 2}, 0.4);
  torch::Tensor stats = torch::zeros({1, 6, 2, 2});
  torch::Tensor logits = torch::randn({1, 4, 1, 1});
  VaeLoss l = vae_loss(x, stats, logits, 2.0);
  const double n = 12.0;
  EXPECT_NEAR(l.nll.item<double>(), logit_laplace_nll(x, stats.slice(1, 0, 3), stats.slice(1, 3, 6)).item<double>() / n, 1e-6);
  EXPECT_NEAR(l.kl.item<double>(), kl_to_uniform(logits).item<double>() / n, 1e-6);
  EXPECT_NEAR(l.loss.item<double>(), l.nll.item<double>() + 2.0 * l.kl.item<double>(), 1e-6);
}

TEST(DvaeLoss, ReconstructionLossFitsMuToPixelErrorAndLnBToTheLikelihood) {
  // One pixel, three channels: mu gets only the squared error of unmap(sigmoid(mu)) (weight 64,
  // mean over the 3 values), ln b only the likelihood's gradient around the given mu.
  const double eps = 0.1;
  const std::vector<double> x = {0.3, 0.5, 0.8}, mu = {0.2, -0.1, 1.0}, log_b = {-1.0, 0.0, -0.5};
  torch::Tensor xm = torch::tensor(x, torch::kFloat64).view({1, 3, 1, 1});
  std::vector<double> s = mu;
  s.insert(s.end(), log_b.begin(), log_b.end());
  torch::Tensor stats = torch::tensor(s, torch::kFloat64).view({1, 6, 1, 1}).requires_grad_(true);
  torch::Tensor logits = torch::zeros({1, 4, 1, 1}, torch::kFloat64);
  VaeLoss l = reconstruction_loss(xm, stats, eps);
  l.loss.backward();
  torch::Tensor g = stats.grad().flatten();
  for (int c = 0; c < 3; ++c) {
    const double y = 1.0 / (1.0 + std::exp(-mu[c]));
    const double d_mu = 64.0 * 2.0 * (y - x[c]) / std::pow(1.0 - 2.0 * eps, 2) * y * (1.0 - y) / 3.0;
    const double dist = std::fabs(std::log(x[c] / (1 - x[c])) - mu[c]);
    const double d_log_b = (1.0 - dist * std::exp(-log_b[c])) / 3.0;
    EXPECT_NEAR(g[c].item<double>(), d_mu, 1e-9) << "mu, channel " << c;
    EXPECT_NEAR(g[3 + c].item<double>(), d_log_b, 1e-9) << "ln b, channel " << c;
  }
  // Reported like the likelihood objective: the likelihood of (mu, ln b) per pixel value.
  EXPECT_NEAR(l.nll.item<double>(), likelihood_loss(xm, stats).nll.item<double>(), 1e-12);
  EXPECT_NEAR(l.nll.item<double>(), vae_loss(xm, stats, logits, 0.0).nll.item<double>(), 1e-12);
}

TEST(DvaeLoss, RelaxationGradientsAreFiniteAtTheLowestTemperature) {
  Dvae vae(tiny_vae());
  torch::Tensor x = map_pixels(torch::rand({2, 3, 16, 16}), 0.1);
  torch::Generator gen = step_generator(1, 0, 0);
  torch::Tensor logits = vae->encoder(x);
  VaeLoss l = vae_loss(x, vae->decoder(gumbel_softmax(logits * 20, 1.0 / 16, gen)), logits, 6.6);
  l.loss.backward();
  for (const auto& p : vae->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
  }
  EXPECT_GT(vae->encoder->named_parameters()["blocks.input.w"].grad().abs().sum().item<double>(), 0);
}

TEST(DvaeLoss, GumbelSoftmaxIsADistributionAndSharpensAtLowTemperature) {
  torch::Generator gen = step_generator(3, 0, 0);
  torch::Tensor logits = torch::randn({4, 10, 3, 3});
  torch::Tensor soft = gumbel_softmax(logits, 1.0, gen);
  EXPECT_TRUE(torch::allclose(soft.sum(1), torch::ones({4, 3, 3}), 1e-5, 1e-5));
  torch::Tensor sharp = gumbel_softmax(logits, 1.0 / 16, gen);
  EXPECT_GT(sharp.amax(1).mean().item<double>(), soft.amax(1).mean().item<double>());
}

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include "dalle/util/torch_api.h"

#include <ATen/Parallel.h>

#include "dalle/prior/cost.h"
#include "dalle/prior/loss.h"
#include "dalle/prior/masks.h"
#include "dalle/prior/transformer.h"
#include "dalle/sample/sampler.h"
#include "dalle/text/tokenizer.h"
#include "dalle/train/checkpoint.h"
#include "dalle/util/error.h"
#include "test_util.h"

using namespace dalle;

TEST(Masks, LayerPatternFollowsThePaper) {
  // Layers 1..4 are row, column, row, row; column iff (i-2) mod 4 == 0; the last is conv.
  const auto t = layer_mask_types(10);
  const std::vector<MaskType> want = {MaskType::row, MaskType::column, MaskType::row, MaskType::row,
                                      MaskType::row, MaskType::column, MaskType::row, MaskType::row,
                                      MaskType::row, MaskType::conv};
  EXPECT_EQ(t, want);
  EXPECT_EQ(layer_mask_types(1), std::vector<MaskType>{MaskType::conv});
}

TEST(Masks, RowWindowWrapsIntoThePreviousRow) {
  const MaskShape s{0, 4, 4, 3};
  // Query 5 (row 1, col 1) sees 1..5: the window crosses into row 0.
  for (int k = 0; k < 16; ++k) EXPECT_EQ(image_mask_allows(MaskType::row, s, 5, k), k >= 1 && k <= 5) << k;
}

TEST(Masks, ColumnSeesEarlierTokensOfTheSameColumn) {
  const MaskShape s{0, 4, 4, 3};
  for (int k = 0; k < 16; ++k) EXPECT_EQ(image_mask_allows(MaskType::column, s, 14, k), k == 2 || k == 6 || k == 10 || k == 14) << k;
}

TEST(Masks, ConvIsACausalNeighbourhood) {
  const MaskShape s{0, 5, 5, 3};  // 3x3: one row above at columns -1..+1, and self + left
  std::set<int> want = {12, 11, 6, 7, 8};  // query 12 = (2, 2)
  for (int k = 0; k < 25; ++k) EXPECT_EQ(image_mask_allows(MaskType::conv, s, 12, k), want.count(k) > 0) << k;
}

// The paper's 11x11 conv mask on its 32x32 grid, written out by hand from the geometry rather
// than from image_mask_allows: key (r, c) is in the neighbourhood of query (qr, qc) when it is
// 0..5 rows up and -5..+5 columns over (only columns to the left on the query's own row), where a
// column past either edge continues on the neighbouring row, as raster order does.
TEST(Masks, ConvMaskAtFullSizeIsThePapersNeighbourhoodWithWraparound) {
  const int w = 32, h = 32, k = 11;
  const MaskShape shape{0, h, w, k};
  const torch::Tensor dense = dense_attention_mask(MaskType::conv, shape);
  auto a = dense.accessor<bool, 2>();
  int64_t total = 0;
  for (int qr = 0; qr < h; ++qr) {
    for (int qc = 0; qc < w; ++qc) {
      std::set<int> want;
      for (int up = 0; up <= 5; ++up) {
        for (int dc = -5; dc <= (up == 0 ? 0 : 5); ++dc) {
          // Row qr - up, column qc + dc, carried into the row before or after when off the edge.
          int row = qr - up, col = qc + dc;
          if (col < 0) { col += w; row -= 1; }
          if (col >= w) { col -= w; row += 1; }
          if (row >= 0) want.insert(row * w + col);
        }
      }
      const int q = qr * w + qc;
      for (int key = 0; key < w * h; ++key) ASSERT_EQ(a[q][key], want.count(key) > 0) << "query " << q << " key " << key;
      total += static_cast<int64_t>(want.size());
    }
  }
  // Spot checks a reader can verify by eye.
  EXPECT_TRUE(a[0][0]);                    // (0,0) sees only itself
  EXPECT_EQ(dense[0].sum().item<int64_t>(), 1);
  EXPECT_TRUE(a[6 * 32][5 * 32 + 31]);     // (6,0) sees (5,31): one to the left wraps to the row above
  EXPECT_TRUE(a[6 * 32][1 * 32 + 5]);      // (6,0) sees (1,5): five rows up, five right
  EXPECT_TRUE(a[6 * 32][0 * 32 + 31]);     // (6,0) sees (0,31): five up and one left, carried into row 0
  EXPECT_FALSE(a[6 * 32][0 * 32 + 25]);    // but not (0,25), seven columns over
  EXPECT_TRUE(a[10 * 32 + 30][10 * 32 + 3]);  // (10,30) sees (10,3): (9,35) carried onto row 10
  EXPECT_FALSE(a[10 * 32 + 30][10 * 32 + 31]);  // the future on its own row stays hidden
  EXPECT_FALSE(a[10 * 32 + 30][11 * 32 + 0]);   // and so does the next row
  EXPECT_FALSE(a[20 * 32 + 16][14 * 32 + 16]);  // six rows straight up is outside
  EXPECT_TRUE(a[20 * 32 + 16][15 * 32 + 21]);   // (15,21): five up, five right
  // An interior query sees 5 * 11 + 6 = 61 positions.
  EXPECT_EQ(dense[20 * 32 + 16].sum().item<int64_t>(), 61);
  EXPECT_EQ(dense.sum().item<int64_t>(), total);
}

TEST(Masks, DenseMaskTextIsCausalAndImageSeesAllText) {
  const MaskShape s{3, 2, 2, 3};
  torch::Tensor m = dense_attention_mask(MaskType::row, s);
  EXPECT_TRUE(m[0][0].item<bool>());
  EXPECT_FALSE(m[0][1].item<bool>());
  EXPECT_TRUE(m[2][1].item<bool>());
  for (int q = 3; q < 7; ++q)
    for (int k = 0; k < 3; ++k) EXPECT_TRUE(m[q][k].item<bool>());
  EXPECT_FALSE(m[2][3].item<bool>());  // text never sees image
}

TEST(Prior, OutputShapesAndCausality) {
  torch::manual_seed(0);
  Prior prior(test::toy_prior(), 3, 4, 10);
  prior->eval();
  torch::Tensor text = torch::randint(0, 26, {2, 6}, torch::kLong);
  torch::Tensor image = torch::randint(0, 10, {2, 12}, torch::kLong);
  PriorLogits out = prior->forward(text, image);
  EXPECT_EQ(out.text.sizes(), (std::vector<int64_t>{2, 5, 26}));
  EXPECT_EQ(out.image.sizes(), (std::vector<int64_t>{2, 12, 10}));
  // Changing image token 7 must not change the predictions of tokens 0..7.
  torch::Tensor image2 = image.clone();
  image2[0][7] = (image[0][7].item<int64_t>() + 1) % 10;
  PriorLogits out2 = prior->forward(text, image2);
  EXPECT_TRUE(torch::allclose(out.image.narrow(1, 0, 8), out2.image.narrow(1, 0, 8), 1e-5, 1e-5));
  EXPECT_FALSE(torch::allclose(out.image.narrow(1, 8, 4), out2.image.narrow(1, 8, 4), 1e-5, 1e-5));
}

// SPEC §3: logits are 32-bit. Under bf16 autocast the heads must be an fp32 product of the final
// activations, not a bf16 one cast afterwards (which differs from it by ~1e-2 here).
TEST(Prior, LogitsAreFp32ProductsUnderBf16Autocast) {
  torch::manual_seed(4);
  Prior prior(test::toy_prior(3), 3, 4, 10);
  prior->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor text = torch::randint(0, 26, {2, 6}, torch::kLong);
  const torch::Tensor image = torch::randint(0, 10, {2, 12}, torch::kLong);
  torch::Tensor h, bf16_head;
  PriorLogits logits;
  {
    AutocastGuard autocast(true);
    h = prior->hidden(text, image);
    logits = prior->forward(text, image);
    bf16_head = prior->image_head(h.narrow(1, 6, 12)).to(torch::kFloat32);
  }
  ASSERT_EQ(logits.image.scalar_type(), torch::kFloat32);
  const torch::Tensor hf = h.to(torch::kFloat32);
  const torch::Tensor want_image = torch::nn::functional::linear(hf.narrow(1, 6, 12), prior->image_head->weight, prior->image_head->bias);
  const torch::Tensor want_text = torch::nn::functional::linear(hf.narrow(1, 0, 5), prior->text_head->weight, prior->text_head->bias);
  EXPECT_LT((logits.image - want_image).abs().max().item<double>(), 1e-5);
  EXPECT_LT((logits.text - want_text).abs().max().item<double>(), 1e-5);
  // The check can tell the two apart: a bf16 head is visibly further off.
  EXPECT_GT((bf16_head - want_image).abs().max().item<double>(), 1e-4);
  // The cached decoding path's logits are fp32 products too.
  KvCache cache = prior->make_cache(2);
  torch::Tensor first;
  {
    AutocastGuard autocast(true);
    first = prior->prefill(text, cache);
  }
  EXPECT_LT((first - want_image.select(1, 0)).abs().max().item<double>(), 2e-2);  // bf16 blocks, same head
  EXPECT_EQ(first.scalar_type(), torch::kFloat32);
}

TEST(Prior, CachedDecodingEqualsFullRecomputeAtEveryStep) {
  torch::manual_seed(1);
  // 5 layers cover row, column and conv masks; batch 3; a 3x4 (non-square) grid.
  Prior prior(test::toy_prior(5), 3, 4, 10);
  prior->eval();
  torch::NoGradGuard g;
  torch::Tensor text = torch::randint(0, 26, {3, 6}, torch::kLong);
  torch::Tensor image = torch::randint(0, 10, {3, 12}, torch::kLong);
  torch::Tensor full = prior->forward(text, image).image;
  KvCache cache = prior->make_cache(3);
  torch::Tensor logits = prior->prefill(text, cache);
  for (int64_t i = 0; i < 12; ++i) {
    EXPECT_TRUE(torch::allclose(logits, full.select(1, i), 1e-4, 1e-4)) << "token " << i;
    if (i + 1 < 12) logits = prior->step(image.select(1, i), i, cache);
  }
}

TEST(PriorLoss, WeightsTextAndImageOneToSeven) {
  PriorLogits logits;
  logits.text = torch::randn({2, 3, 7});
  logits.image = torch::randn({2, 5, 9});
  torch::Tensor text = torch::randint(0, 7, {2, 4}, torch::kLong);
  torch::Tensor image = torch::randint(0, 9, {2, 5}, torch::kLong);
  PriorLoss l = prior_loss(logits, text, image);
  const double ct = torch::nn::functional::cross_entropy(logits.text.reshape({-1, 7}), text.narrow(1, 1, 3).reshape({-1})).item<double>();
  const double ci = torch::nn::functional::cross_entropy(logits.image.reshape({-1, 9}), image.reshape({-1})).item<double>();
  EXPECT_NEAR(l.text.item<double>(), ct, 1e-6);
  EXPECT_NEAR(l.image.item<double>(), ci, 1e-6);
  EXPECT_NEAR(l.loss.item<double>(), ct / 8 + 7 * ci / 8, 1e-6);
}

TEST(Text, PadTextUsesOnePadIdPerPosition) {
  const auto padded = pad_text({5, 6}, 5, 100);
  EXPECT_EQ(padded, (std::vector<int64_t>{5, 6, 102, 103, 104}));
  EXPECT_EQ(pad_text({1, 2, 3, 4}, 2, 100), (std::vector<int64_t>{1, 2}));
}

TEST(Sampler, TopKOneIsArgmaxAndTopPKeepsTheNucleus) {
  torch::Generator gen = step_generator(0, 0, 0);
  torch::Tensor logits = torch::tensor({{0.0f, 3.0f, 1.0f}, {2.0f, 0.0f, 5.0f}});
  SamplerSettings s;
  s.top_k = 1;
  EXPECT_TRUE(torch::equal(sample_logits(logits, s, gen), torch::tensor({1, 2}, torch::kLong)));
  // p(top) = 0.84 for row 0 with these logits: top_p 0.5 keeps only it.
  SamplerSettings p;
  p.top_p = 0.5;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_logits(logits, p, gen)[0].item<int64_t>(), 1);
  // top_k = 2 never samples the least likely token.
  SamplerSettings k;
  k.top_k = 2;
  for (int i = 0; i < 50; ++i) EXPECT_NE(sample_logits(logits, k, gen)[0].item<int64_t>(), 0);
}

TEST(Sampler, TopPZeroIsArgmaxAndTheTokenThatCrossesPStays) {
  torch::Generator gen = step_generator(3, 0, 0);
  // Probabilities 0.5, 0.3, 0.2 (in a shuffled order, so the sort is exercised).
  const torch::Tensor logits = torch::tensor({{std::log(0.2f), std::log(0.5f), std::log(0.3f)}});
  SamplerSettings zero;
  zero.top_p = 0.0;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_logits(logits, zero, gen)[0].item<int64_t>(), 1);
  const torch::Tensor many = torch::randn({64, 50}, torch::kFloat32);
  EXPECT_TRUE(torch::equal(sample_logits(many, zero, gen), many.argmax(-1)));
  // p = 0.6: 0.5 is not enough, so the 0.3 token that crosses p is kept; the 0.2 token never is.
  SamplerSettings nucleus;
  nucleus.top_p = 0.6;
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(sample_logits(logits, nucleus, gen)[0].item<int64_t>());
  EXPECT_EQ(seen, (std::set<int64_t>{1, 2}));
}

TEST(Sampler, DrawsInProportionToTheKeptSoftmaxWhateverTheThreadCount) {
  // Probabilities 0.1, 0.2, 0.3, 0.4 (and one masked by top_k = 4): 64 rows x 100 draws each.
  const torch::Tensor row = torch::tensor({std::log(0.3f), std::log(0.1f), -30.0f, std::log(0.4f), std::log(0.2f)});
  const torch::Tensor logits = row.unsqueeze(0).expand({64, 5}).contiguous();
  SamplerSettings s;
  s.top_k = 4;
  torch::Generator gen = step_generator(11, 0, 0);
  torch::Tensor counts = torch::zeros({5}, torch::kDouble);
  for (int i = 0; i < 100; ++i) counts.index_add_(0, sample_logits(logits, s, gen), torch::ones({64}, torch::kDouble));
  const torch::Tensor freq = counts / counts.sum();
  const torch::Tensor want = torch::tensor({0.3, 0.1, 0.0, 0.4, 0.2}, torch::kDouble);
  EXPECT_LT((freq - want).abs().max().item<double>(), 0.03) << freq;  // 5 standard deviations
  EXPECT_EQ(counts[2].item<double>(), 0);
  // A vocabulary of several blocks (the draw scans block sums, then one block): mass in the
  // first, a middle and the last, partial block; then the last block dropped by top_k.
  for (int k : {0, 2}) {
    torch::Tensor wide = torch::full({300}, -30.0f);
    wide[3] = std::log(0.25f);
    wide[130] = std::log(0.5f);
    wide[299] = std::log(k == 0 ? 0.25f : 0.01f);
    SamplerSettings ks;
    ks.top_k = k;
    const torch::Tensor rows = wide.unsqueeze(0).expand({64, 300}).contiguous();
    torch::Tensor hits = torch::zeros({300}, torch::kDouble);
    for (int i = 0; i < 100; ++i) hits.index_add_(0, sample_logits(rows, ks, gen), torch::ones({64}, torch::kDouble));
    const torch::Tensor f = hits / hits.sum();
    // top_k = 2 keeps 0.25 and 0.5: renormalised to 1/3 and 2/3.
    EXPECT_NEAR(f[3].item<double>(), k == 0 ? 0.25 : 1.0 / 3, 0.03) << k;
    EXPECT_NEAR(f[130].item<double>(), k == 0 ? 0.5 : 2.0 / 3, 0.03) << k;
    EXPECT_NEAR(f[299].item<double>(), k == 0 ? 0.25 : 0.0, 0.03) << k;
    EXPECT_NEAR((f[3] + f[130] + f[299]).item<double>(), 1.0, 1e-9) << k;
  }
  // One uniform number per row, drawn before the rows split across threads.
  const torch::Tensor many = torch::randn({33, 300}) * 3;
  const int threads = at::get_num_threads();
  torch::Generator g1 = step_generator(12, 0, 0), g2 = step_generator(12, 0, 0);
  at::set_num_threads(1);
  const torch::Tensor one = sample_logits(many, SamplerSettings{}, g1);
  at::set_num_threads(2);
  const torch::Tensor two = sample_logits(many, SamplerSettings{}, g2);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, two));
  // Logits that are not numbers are an error, not a silent token.
  torch::Tensor bad = torch::zeros({2, 4});
  bad[1][2] = NAN;
  EXPECT_THROW(sample_logits(bad, SamplerSettings{}, gen), Error);
}

TEST(Sampler, SameSeedSameTokens) {
  torch::manual_seed(2);
  Prior prior(test::toy_prior(2), 2, 2, 10);
  prior->eval();
  torch::Tensor text = torch::randint(0, 26, {2, 6}, torch::kLong);
  torch::Generator g1 = step_generator(9, 0, 0), g2 = step_generator(9, 0, 0);
  SamplerSettings s;
  EXPECT_TRUE(torch::equal(sample_image_tokens(prior, text, s, g1), sample_image_tokens(prior, text, s, g2)));
}

TEST(PriorCost, CountsFollowTheConfigAndMasksSaveAttention) {
  PriorConfig c = test::toy_prior(4);
  c.d_model = 64;
  const PriorCost cost = prior_cost(c, 8, 8, 32, 2);
  EXPECT_EQ(cost.params, prior_param_count(c, 8, 8, 32));
  // Sparse masks attend to fewer keys than dense causal attention.
  EXPECT_LT(cost.train_flops_per_token, cost.train_flops_per_token_dense);
  // Training is forward + backward (3x), and a cached sampling step is at least the blocks' 24 d^2 L.
  EXPECT_GT(cost.train_flops_per_token, 3 * 24.0 * 64 * 64 * 4);
  EXPECT_GE(cost.sample_flops_per_token, 24.0 * 64 * 64 * 4);
  EXPECT_EQ(cost.weight_bytes, 4 * cost.params);
  EXPECT_EQ(cost.optimizer_bytes, 12 * cost.params);
  EXPECT_EQ(prior_cost(c, 8, 8, 32, 4).activation_bytes, 2 * cost.activation_bytes);
}

TEST(Sampler, GuidanceScaleOneIsPlainSamplingAndZeroIsUnconditional) {
  torch::manual_seed(4);
  Prior prior(test::toy_prior(3), 2, 3, 10);
  prior->eval();
  torch::Tensor text = torch::randint(0, 20, {2, 6}, torch::kLong);
  torch::Tensor uncond = torch::tensor(pad_text({}, 6, 20)).unsqueeze(0).expand({2, 6}).contiguous();
  SamplerSettings plain, one, zero;
  one.cfg_scale = 1.0;
  zero.cfg_scale = 0.0;
  auto sample = [&](const torch::Tensor& t, const SamplerSettings& s) {
    torch::Generator g = step_generator(5, 0, 0);
    return sample_image_tokens(prior, t, s, g, {}, uncond);
  };
  EXPECT_TRUE(torch::equal(sample(text, one), sample(text, plain)));
  // cfg 0 keeps only the unconditional logits: the same as sampling with the empty caption.
  EXPECT_TRUE(torch::equal(sample(text, zero), sample(uncond, plain)));
  // Guidance without the unconditional batch is an error, not a silent fallback.
  SamplerSettings strong;
  strong.cfg_scale = 3.0;
  torch::Generator g = step_generator(5, 0, 0);
  EXPECT_THROW(sample_image_tokens(prior, text, strong, g), Error);
  EXPECT_EQ(sample(text, strong).sizes(), (std::vector<int64_t>{2, 6}));
}

TEST(Sampler, InitRowsAreKeptExactlyAndTheRestSampled) {
  torch::manual_seed(6);
  Prior prior(test::toy_prior(4), 3, 4, 10);
  prior->eval();
  const torch::Tensor text = torch::randint(0, 20, {2, 6}, torch::kLong);
  const torch::Tensor init = torch::randint(0, 10, {2, 8}, torch::kLong);  // the first 2 rows
  torch::Generator g = step_generator(3, 0, 0);
  const torch::Tensor out = sample_image_tokens(prior, text, SamplerSettings{}, g, {}, {}, init);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 12}));
  EXPECT_TRUE(torch::equal(out.narrow(1, 0, 8), init));
  EXPECT_TRUE(out.ge(0).all().item<bool>() && out.lt(10).all().item<bool>());
  // With guidance too (the init rows go to the conditional and unconditional halves).
  SamplerSettings guided;
  guided.cfg_scale = 2;
  const torch::Tensor uncond = torch::tensor(pad_text({}, 6, 20)).unsqueeze(0).expand({2, 6}).contiguous();
  EXPECT_TRUE(torch::equal(sample_image_tokens(prior, text, guided, g, {}, uncond, init).narrow(1, 0, 8), init));
  // A whole image of init tokens leaves nothing to sample: an error, not a silent no-op.
  EXPECT_THROW(sample_image_tokens(prior, text, SamplerSettings{}, g, {}, {}, torch::zeros({2, 12}, torch::kLong)),
               Error);
}

TEST(Sampler, TopKOneIsTheGreedyPathOfTheFullModel) {
  torch::manual_seed(8);
  Prior prior(test::toy_prior(5), 3, 4, 10);
  prior->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor text = torch::randint(0, 20, {2, 6}, torch::kLong);
  SamplerSettings greedy;
  greedy.top_k = 1;
  torch::Generator g = step_generator(1, 0, 0);
  const torch::Tensor sampled = sample_image_tokens(prior, text, greedy, g);
  // The reference: argmax of a full forward pass, one token at a time.
  torch::Tensor image = torch::zeros({2, 12}, torch::kLong);
  for (int64_t i = 0; i < 12; ++i) image.select(1, i).copy_(prior->forward(text, image).image.select(1, i).argmax(-1));
  EXPECT_TRUE(torch::equal(sampled, image));
}

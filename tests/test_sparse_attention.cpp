// The sparse attention path against the dense masked reference: outputs and gradients, every
// mask type, text lengths 0..full, square, non-square and odd grids, whole-model logits.
#include <gtest/gtest.h>
#include "dalle/util/torch_api.h"
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "dalle/prior/loss.h"
#include "dalle/prior/masks.h"
#include "dalle/prior/sparse_attention.h"
#include "dalle/prior/transformer.h"

using namespace dalle;

namespace {

torch::Tensor dense_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              MaskType type, const MaskShape& shape) {
  const torch::Tensor allowed = dense_attention_mask(type, shape);
  const torch::Tensor bias = torch::zeros(allowed.sizes()).masked_fill(allowed.logical_not(), -INFINITY);
  const torch::Tensor scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(q.size(-1))) + bias;
  return torch::matmul(torch::softmax(scores, -1), v);
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

TEST(SparseAttention, MatchesDenseOutputsAndGradientsForEveryMaskAndShape) {
  torch::manual_seed(0);
  const std::vector<std::array<int, 3>> grids = {{4, 4, 3}, {3, 5, 3}, {5, 3, 5}, {7, 7, 11}, {1, 6, 3}, {6, 1, 3}};
  int cases = 0;
  for (const auto& [h, w, kernel] : grids)
    for (int t : {0, 1, 5})
      for (MaskType type : {MaskType::row, MaskType::column, MaskType::conv}) {
        const MaskShape shape{t, h, w, kernel};
        const int64_t len = t + h * w;
        auto make = [&] { return torch::randn({2, 3, len, 8}, torch::requires_grad()); };
        torch::Tensor q = make(), k = make(), v = make();
        const BlockLayout layout = block_layout_make(type, shape);
        const torch::Tensor text_bias = torch::full({t, t}, -INFINITY).triu(1);
        const torch::Tensor fast = sparse_masked_attention(q, k, v, layout, t, text_bias);
        const torch::Tensor ref = dense_reference(q, k, v, type, shape);
        const std::string what = mask_type_name(type) + " " + std::to_string(h) + "x" + std::to_string(w) +
                                 " text " + std::to_string(t);
        ASSERT_EQ(fast.sizes(), ref.sizes()) << what;
        EXPECT_LT(max_diff(fast, ref), 1e-5) << what;
        const torch::Tensor weights = torch::randn(ref.sizes());
        const auto g_fast = torch::autograd::grad({(fast * weights).sum()}, {q, k, v});
        const auto g_ref = torch::autograd::grad({(ref * weights).sum()}, {q, k, v});
        for (size_t i = 0; i < 3; ++i) EXPECT_LT(max_diff(g_fast[i], g_ref[i]), 1e-5) << what << " grad " << i;
        ++cases;
      }
  EXPECT_EQ(cases, 54);
}

TEST(SparseAttention, WindowsCoverExactlyTheAllowedPairsAndStaySmall) {
  const MaskShape shape{0, 32, 32, 11};
  for (MaskType type : {MaskType::row, MaskType::column, MaskType::conv}) {
    const BlockLayout layout = block_layout_make(type, shape);
    const int64_t dense_pairs = dense_attention_mask(type, shape).sum().item<int64_t>();
    EXPECT_EQ(layout.allowed_pairs, dense_pairs) << mask_type_name(type);
    EXPECT_EQ((layout.bias == 0).sum().item<int64_t>(), dense_pairs) << mask_type_name(type);
    // Scores computed per query: far fewer than the 1024 of a dense image-to-image product.
    EXPECT_LE(layout.bias.size(2), 7 * 32) << mask_type_name(type);
  }
  EXPECT_EQ(block_layout_make(MaskType::row, shape).prev_blocks, 1);
  EXPECT_EQ(block_layout_make(MaskType::column, shape).prev_blocks, 0);
  EXPECT_EQ(block_layout_make(MaskType::conv, shape).prev_blocks, 6);
}

TEST(SparseAttention, WholePriorAgreesWithTheDenseReference) {
  torch::manual_seed(1);
  PriorConfig c;
  c.layers = 5;  // row, column, row, row, conv
  c.d_model = 32;
  c.heads = 4;
  c.text_len = 6;
  c.text_vocab = 20;
  c.conv_kernel = 3;
  Prior prior(c, 3, 5, 16);
  const torch::Tensor text = torch::randint(0, c.text_vocab + c.text_len, {2, c.text_len});
  const torch::Tensor image = torch::randint(0, 16, {2, 15});
  auto run = [&](bool dense) {
    prior->use_dense_attention(dense);
    prior->zero_grad();
    PriorLogits logits = prior->forward(text, image);
    prior_loss(logits, text, image, 1.0 / 8).loss.backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : prior->parameters()) grads.push_back(p.grad().clone());
    return std::make_pair(logits, grads);
  };
  const auto [sparse_logits, sparse_grads] = run(false);
  const auto [dense_logits, dense_grads] = run(true);
  EXPECT_LT(max_diff(sparse_logits.text, dense_logits.text), 1e-5);
  EXPECT_LT(max_diff(sparse_logits.image, dense_logits.image), 1e-5);
  for (size_t i = 0; i < sparse_grads.size(); ++i) EXPECT_LT(max_diff(sparse_grads[i], dense_grads[i]), 1e-5) << i;
}

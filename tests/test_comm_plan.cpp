// The communication plan of `dalle info`: the prior's parameters listed from the config must be
// the built model's, and the bytes must follow compressible.h's conventions exactly.
#include <gtest/gtest.h>

#include "dalle/dist/comm_plan.h"
#include "dalle/prior/cost.h"
#include "dalle/prior/transformer.h"
#include "dalle/util/error.h"
#include "test_util.h"

using namespace dalle;

namespace {

ModelConfig preset(const std::string& name) {
  return config_load(std::string(DALLE_SOURCE_DIR) + "/configs/" + name + ".json");
}

// A fully written-out plan input: one compressible [8, 2] matrix and tensors that stay fp32.
const std::vector<ParamShape> kHandParams = {
    {"text_emb.weight", {5, 2}},         // embedding: fp32
    {"blocks.0.attn.ln.weight", {2}},    // gain: fp32
    {"blocks.0.mlp.fc.weight", {8, 2}},  // resblock matrix: P [8, r], Q [2, r] in 16 bits
    {"blocks.0.mlp.fc.bias", {8}},       // bias: fp32
};
constexpr double kOneBytePerSecond = 8e-9;  // Gbit/s: seconds then equal bytes

}  // namespace

// The plan can never drift from the model: names, shapes and order of a really built prior.
TEST(PriorParamShapes, MatchTheBuiltPriorsNamedParameters) {
  const ModelConfig tiny = preset("tiny");
  const int grid = tiny.vae.grid();
  struct Case {
    PriorConfig config;
    int grid_h, grid_w, image_vocab;
  };
  for (const Case& k : {Case{tiny.prior, grid, grid, tiny.vae.vocab}, Case{test::toy_prior(3), 3, 4, 10}}) {
    Prior prior(k.config, k.grid_h, k.grid_w, k.image_vocab);
    const auto built = prior->named_parameters();
    const auto planned = prior_param_shapes(k.config, k.grid_h, k.grid_w, k.image_vocab);
    ASSERT_EQ(planned.size(), built.size());
    int64_t total = 0;
    for (size_t i = 0; i < planned.size(); ++i) {
      EXPECT_EQ(planned[i].name, built[i].key()) << i;
      EXPECT_EQ(planned[i].shape, built[i].value().sizes().vec()) << planned[i].name;
      total += built[i].value().numel();
    }
    EXPECT_EQ(total, prior_param_count(k.config, k.grid_h, k.grid_w, k.image_vocab));
  }
}

TEST(CommPlan, HandComputedBytes) {
  // fp32 payload 4 * (10 + 2 + 16 + 8) = 144; PowerSGD rank 1: 2 * (8 + 2) * 1 = 20 for the
  // matrix plus 4 * 20 = 80 for the rest = 100. A ring of 4 sends 2 * 3/4 = 1.5x of each.
  const CommPlan p = comm_plan(kHandParams, 4, 1, kOneBytePerSecond);
  EXPECT_EQ(p.payload_bytes_uncompressed, 144);
  EXPECT_EQ(p.payload_bytes_powersgd, 100);
  EXPECT_EQ(p.comm_bytes_per_step_uncompressed, 216);
  EXPECT_EQ(p.comm_bytes_per_step_powersgd, 150);
  EXPECT_DOUBLE_EQ(p.powersgd_compression, 1.0 - 100.0 / 144.0);
  EXPECT_DOUBLE_EQ(p.comm_seconds_per_step_uncompressed, 216);
  EXPECT_DOUBLE_EQ(p.comm_seconds_per_step_powersgd, 150);
  EXPECT_EQ(p.compressed_matrices, 1);
  EXPECT_EQ(p.compressed_params, 16);
  EXPECT_EQ(p.uncompressed_params, 20);
  EXPECT_EQ(p.rank_capped_matrices, 0);
  EXPECT_EQ(p.min_effective_rank, 1);
}

TEST(CommPlan, RankIsCappedAtTheMatrixsSmallerSide) {
  // Rank 5 on [8, 2] sends rank 2: 2 * (8 + 2) * 2 = 40, plus 80 fp32.
  const CommPlan p = comm_plan(kHandParams, 2, 5, kOneBytePerSecond);
  EXPECT_EQ(p.payload_bytes_powersgd, 120);
  EXPECT_EQ(p.comm_bytes_per_step_powersgd, 120);  // a ring of 2 sends the payload once
  EXPECT_EQ(p.rank_capped_matrices, 1);
  EXPECT_EQ(p.min_effective_rank, 2);
}

TEST(CommPlan, OneRankSendsNothing) {
  const CommPlan p = comm_plan(kHandParams, 1, 1, 100);
  EXPECT_EQ(p.comm_bytes_per_step_uncompressed, 0);
  EXPECT_EQ(p.comm_bytes_per_step_powersgd, 0);
  EXPECT_EQ(p.comm_seconds_per_step_uncompressed, 0);
  EXPECT_EQ(p.comm_seconds_per_step_powersgd, 0);
  // The compression is of the payload, so it does not depend on the world size.
  EXPECT_DOUBLE_EQ(p.powersgd_compression, comm_plan(kHandParams, 4, 1, 100).powersgd_compression);
}

TEST(CommPlan, RankZeroIsOff) {
  const CommPlan p = comm_plan(kHandParams, 4, 0, 100);
  EXPECT_EQ(p.payload_bytes_powersgd, p.payload_bytes_uncompressed);
  EXPECT_EQ(p.compressed_matrices, 0);
  EXPECT_EQ(p.powersgd_compression, 0);
}

TEST(CommPlan, BadArgumentsAreErrors) {
  EXPECT_THROW(comm_plan(kHandParams, 0, 1, 100), Error);
  EXPECT_THROW(comm_plan(kHandParams, 4, -1, 100), Error);
  EXPECT_THROW(comm_plan(kHandParams, 4, 1, 0), Error);
}

// From a config: the four weight matrices of each layer are compressed, all else is fp32.
TEST(CommPlan, TinyPriorsResblockMatricesAreCompressed) {
  const ModelConfig c = preset("tiny");
  const int64_t d = c.prior.d_model, layers = c.prior.layers;
  const int64_t params = prior_param_count(c.prior, c.vae.grid(), c.vae.grid(), c.vae.vocab);
  const int64_t r = 8;  // below d: no cap
  const CommPlan p = comm_plan(c, 3, r, 100);
  EXPECT_EQ(p.compressed_matrices, 4 * layers);
  EXPECT_EQ(p.compressed_params, 12 * d * d * layers);
  EXPECT_EQ(p.uncompressed_params, params - 12 * d * d * layers);
  EXPECT_EQ(p.payload_bytes_uncompressed, 4 * params);
  // qkv [3d, d], proj [d, d], fc [4d, d], proj [d, 4d]: (n + m) summed is 16d per layer.
  EXPECT_EQ(p.payload_bytes_powersgd, 4 * p.uncompressed_params + 2 * 16 * d * r * layers);
  EXPECT_DOUBLE_EQ(p.comm_bytes_per_step_uncompressed, 4.0 / 3.0 * 4 * params);
  // Above d every matrix is capped at d.
  const CommPlan capped = comm_plan(c, 3, 896, 100);
  EXPECT_EQ(capped.rank_capped_matrices, 4 * layers);
  EXPECT_EQ(capped.min_effective_rank, d);
}

// Per-resblock gradient scaling, fp16 numerics and activation checkpointing (SPEC §3).
#include <gtest/gtest.h>

#include "dalle/util/torch_api.h"

#include <cmath>
#include <cstdio>
#include <fstream>

#include "dalle/bundle/bundle.h"
#include "dalle/data/token_set.h"
#include "dalle/io/plot.h"
#include "dalle/io/safetensors.h"
#include "dalle/io/weights.h"
#include "dalle/prior/loss.h"
#include "dalle/train/grad_scaling.h"
#include "dalle/train/precision.h"
#include "dalle/train/prior_trainer.h"
#include "dalle/train/resblock_runner.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "test_paths.h"
#include "test_prior_runs.h"
#include "test_util.h"

using namespace dalle;

namespace {

struct ToyBatch {
  torch::Tensor text, image;
};

ToyBatch toy_batch(int64_t batch, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randint(0, 26, {batch, 6}, torch::kLong), torch::randint(0, 10, {batch, 12}, torch::kLong)};
}

// Fresh .grad of every parameter after one forward + backward.
std::vector<torch::Tensor> grads_of(Prior& prior, const ToyBatch& b, bool bf16 = false, double loss_factor = 1.0) {
  for (auto& p : prior->parameters()) p.mutable_grad() = torch::Tensor();
  PriorLogits logits;
  {
    AutocastGuard autocast(bf16);
    logits = prior->forward(b.text, b.image);
  }
  (prior_loss(logits, b.text, b.image, 1.0 / 8).loss * loss_factor).backward();
  std::vector<torch::Tensor> out;
  for (auto& p : prior->parameters()) out.push_back(p.grad().clone());
  return out;
}

// AdamW over every parameter of `prior`, without weight decay.
AdamW adamw_for(Prior& prior) {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (auto& item : prior->named_parameters()) named.emplace_back(item.key(), item.value());
  return AdamW(named, {0.9, 0.96, 1e-8, 0.0}, [](const std::string&) { return false; });
}

void expect_same_grads(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i], b[i], tol, tol * 1e-2)) << "parameter " << i << ": max diff "
                                                               << (a[i] - b[i]).abs().max().item<double>();
}

}  // namespace

TEST(GradScales, StartGrowAndClampFollowThePaper) {
  GradScales s(3);
  EXPECT_EQ(s.scale(0), std::exp2(13));
  EXPECT_EQ(GradScales(2, 4).scale(1), 4 * std::exp2(13));  // M replicas
  EXPECT_FALSE(s.update({false, false, false}, 0));
  EXPECT_DOUBLE_EQ(s.scale(2), std::exp2(13 + 1.0 / 1000));
  for (int64_t step = 1; step <= 1000; ++step) s.update({false, false, false}, step);
  EXPECT_NEAR(std::log2(s.scale(0)), 14.001, 1e-9);
  s.set_scale(1, std::exp2(24));
  s.update({false, false, false}, 1001);
  EXPECT_EQ(s.scale(1), std::exp2(24));  // upper clamp
  GradScales low(1, 2);
  low.set_scale(0, 2 * std::exp2(7.2));
  low.update({true}, 0);
  EXPECT_EQ(low.scale(0), 2 * std::exp2(7));  // lower clamp, times M
}

TEST(GradScales, OverflowLowersOnlyThatBlockAtMostOncePer125Updates) {
  GradScales s(3);
  const double start = s.scale(0);
  EXPECT_TRUE(s.update({false, true, false}, 10));
  EXPECT_DOUBLE_EQ(s.scale(1), start / std::sqrt(2.0));
  EXPECT_EQ(s.scale(0), start);  // a skipped update grows no scale
  EXPECT_EQ(s.scale(2), start);
  EXPECT_TRUE(s.update({false, true, false}, 134));  // still skipped, not lowered again
  EXPECT_DOUBLE_EQ(s.scale(1), start / std::sqrt(2.0));
  EXPECT_TRUE(s.update({false, true, false}, 135));
  EXPECT_DOUBLE_EQ(s.scale(1), start / 2);
  GradScales restored(3);
  restored.load_state(s.state());
  EXPECT_EQ(restored.scales(), s.scales());
  EXPECT_TRUE(restored.update({false, true, false}, 200));  // the 125-update window survives a resume
  EXPECT_DOUBLE_EQ(restored.scale(1), start / 2);
  EXPECT_THROW(GradScales(2).load_state(s.state()), Error);
}

TEST(ActivationCheckpointing, GradientsEqualTheStoredActivationRun) {
  for (bool bf16 : {false, true}) {
    torch::manual_seed(0);
    Prior prior(test::toy_prior(5), 3, 4, 10);
    const ToyBatch b = toy_batch(3, 1);
    const auto plain = grads_of(prior, b, bf16);
    ResblockRunnerOptions o;
    o.checkpoint = true;
    prior->set_resblock_runner(resblock_runner_make(o));
    expect_same_grads(grads_of(prior, b, bf16), plain, bf16 ? 1e-3 : 1e-5);
  }
}

TEST(GradScaling, UnscaledGradientsEqualUnscaledRun) {
  torch::manual_seed(0);
  Prior prior(test::toy_prior(3), 3, 4, 10);
  const ToyBatch b = toy_batch(3, 1);
  const auto plain = grads_of(prior, b);
  GradScales scales(6);
  for (int64_t i = 0; i < 6; ++i) scales.set_scale(i, std::exp2(8 + 3 * i + 0.37));  // not powers of two
  ResblockRunnerOptions o;
  o.scales = &scales;
  o.checkpoint = true;
  prior->set_resblock_runner(resblock_runner_make(o));
  grads_of(prior, b);
  const auto overflowed = grad_scales_unscale(scales, prior->resblock_parameters(), false);
  EXPECT_EQ(overflowed, std::vector<bool>(6, false));
  std::vector<torch::Tensor> got;
  for (auto& p : prior->parameters()) got.push_back(p.grad());
  expect_same_grads(got, plain, 1e-5);
}

// fp16 as `device` trains it (precision.h): emulated by rounding on the CPU, real fp16 products
// under autocast on a GPU.
void expect_inf_in_one_block_skips_the_update(const c10::Device& device) {
  const PrecisionPlan plan = precision_plan(Precision::fp16, device);
  torch::manual_seed(0);
  Prior prior(test::toy_prior(2), 3, 4, 10);
  prior->to(device);
  ToyBatch b = toy_batch(4, 2);
  b.text = b.text.to(device);
  b.image = b.image.to(device);
  const auto blocks = prior->resblock_parameters();
  GradScales scales(static_cast<int64_t>(blocks.size()));
  ResblockRunnerOptions o;
  o.scales = &scales;
  o.fp16 = plan.emulate_fp16;
  const ResblockRunner runner = resblock_runner_make(o);
  const int64_t bad_block = 2;  // attn_1: the blocks before it must not see its Inf
  bool inject = true;
  prior->set_resblock_runner([&](int64_t block, const torch::Tensor& x, const ResidualBranch& branch) {
    if (block != bad_block || !inject) return runner(block, x, branch);
    return runner(block, x, [branch](const torch::Tensor& h) {
      torch::Tensor y = branch(h);
      y.register_hook([](torch::Tensor g) {
        g = g.clone();
        g.view(-1)[0] = INFINITY;
        return g;
      });
      return y;
    });
  });
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (auto& item : prior->named_parameters()) named.emplace_back(item.key(), item.value());
  AdamW adam(named, {0.9, 0.96, 1e-8, 0.0}, [](const std::string&) { return false; });
  auto snapshot = [&] {
    SafeTensors st;
    adam.state_into(st);
    for (auto& [name, p] : named) st.tensors["param." + name] = p.detach().clone();
    for (auto& [name, t] : st.tensors) t = t.clone();
    return st;
  };
  auto train_step = [&](int64_t step) {
    adam.zero_grad();
    PriorLogits logits;
    {
      AutocastGuard autocast(plan.autocast, device.type(), plan.dtype);
      logits = prior->forward(b.text, b.image);
    }
    EXPECT_EQ(logits.image.scalar_type(), torch::kFloat32);
    prior_loss(logits, b.text, b.image, 1.0 / 8).loss.backward();
    return scaled_update(&scales, blocks, true, prior->parameters(), 4.0, adam, 1e-3, step);
  };

  const SafeTensors before = snapshot();
  const double start = scales.scale(0);
  EXPECT_FALSE(train_step(0).has_value());  // skipped
  for (int64_t i = 0; i < static_cast<int64_t>(blocks.size()); ++i)
    EXPECT_DOUBLE_EQ(scales.scale(i), i == bad_block ? start / std::sqrt(2.0) : start) << "block " << i;
  const SafeTensors after = snapshot();
  EXPECT_EQ(after.metadata.at("adam_steps"), "0");
  for (auto& [name, t] : before.tensors) EXPECT_TRUE(torch::equal(t, after.tensors.at(name))) << name;

  inject = false;
  const auto norm = train_step(1);
  ASSERT_TRUE(norm.has_value());
  EXPECT_TRUE(std::isfinite(*norm));
  EXPECT_DOUBLE_EQ(scales.scale(0), start * std::exp2(1.0 / 1000));
  const SafeTensors trained = snapshot();
  EXPECT_EQ(trained.metadata.at("adam_steps"), "1");
  EXPECT_FALSE(torch::equal(before.tensors.at("param.blocks.1.attn.qkv.weight"),
                            trained.tensors.at("param.blocks.1.attn.qkv.weight")));
}

TEST(GradScaling, InfInOneBlockLowersItsScaleAndSkipsTheWholeUpdate) {
  for (const c10::Device& device : test::devices()) {
    SCOPED_TRACE(device.str());
    expect_inf_in_one_block_skips_the_update(device);
  }
}

// SPEC §3 keeps gains and biases 32-bit: in fp16 mode their gradients are not rounded to fp16 and
// an Inf among them is no overflow of the block's 16-bit arithmetic.
TEST(GradScaling, GainsAndBiasesStay32BitAndOutOfTheOverflowCheck) {
  torch::manual_seed(0);
  Prior prior(test::toy_prior(2), 3, 4, 10);
  const ToyBatch b = toy_batch(2, 1);
  grads_of(prior, b);
  const auto blocks = prior->resblock_parameters();
  GradScales scales(static_cast<int64_t>(blocks.size()));
  const double s0 = scales.scale(0);
  // Block 0 is attention: ln.weight, ln.bias, qkv.weight, qkv.bias, proj.weight, proj.bias.
  torch::Tensor ln_gain = prior->attn[0]->ln->weight, qkv_bias = prior->attn[0]->qkv->bias;
  torch::Tensor qkv_weight = prior->attn[0]->qkv->weight;
  {
    torch::NoGradGuard no_grad;
    // 1 + 2^-20 is not an fp16 number (10 mantissa bits): rounding would make it 1.
    ln_gain.mutable_grad().fill_((1 + std::exp2(-20)) * s0);
    qkv_weight.mutable_grad().fill_((1 + std::exp2(-20)) * s0);
    qkv_bias.mutable_grad()[0] = INFINITY;
  }
  const auto overflowed = grad_scales_unscale(scales, blocks, /*fp16_grads=*/true);
  EXPECT_FALSE(overflowed[0]) << "a bias's Inf is not the block's fp16 overflow";
  EXPECT_EQ(ln_gain.grad()[0].item<float>(), static_cast<float>(1 + std::exp2(-20)));  // unscaled, not rounded
  EXPECT_EQ(qkv_weight.grad()[0][0].item<float>(), 1.0f);  // the 16-bit weight's gradient is rounded
  // The bias's Inf still skips the update, through the global check, and lowers no scale.
  AdamW adam = adamw_for(prior);
  grads_of(prior, b);
  qkv_bias.mutable_grad()[1] = INFINITY;
  for (int64_t i = 0; i < static_cast<int64_t>(blocks.size()); ++i) scales.set_scale(i, s0);
  EXPECT_FALSE(scaled_update(&scales, blocks, true, prior->parameters(), 4.0, adam, 1e-3, 0).has_value());
  for (int64_t i = 0; i < static_cast<int64_t>(blocks.size()); ++i) EXPECT_EQ(scales.scale(i), s0) << "block " << i;
}

// A non-finite gradient outside the resblocks (an embedding here) skips the update, and the
// finite blocks' scales do not grow on a skipped update.
TEST(GradScaling, SkippedUpdateForAnOutsideGradientGrowsNoScale) {
  torch::manual_seed(0);
  Prior prior(test::toy_prior(2), 3, 4, 10);
  const ToyBatch b = toy_batch(2, 1);
  const auto blocks = prior->resblock_parameters();
  GradScales scales(static_cast<int64_t>(blocks.size()));
  AdamW adam = adamw_for(prior);
  const torch::Tensor before = prior->text_emb->weight.detach().clone();
  const std::vector<double> start = scales.scales();
  grads_of(prior, b);
  prior->text_emb->weight.mutable_grad()[0][0] = NAN;
  EXPECT_FALSE(scaled_update(&scales, blocks, true, prior->parameters(), 4.0, adam, 1e-3, 0).has_value());
  EXPECT_EQ(scales.scales(), start);
  EXPECT_TRUE(torch::equal(prior->text_emb->weight, before));
  // fp32 mode (no scales) skips it too, rather than stepping into NaN weights.
  EXPECT_FALSE(scaled_update(nullptr, blocks, false, prior->parameters(), 4.0, adam, 1e-3, 0).has_value());
  EXPECT_TRUE(torch::equal(prior->text_emb->weight, before));
  // With every gradient finite the same call takes the update and grows the scales.
  grads_of(prior, b);
  EXPECT_TRUE(scaled_update(&scales, blocks, true, prior->parameters(), 4.0, adam, 1e-3, 1).has_value());
  EXPECT_DOUBLE_EQ(scales.scale(0), start[0] * std::exp2(1.0 / 1000));
}

// The paper's reason for per-resblock scales: in a deep model the gradients reaching different
// resblocks span more binades than fp16 holds, so the one scale that keeps the block with the
// largest gradients from overflowing flushes the small gradients of later blocks to zero.
// Here resblock b's output enters the identity path with a post-gain of 2^(-2.5 b) (a gain
// that shrinks with depth, like a tiny init of later blocks), so the gradient reaching it shrinks
// by 2.5 binades per block, and the loss is scaled by 512 (a sum rather than a mean over
// tokens) so the first block's gradients sit near fp16's top. Each scale is set where dynamic scaling settles: the largest power of two in
// [2^7, 2^24] without overflow, per block or (one global scale) for all blocks at once.
TEST(GradScaling, PerResblockScalesUnderflowFarLessThanOneGlobalScale) {
  const int layers = 8;
  torch::manual_seed(0);
  Prior prior(test::toy_prior(layers), 3, 4, 10);
  const auto blocks = prior->resblock_parameters();
  const double loss_factor = 512, binades_per_block = 2.5;
  GradScales scales(static_cast<int64_t>(blocks.size()));
  ResblockRunnerOptions o;
  o.scales = &scales;
  o.fp16 = true;
  ResblockRunner runner;  // fp32 first, for the reference gradients
  prior->set_resblock_runner([&](int64_t block, const torch::Tensor& x, const ResidualBranch& branch) {
    const torch::Tensor out = runner ? runner(block, x, branch) : branch(x);
    return out * std::exp2(-binades_per_block * static_cast<double>(block));
  });
  const ToyBatch batch = toy_batch(8, 3);
  const auto reference = grads_of(prior, batch, false, loss_factor);  // fp32: what should survive
  std::vector<torch::Tensor> reference_blocks;
  {
    const auto all = prior->parameters();
    for (const auto& block : blocks)
      for (const torch::Tensor& p : block)
        for (size_t i = 0; i < all.size(); ++i)
          if (all[i].is_same(p)) reference_blocks.push_back(reference[i]);
  }
  runner = resblock_runner_make(o);
  auto run = [&](const std::vector<double>& log2_scales) {
    for (size_t b = 0; b < blocks.size(); ++b) scales.set_scale(static_cast<int64_t>(b), std::exp2(log2_scales[b]));
    grads_of(prior, batch, false, loss_factor);
    return grad_scales_unscale(scales, blocks, true);
  };
  std::vector<double> per_block(blocks.size(), GradScales::kMinLog2);
  std::vector<bool> found(blocks.size(), false);
  double global = GradScales::kMinLog2;
  for (double k = GradScales::kMaxLog2; k >= GradScales::kMinLog2; --k) {
    const auto overflowed = run(std::vector<double>(blocks.size(), k));
    bool any = false;
    for (size_t b = 0; b < blocks.size(); ++b) {
      any |= overflowed[b];
      if (!overflowed[b] && !found[b]) per_block[b] = k, found[b] = true;
    }
    if (!any) {
      global = k;
      break;
    }
  }
  auto underflow = [&](const std::vector<double>& log2_scales) {
    const auto overflowed = run(log2_scales);
    EXPECT_EQ(std::count(overflowed.begin(), overflowed.end(), true), 0);
    int64_t lost = 0, nonzero = 0;
    size_t i = 0;
    for (const auto& block : blocks)
      for (const torch::Tensor& p : block) {
        // Gradients that are round-off noise in fp32 (e.g. the key biases', exactly zero in
        // theory) do not count: only those within 2^-20 of their tensor's largest.
        const torch::Tensor ref = reference_blocks[i++].abs();
        const torch::Tensor ref_nonzero = ref > ref.max() * std::exp2(-20);
        nonzero += ref_nonzero.sum().item<int64_t>();
        lost += (ref_nonzero & (p.grad() == 0)).sum().item<int64_t>();
      }
    return static_cast<double>(lost) / static_cast<double>(nonzero);
  };
  const double global_loss = underflow(std::vector<double>(blocks.size(), global));
  const double per_block_loss = underflow(per_block);
  std::string ks;
  for (double k : per_block) ks += " " + std::to_string(static_cast<int>(k));
  std::printf("[          ] %zu resblocks, global scale 2^%.0f, per-resblock 2^{%s }\n", blocks.size(), global,
              ks.c_str());
  std::printf("[          ] gradients flushed to zero: %.2f%% with one global scale, %.2f%% with per-resblock scales\n",
              100 * global_loss, 100 * per_block_loss);
  EXPECT_GT(global_loss, 0.05);
  EXPECT_LT(per_block_loss, global_loss / 20);
}


// The `small` preset's prior (4 layers, d 256) for 60 updates at batch 8 on synthetic tokens:
// bf16 must end within 2% of fp32's validation loss.
TEST(Precision, Bf16SmallPriorValidationLossWithin2PercentOfFp32) {
  const std::string dir = test::scratch_dir("bf16_small").string();
  ModelConfig c = test::preset("small");
  c.prior_train.batch = 8;
  test::write_synthetic_tokens(dir + "/tokens", c, 600);
  double val[2] = {};
  const char* precision[2] = {"fp32", "bf16"};
  for (int p = 0; p < 2; ++p) {
    PriorTrainOptions o;
    o.data = dir + "/tokens";
    o.out = dir + "/prior_" + precision[p];
    o.steps = 60;
    o.val_every = 60;
    o.precision = precision[p];
    o.quiet = true;
    o.sample_prompts.clear();
    const PriorTrainResult r = prior_train(c, o);
    const nlohmann::json last = test::metrics_of(o.out).back();
    val[p] = c.prior_train.text_loss_weight * last["val_loss_text"].get<double>() +
             (1 - c.prior_train.text_loss_weight) * last["val_loss_img"].get<double>();
    EXPECT_LT(r.last_loss, r.first_loss) << precision[p];
    EXPECT_EQ(r.skipped_steps, 0) << precision[p];
  }
  std::printf("[          ] validation loss after 60 updates: fp32 %.4f, bf16 %.4f (%+.2f%%)\n", val[0], val[1],
              100 * (val[1] / val[0] - 1));
  EXPECT_NEAR(val[1], val[0], 0.02 * val[0]);
}

// fp16 (emulated) training with checkpointing logs scales and skips per step, a resumed run
// continues the scales exactly (the same metrics as an uninterrupted run), and `dalle plot`
// draws them.
TEST(Precision, Fp16RunLogsScalesAndResumesExactly) {
  const std::string dir = test::scratch_dir("fp16_resume").string();
  ModelConfig c = test::preset("tiny");
  c.prior_train.batch = 8;
  test::write_synthetic_tokens(dir + "/tokens", c, 200);
  auto train = [&](const std::string& out, int64_t steps, bool resume) {
    PriorTrainOptions o = test::tiny_run(dir + "/tokens", out, steps);
    o.resume = resume;
    o.save_every = 3;
    o.precision = "fp16";
    o.checkpoint_activations = true;
    return prior_train(c, o);
  };
  train(dir + "/straight", 6, false);
  train(dir + "/resumed", 3, false);
  train(dir + "/resumed", 6, true);
  const auto a = test::metrics_of(dir + "/straight"), b = test::metrics_of(dir + "/resumed");
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  const size_t blocks = static_cast<size_t>(2 * c.prior.layers);
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i]["grad_scales"].size(), blocks);
    EXPECT_FALSE(a[i]["skipped"].get<bool>());
    EXPECT_EQ(a[i]["grad_scales"], b[i]["grad_scales"]) << "step " << i + 1;
    EXPECT_DOUBLE_EQ(a[i]["loss"].get<double>(), b[i]["loss"].get<double>()) << "step " << i + 1;
  }
  EXPECT_NEAR(a.back()["grad_scales"][0].get<double>(), std::exp2(13 + 6.0 / 1000), 1e-9);
  const std::string png = dir + "/scales.png";
  EXPECT_TRUE(plot_grad_scales(path_join(dir + "/resumed", "metrics.jsonl"), png));
  EXPECT_TRUE(path_exists(png));
}

// --weights16 (the paper's memory scheme), in bf16 as a CPU runs it: block matrices and their
// AdamW moments are stored in 16 bits, gains, embeddings and the EMA stay fp32, the loss goes
// down, and resuming from the checkpoint equals the straight run.
TEST(Precision, Weights16StoresBlockMatricesIn16BitsAndResumesExactly) {
  const std::string dir = test::scratch_dir("weights16").string();
  ModelConfig c = test::preset("tiny");
  c.prior_train.batch = 8;
  test::write_synthetic_tokens(dir + "/tokens", c, 200);
  auto train = [&](const std::string& out, int64_t steps, bool resume) {
    PriorTrainOptions o = test::tiny_run(dir + "/tokens", out, steps);
    o.resume = resume;
    o.save_every = 10;
    o.precision = "bf16";
    o.weights16 = true;
    return prior_train(c, o);
  };
  const PriorTrainResult straight = train(dir + "/straight", 30, false);
  EXPECT_LT(straight.last_loss, straight.first_loss);
  train(dir + "/resumed", 10, false);
  train(dir + "/resumed", 30, true);
  const auto a = test::metrics_of(dir + "/straight"), b = test::metrics_of(dir + "/resumed");
  ASSERT_EQ(a.size(), 30u);
  ASSERT_EQ(b.size(), 30u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_DOUBLE_EQ(a[i]["loss"].get<double>(), b[i]["loss"].get<double>()) << i;
  const SafeTensors ckpt = safetensors_load(dir + "/straight/checkpoint.safetensors");
  EXPECT_EQ(ckpt.tensors.at("model.blocks.0.attn.qkv.weight").scalar_type(), torch::kBFloat16);
  EXPECT_EQ(ckpt.tensors.at("adam.v.blocks.0.mlp.fc.weight").scalar_type(), torch::kBFloat16);
  EXPECT_EQ(ckpt.tensors.at("model.blocks.0.attn.qkv.bias").scalar_type(), torch::kFloat32);
  EXPECT_EQ(ckpt.tensors.at("model.text_emb.weight").scalar_type(), torch::kFloat32);
  EXPECT_EQ(ckpt.tensors.at("ema.blocks.0.attn.qkv.weight").scalar_type(), torch::kFloat32);
  // The shipped weights are fp32 like any bundle's, and sample.
  Bundle bundle = bundle_load(dir + "/straight");
  EXPECT_EQ(bundle.prior->attn[0]->qkv->weight.scalar_type(), torch::kFloat32);
  // fp32 and fp16 (emulated here) have no 16-bit storage to use.
  for (const char* precision : {"fp32", "fp16"}) {
    PriorTrainOptions o = test::tiny_run(dir + "/tokens", dir + "/refused", 1);
    o.precision = precision;
    o.weights16 = true;
    EXPECT_THROW(prior_train(c, o), Error) << precision;
  }
}

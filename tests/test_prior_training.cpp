// The prior trainer's handling of non-finite losses, its EMA schedule (SPEC §3) and its data
// streams (token folders, or images encoded on the fly).
#include <gtest/gtest.h>

#include "dalle/util/torch_api.h"

#include <set>

#include "dalle/io/safetensors.h"
#include "dalle/data/shapes.h"
#include "dalle/train/prior_trainer.h"
#include "dalle/train/vae_trainer.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "test_prior_runs.h"
#include "test_util.h"

using namespace dalle;

namespace {

using test::tiny_run;

bool all_finite(const std::string& weights) {
  for (const auto& [name, t] : safetensors_load(weights).tensors)
    if (!t.isfinite().all().item<bool>()) return false;
  return true;
}

}  // namespace

// A non-finite loss skips its update (weights, AdamW state and EMA untouched) and training goes
// on; in fp16 mode the gradient scales are left as they were.
TEST(PriorTrain, NonFiniteLossSkipsTheStepAndTrainingContinues) {
  const std::string dir = test::scratch_dir("prior_nonfinite").string();
  ModelConfig c = test::preset("tiny");
  c.prior_train.batch = 4;
  test::write_synthetic_tokens(dir + "/tokens", c, 64);
  PriorTrainOptions o = tiny_run(dir + "/tokens", dir + "/run", 6);
  o.precision = "fp16";
  o.nonfinite_loss_at = [](int64_t step) { return step == 2 || step == 3; };
  const PriorTrainResult r = prior_train(c, o);
  EXPECT_EQ(r.skipped_steps, 2);
  const auto m = test::metrics_of(o.out);
  ASSERT_EQ(m.size(), 6u);
  for (size_t i = 0; i < m.size(); ++i) {
    const bool bad = i == 2 || i == 3;
    EXPECT_EQ(m[i]["skipped"].get<bool>(), bad) << "step " << i + 1;
    EXPECT_EQ(m[i].contains("nonfinite_loss"), bad) << "step " << i + 1;
  }
  EXPECT_EQ(m[2]["grad_scales"], m[1]["grad_scales"]);  // unchanged by the skipped steps
  EXPECT_EQ(m[3]["grad_scales"], m[1]["grad_scales"]);
  EXPECT_NE(m[4]["grad_scales"], m[3]["grad_scales"]);  // growing again after them
  EXPECT_TRUE(all_finite(path_join(o.out, kPriorWeightsFile)));
}

// `nonfinite_loss_limit` losses in a row end the run with a clear error and a checkpoint at the
// step reached, which --resume continues to the end.
TEST(PriorTrain, NonFiniteLossesInARowStopWithAResumableCheckpoint) {
  const std::string dir = test::scratch_dir("prior_nonfinite_stop").string();
  ModelConfig c = test::preset("tiny");
  c.prior_train.batch = 4;
  c.prior_train.nonfinite_loss_limit = 3;
  test::write_synthetic_tokens(dir + "/tokens", c, 64);
  PriorTrainOptions o = tiny_run(dir + "/tokens", dir + "/run", 10);
  o.nonfinite_loss_at = [](int64_t step) { return step >= 2 && step < 6; };
  try {
    prior_train(c, o);
    FAIL() << "expected the run to stop";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("not finite for 3 updates in a row (steps 3-5"), std::string::npos) << what;
    EXPECT_NE(what.find("--resume"), std::string::npos) << what;
  }
  EXPECT_EQ(test::metrics_of(o.out).size(), 5u);
  o.resume = true;
  o.nonfinite_loss_at = nullptr;
  const PriorTrainResult r = prior_train(c, o);
  EXPECT_EQ(r.steps, 10);
  EXPECT_EQ(test::metrics_of(o.out).size(), 10u);
  EXPECT_TRUE(all_finite(path_join(o.out, kPriorWeightsFile)));
}

// prior_train.ema_every = N updates the average every N updates, each applying the decay once
// (the paper: 25 updates, decay 0.99).
TEST(PriorTrain, EmaEveryNUpdatesAppliesTheDecayOncePerN) {
  const std::string dir = test::scratch_dir("prior_ema_every").string();
  ModelConfig c = test::preset("tiny");
  c.prior_train.batch = 4;
  c.prior_train.ema_every = 3;
  c.prior_train.ema_decay = 0.75;
  test::write_synthetic_tokens(dir + "/tokens", c, 64);
  // 2 updates: no average yet, so the shipped weights are the initial ones.
  prior_train(c, tiny_run(dir + "/tokens", dir + "/two", 2));
  prior_train(c, tiny_run(dir + "/tokens", dir + "/three", 3));
  const SafeTensors init = safetensors_load(dir + "/two/" + kPriorWeightsFile);
  const SafeTensors ema = safetensors_load(dir + "/three/" + kPriorWeightsFile);
  const SafeTensors ckpt = safetensors_load(dir + "/three/checkpoint.safetensors");
  int checked = 0;
  for (const auto& [name, t] : ema.tensors) {
    const torch::Tensor live = ckpt.tensors.at("model." + name);
    const torch::Tensor want = init.tensors.at(name) * 0.75 + live * 0.25;
    EXPECT_TRUE(torch::allclose(t, want, 1e-5, 1e-6)) << name;
    ++checked;
  }
  EXPECT_GT(checked, 10);
  // The every-update average (today's default, the value 1) would differ.
  c.prior_train.ema_every = 1;
  prior_train(c, tiny_run(dir + "/tokens", dir + "/every", 3));
  const SafeTensors every = safetensors_load(dir + "/every/" + kPriorWeightsFile);
  EXPECT_FALSE(torch::allclose(every.tensors.at("image_head.weight"), ema.tensors.at("image_head.weight"), 1e-6, 1e-7));
}

// --encode-on-the-fly: images stream through the loader with SPEC §3's crops and are encoded by
// the dVAE batch by batch; the run resumes exactly and its bundle carries that dVAE.
TEST(PriorTrain, EncodesImagesOnTheFlyAndResumesExactly) {
  const std::string dir = test::scratch_dir("prior_on_the_fly").string();
  ShapesOptions so;
  so.count = 64;
  so.size = 32;
  shapes_write(dir + "/shapes", so);
  ModelConfig c = test::preset("tiny");
  c.vae_train.batch = 4;
  VaeTrainOptions vo;
  vo.data = dir + "/shapes";
  vo.out = dir + "/vae";
  vo.steps = 2;
  vo.quiet = true;
  vae_train(c, vo);
  c.prior_train.batch = 4;
  auto run = [&](const std::string& out, int64_t steps, bool resume) {
    PriorTrainOptions o = tiny_run(dir + "/shapes", out, steps);
    o.encode_on_the_fly = true;
    o.vae = dir + "/vae";
    o.resume = resume;
    o.save_every = 3;
    return prior_train(c, o);
  };
  run(dir + "/straight", 6, false);
  run(dir + "/resumed", 3, false);
  run(dir + "/resumed", 6, true);
  const auto a = test::metrics_of(dir + "/straight"), b = test::metrics_of(dir + "/resumed");
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["loss"], b[i]["loss"]) << "step " << i + 1;
    EXPECT_TRUE(a[i].contains("data_wait"));
  }
  EXPECT_TRUE(path_exists(dir + "/straight/" + kVaeWeightsFile));
  EXPECT_TRUE(all_finite(dir + "/straight/" + kPriorWeightsFile));
}

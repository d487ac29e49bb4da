#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include "dalle/util/torch_api.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "dalle/bundle/bundle.h"
#include "dalle/data/image_folder.h"
#include "dalle/data/shapes.h"
#include "dalle/data/token_set.h"
#include "dalle/io/weights.h"
#include "dalle/train/adamw.h"
#include "dalle/train/checkpoint.h"
#include "dalle/train/prior_trainer.h"
#include "dalle/train/vae_trainer.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/vae/dvae.h"
#include "dalle/vae/encode_folder.h"
#include "test_paths.h"
#include "test_util.h"

using namespace dalle;
namespace fs = std::filesystem;

namespace {

std::string fresh_dir(const std::string& name) {
  return test::scratch_dir(name).string();
}

std::vector<double> losses(const std::string& metrics_path) {
  std::vector<double> out;
  std::ifstream in(metrics_path);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line)["loss"].get<double>());
  return out;
}

ModelConfig tiny() { return config_load(std::string(DALLE_SOURCE_DIR) + "/configs/tiny.json"); }

}  // namespace

TEST(AdamW, MatchesLibtorchsAdamW) {
  torch::manual_seed(0);
  torch::Tensor a = torch::randn({5, 3}).requires_grad_(), b = a.detach().clone().requires_grad_();
  AdamW ours({{"w", a}}, {0.9, 0.96, 1e-8, 0.05}, [](const std::string&) { return true; });
  torch::optim::AdamW ref({b}, torch::optim::AdamWOptions(1e-2).betas({0.9, 0.96}).eps(1e-8).weight_decay(0.05));
  for (int step = 0; step < 5; ++step) {
    torch::Tensor target = torch::randn({5, 3});
    ours.zero_grad();
    ref.zero_grad();
    (a - target).pow(2).sum().backward();
    (b - target).pow(2).sum().backward();
    ours.step(1e-2);
    ref.step();
    ASSERT_TRUE(torch::allclose(a, b, 1e-6, 1e-6)) << "step " << step;
  }
}

TEST(AdamW, NoDecayParametersAreNotShrunk) {
  torch::Tensor p = torch::ones({3}).requires_grad_();
  AdamW opt({{"bias", p}}, {0.9, 0.999, 1e-8, 0.5}, [](const std::string&) { return false; });
  p.mutable_grad() = torch::zeros({3});
  opt.step(0.1);
  EXPECT_TRUE(torch::equal(p, torch::ones({3})));
}

TEST(BatchOrder, DeterministicAndCoversEachEpoch) {
  EXPECT_EQ(batch_indices(10, 4, 3, 7), batch_indices(10, 4, 3, 7));
  std::vector<int64_t> epoch;
  for (int step = 0; step < 5; ++step)
    for (int64_t i : batch_indices(10, 2, step, 7)) epoch.push_back(i);
  std::sort(epoch.begin(), epoch.end());
  for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(epoch[static_cast<size_t>(i)], i);
}

// 48 shapes images of 32x32 in DIR/shapes, and quiet options to train on them without
// intermediate checkpoints or grids.
static VaeTrainOptions tiny_vae_run(const std::string& dir) {
  ShapesOptions so;
  so.count = 48;
  so.size = 32;
  shapes_write(dir + "/shapes", so);
  VaeTrainOptions o;
  o.data = dir + "/shapes";
  o.quiet = true;
  o.sample_every = o.save_every = 1000;
  return o;
}

// Trains the tiny dVAE for 6 steps straight into DIR/straight, and for 3 then --resume to 6 into
// DIR/resumed; returns the options of the resumed run. The last `finetune` (at most 3) of the 6
// updates are decoder-only, so the interrupted half is joint only; `interrupted` runs between the
// halves. `finetune_loss` is the fine-tuning objective ("" = the config's).
static VaeTrainOptions vae_straight_and_resumed(const std::string& dir, const std::string& precision, bool checkpoint,
                                                int64_t finetune = 0, const std::function<void()>& interrupted = {},
                                                const std::string& finetune_loss = "", bool weights16 = false) {
  ModelConfig c = tiny();
  c.vae_train.batch = 4;
  VaeTrainOptions o = tiny_vae_run(dir);
  o.seed = 3;
  o.precision = precision;
  o.checkpoint_activations = checkpoint;
  o.weights16 = weights16;
  o.out = dir + "/straight";
  o.steps = 6;
  o.decoder_finetune_steps = finetune;
  o.decoder_finetune_loss = finetune_loss;
  vae_train(c, o);
  o.out = dir + "/resumed";
  o.steps = 3;
  o.decoder_finetune_steps = 0;
  vae_train(c, o);
  if (interrupted) interrupted();
  o.resume = true;
  o.steps = 6;
  o.decoder_finetune_steps = finetune;
  vae_train(ModelConfig{}, o);
  return o;
}

TEST(VaeTrain, ResumedRunEqualsUninterruptedRun) {
  const std::string dir = fresh_dir("vae_resume");
  VaeTrainOptions o = vae_straight_and_resumed(dir, "fp32", false);
  const auto a = losses(dir + "/straight/metrics.jsonl"), b = losses(dir + "/resumed/metrics.jsonl");
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a, b);  // bit-identical, not just close
  // Starting again without --resume would overwrite the run: refused.
  o.resume = false;
  EXPECT_THROW(vae_train(tiny(), o), Error);
}

// A non-finite loss skips the dVAE's update; `vae_train.nonfinite_loss_limit` in a row stop the
// run with a clear error and a checkpoint that --resume continues.
TEST(VaeTrain, NonFiniteLossesAreSkippedAndARunOfThemStopsResumably) {
  const std::string dir = fresh_dir("vae_nonfinite");
  ModelConfig c = tiny();
  c.vae_train.batch = 4;
  c.vae_train.nonfinite_loss_limit = 2;
  VaeTrainOptions o = tiny_vae_run(dir);
  o.out = dir + "/run";
  o.steps = 8;
  o.nonfinite_loss_at = [](int64_t step) { return step == 1 || step == 3 || step == 4; };
  try {
    vae_train(c, o);
    FAIL() << "expected the run to stop";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not finite for 2 updates in a row (steps 4-5"), std::string::npos) << e.what();
  }
  auto metrics = [&] {
    std::vector<nlohmann::json> out;
    std::ifstream in(dir + "/run/metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
    return out;
  };
  const std::vector<nlohmann::json> m = metrics();
  ASSERT_EQ(m.size(), 5u);
  EXPECT_TRUE(m[1].value("skipped", false));  // the lone bad step was skipped, and the run went on
  EXPECT_FALSE(m[2].value("skipped", false));  // fp32 lines say "skipped" only when they were
  o.resume = true;
  o.nonfinite_loss_at = nullptr;
  const VaeTrainResult r = vae_train(ModelConfig{}, o);
  EXPECT_EQ(r.steps, 8);
  EXPECT_TRUE(std::isfinite(r.val_psnr));
  EXPECT_EQ(metrics().size(), 8u);
}

// The images stream through decoding threads; their number never changes the batches.
TEST(VaeTrain, SameRunForAnyWorkerCount) {
  const std::string dir = fresh_dir("vae_workers");
  ModelConfig c = tiny();
  c.vae_train.batch = 4;
  VaeTrainOptions o = tiny_vae_run(dir);
  o.steps = 4;
  o.workers = 1;
  o.out = dir + "/w1";
  vae_train(c, o);
  o.workers = 3;
  o.out = dir + "/w3";
  vae_train(c, o);
  const auto a = losses(dir + "/w1/metrics.jsonl");
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a, losses(dir + "/w3/metrics.jsonl"));
}

// `vae encode` streams: shards written as it goes, source order kept, and --crops K gives K
// augmented crops per image, each a sample with the image's captions.
TEST(VaeEncode, CentreCropsInOrderAndKAugmentedCropsPerImage) {
  const std::string dir = fresh_dir("vae_encode_crops");
  ModelConfig c = tiny();
  c.vae_train.batch = 4;
  VaeTrainOptions o = tiny_vae_run(dir);  // 48 images
  o.steps = 2;
  o.out = dir + "/vae";
  vae_train(c, o);
  // Images larger than the dVAE's 32x32, so a crop has room to vary.
  ShapesOptions so;
  so.count = 10;
  so.size = 64;
  shapes_write(dir + "/large", so);
  EncodeFolderOptions e;
  e.batch = 4;
  e.max_images = 10;
  const EncodeFolderResult one = vae_encode_folder(dir + "/vae", dir + "/large", dir + "/tokens1", e);
  EXPECT_EQ(one.encoded, 10);
  const TokenSet centre = token_set_read(dir + "/tokens1");
  ASSERT_EQ(centre.tokens.size(0), 10);
  // The first image's captions come first: source (name) order.
  EXPECT_EQ(centre.captions[0], read_caption_lines(dir + "/large/000000.txt"));
  e.crops = 3;
  const EncodeFolderResult three = vae_encode_folder(dir + "/vae", dir + "/large", dir + "/tokens3", e);
  EXPECT_EQ(three.encoded, 30);
  const TokenSet crops = token_set_read(dir + "/tokens3");
  ASSERT_EQ(crops.tokens.size(0), 30);
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 10; ++i) EXPECT_EQ(crops.captions[static_cast<size_t>(10 * k + i)], centre.captions[static_cast<size_t>(i)]);
  // Each round of crops is a new draw: not all of them equal the first round.
  EXPECT_FALSE(torch::equal(crops.tokens.narrow(0, 0, 10), crops.tokens.narrow(0, 10, 10)));
}

TEST(VaeTrain, Fp16RunLogsPerResblockScalesAndResumesExactly) {
  const std::string dir = fresh_dir("vae_fp16");
  vae_straight_and_resumed(dir, "fp16", /*checkpoint=*/true);
  EXPECT_EQ(losses(dir + "/straight/metrics.jsonl"), losses(dir + "/resumed/metrics.jsonl"));
  std::ifstream in(dir + "/resumed/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    // tiny: 3 groups x 1 block in each half; no overflow at these magnitudes.
    ASSERT_EQ(j["grad_scales"].size(), 6u) << line;
    EXPECT_FALSE(j["skipped"].get<bool>());
    EXPECT_GT(j["grad_scales"][0].get<double>(), 8192.0);  // grew from 2^13 by 2^(1/1000) per update
    ++lines;
  }
  EXPECT_EQ(lines, 6);
}

// --weights16 on the dVAE, in bf16 as a CPU runs it: the resblocks' kernels and their AdamW
// moments are stored in 16 bits and everything else in fp32; the run, decoder fine-tuning
// included, resumes exactly; the shipped weights are fp32.
TEST(VaeTrain, Weights16StoresResblockKernelsIn16BitsAndResumesExactly) {
  const std::string dir = fresh_dir("vae_weights16");
  VaeTrainOptions o = vae_straight_and_resumed(dir, "bf16", /*checkpoint=*/false, /*finetune=*/2, {}, "", /*weights16=*/true);
  const std::vector<double> a = losses(dir + "/straight/metrics.jsonl");
  ASSERT_EQ(a.size(), 6u);
  for (double loss : a) EXPECT_TRUE(std::isfinite(loss));
  EXPECT_EQ(a, losses(dir + "/resumed/metrics.jsonl"));

  // Which parameters are resblock kernels, by name.
  Dvae reference(tiny().vae);
  std::set<const void*> kernels;
  for (const std::vector<torch::Tensor>& block : reference->resblock_parameters())
    for (const torch::Tensor& p : block)
      if (p.dim() >= 2) kernels.insert(p.unsafeGetTensorImpl());
  const SafeTensors ckpt = safetensors_load(dir + "/straight/checkpoint.safetensors");
  int sixteen = 0;
  for (const auto& item : reference->named_parameters(true)) {
    const bool kernel = kernels.count(item.value().unsafeGetTensorImpl()) > 0;
    const torch::ScalarType want = kernel ? torch::kBFloat16 : torch::kFloat32;
    EXPECT_EQ(ckpt.tensors.at("model." + item.key()).scalar_type(), want) << item.key();
    EXPECT_EQ(ckpt.tensors.at("adam.v." + item.key()).scalar_type(), want) << item.key();
    EXPECT_EQ(ckpt.tensors.at("ema." + item.key()).scalar_type(), torch::kFloat32) << item.key();
    sixteen += kernel;
  }
  EXPECT_EQ(sixteen, 6 * 4);  // tiny: 6 resblocks, 4 convolutions on each one's branch
  for (const auto& [name, tensor] : safetensors_load(dir + "/straight/vae.safetensors").tensors)
    EXPECT_EQ(tensor.scalar_type(), torch::kFloat32) << name;

  // fp32 and fp16 (emulated on a CPU) have no 16-bit storage to use.
  for (const char* precision : {"fp32", "fp16"}) {
    o.resume = false;
    o.out = dir + "/refused";
    o.precision = precision;
    EXPECT_THROW(vae_train(tiny(), o), Error) << precision;
  }
}

TEST(VaeTrain, DecoderFinetuningFreezesTheEncoderAndResumesExactly) {
  // 6 updates, the last 3 decoder-only; the interrupted run stops exactly at the phase boundary.
  const std::string dir = fresh_dir("vae_finetune");
  SafeTensors before;  // the EMA weights at step 3
  VaeTrainOptions o = vae_straight_and_resumed(dir, "fp32", false, 3, [&] {
    before = safetensors_load(dir + "/resumed/vae.safetensors");
  });
  EXPECT_EQ(losses(dir + "/straight/metrics.jsonl"), losses(dir + "/resumed/metrics.jsonl"));

  // The shipped encoder is the EMA encoder at the boundary, so its tokens are those of step 3;
  // the decoder kept training.
  const SafeTensors after = safetensors_load(dir + "/resumed/vae.safetensors");
  int encoder = 0, decoder_changed = 0;
  for (const auto& [name, t] : after.tensors) {
    if (name.rfind("encoder.", 0) == 0) {
      EXPECT_TRUE(torch::equal(t, before.tensors.at(name))) << name;
      ++encoder;
    } else if (!torch::equal(t, before.tensors.at(name))) {
      ++decoder_changed;
    }
  }
  EXPECT_GT(encoder, 0);
  EXPECT_GT(decoder_changed, 0);
  std::ifstream in(dir + "/resumed/metrics.jsonl");
  std::vector<std::string> phases;
  for (std::string line; std::getline(in, line);) phases.push_back(nlohmann::json::parse(line)["phase"]);
  EXPECT_EQ(phases, (std::vector<std::string>{"joint", "joint", "joint", "decoder", "decoder", "decoder"}));

  // A phase as long as the run is refused.
  o.decoder_finetune_steps = 6;
  o.resume = false;
  o.out = dir + "/too_long";
  EXPECT_THROW(vae_train(tiny(), o), Error);
}

TEST(VaeTrain, SquaredErrorFinetuningResumesExactlyAndIsRecorded) {
  // The same 3 + 3 updates with the "mse" objective (set on the command line, not in the config):
  // the resumed run keeps it from its saved config and equals the straight run.
  const std::string dir = fresh_dir("vae_finetune_mse");
  VaeTrainOptions o = vae_straight_and_resumed(dir, "bf16", false, 3, {}, "mse");
  const auto straight = losses(dir + "/straight/metrics.jsonl");
  EXPECT_EQ(straight, losses(dir + "/resumed/metrics.jsonl"));
  EXPECT_EQ(config_load(dir + "/resumed/config.json").vae_train.decoder_finetune_loss, "mse");
  // The fine-tuning updates minimise another objective than the likelihood run's.
  const std::string nll_dir = fresh_dir("vae_finetune_nll");
  vae_straight_and_resumed(nll_dir, "bf16", false, 3);
  const auto nll = losses(nll_dir + "/straight/metrics.jsonl");
  EXPECT_EQ(std::vector<double>(straight.begin(), straight.begin() + 3), std::vector<double>(nll.begin(), nll.begin() + 3));
  EXPECT_NE(straight[3], nll[3]);

  o.resume = false;
  o.out = dir + "/unknown";
  o.decoder_finetune_loss = "l1";
  try {
    vae_train(tiny(), o);
    FAIL() << "an unknown fine-tuning loss was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'l1'"), std::string::npos) << e.what();
  }
}

TEST(VaeTrain, TinyModelOverfitsAHandfulOfImages) {
  // 8 shapes images, trained on and then encoded to argmax tokens and decoded with the EMA
  // weights: the reconstructions must carry each image's own content, i.e. beat the best
  // image-independent guess (the set's mean image) by a clear margin.
  const std::string dir = fresh_dir("vae_overfit");
  ShapesOptions so;
  so.count = 8;
  so.size = 32;
  so.seed = 3;
  shapes_write(dir + "/shapes", so);
  ModelConfig c = tiny();
  c.vae_train.batch = 8;
  c.vae_train.lr_steps = 300;
  c.vae_train.tau_steps = 200;
  c.vae_train.ema_decay = 0.9;
  VaeTrainOptions o;
  o.data = dir + "/shapes";
  o.out = dir + "/run";
  o.quiet = true;
  o.steps = 300;
  o.threads = 1;
  o.sample_every = o.save_every = 1000;
  const VaeTrainResult r = vae_train(c, o);
  const torch::Tensor x = image_set_load(o.data, 32, false, 1).images.to(torch::kFloat32) / 255;
  const double mean_mse = (x - x.mean(0, true)).pow(2).mean().item<double>();
  const double mean_psnr = 10 * std::log10(1 / mean_mse);
  std::printf("overfit: argmax reconstruction PSNR %.2f dB, mean image %.2f dB\n", r.val_psnr, mean_psnr);
  EXPECT_GT(r.val_psnr, mean_psnr + 6.0);  // 19.8 dB against 11.3 here; 17.1 without the gains
}

TEST(Checkpoints, CorruptOrMismatchedFilesAreClearErrors) {
  const std::string dir = fresh_dir("ckpt");
  ModelConfig c = tiny();
  Dvae vae(c.vae);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& p : vae->named_parameters(true)) params.emplace_back(p.key(), p.value());
  AdamW opt(params, {}, [](const std::string&) { return true; });
  Ema ema(*vae);
  const std::string path = dir + "/checkpoint.safetensors";
  checkpoint_save(path, *vae, opt, ema, {{"step", 5}});
  EXPECT_EQ(checkpoint_load(path, *vae, opt, ema)["step"], 5);

  // Truncated.
  std::vector<uint8_t> bytes = read_file_bytes(path);
  write_file_atomic(path + ".cut", bytes.data(), bytes.size() - 100);
  EXPECT_THROW(checkpoint_load(path + ".cut", *vae, opt, ema), Error);

  // A different architecture: every mismatch is named.
  ModelConfig other = c;
  other.vae.n_hid = 32;
  Dvae wider(other.vae);
  std::vector<std::pair<std::string, torch::Tensor>> wp;
  for (auto& p : wider->named_parameters(true)) wp.emplace_back(p.key(), p.value());
  AdamW wopt(wp, {}, [](const std::string&) { return true; });
  Ema wema(*wider);
  try {
    checkpoint_load(path, *wider, wopt, wema);
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("model.encoder.blocks.input.w"), std::string::npos) << msg;
    EXPECT_NE(msg.find("expected [32, 3, 7, 7]"), std::string::npos) << msg;
  }
}

TEST(Bundle, WeightMismatchesAreReportedByName) {
  ModelConfig c = tiny();
  Dvae vae(c.vae);
  SafeTensors st;
  module_weights_into(*vae, st);
  st.tensors.erase("decoder.blocks.output.conv.b");
  st.tensors["encoder.blocks.input.w"] = torch::zeros({1});
  st.tensors["stray"] = torch::zeros({1});
  st.tensors["decoder.blocks.input.b"] = st.tensors["decoder.blocks.input.b"].to(torch::kInt32);
  try {
    module_load_weights(*vae, st, "vae.safetensors");
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* want : {"vae.safetensors", "missing tensor 'decoder.blocks.output.conv.b'",
                             "'encoder.blocks.input.w' has shape [1]", "unexpected tensor 'stray'",
                             "'decoder.blocks.input.b' has dtype I32"})
      EXPECT_NE(msg.find(want), std::string::npos) << want << "\n" << msg;
  }
}

TEST(Precision, Bf16TrainingTracksFp32) {
  const std::string dir = fresh_dir("bf16");
  ShapesOptions so;
  so.count = 64;
  so.size = 32;
  shapes_write(dir + "/shapes", so);
  ModelConfig c = tiny();
  c.vae_train.batch = 8;
  c.prior_train.batch = 8;
  VaeTrainResult vae[2];
  PriorTrainResult prior[2];
  const char* precision[2] = {"fp32", "bf16"};
  for (int p = 0; p < 2; ++p) {
    VaeTrainOptions o;
    o.data = dir + "/shapes";
    o.out = dir + "/vae_" + precision[p];
    o.steps = 8;
    o.precision = precision[p];
    o.quiet = true;
    vae[p] = vae_train(c, o);
  }
  vae_encode_folder(dir + "/vae_fp32", dir + "/shapes", dir + "/tokens");
  for (int p = 0; p < 2; ++p) {
    PriorTrainOptions o;
    o.data = dir + "/tokens";
    o.out = dir + "/prior_" + precision[p];
    o.steps = 8;
    o.precision = precision[p];
    o.quiet = true;
    o.sample_prompts.clear();
    prior[p] = prior_train(c, o);
  }
  for (int p = 0; p < 2; ++p) {
    EXPECT_TRUE(std::isfinite(vae[p].last_loss)) << precision[p];
    EXPECT_LT(prior[p].last_loss, prior[p].first_loss) << precision[p];
  }
  EXPECT_NEAR(vae[1].first_loss, vae[0].first_loss, 0.02 * std::fabs(vae[0].first_loss) + 1e-3);
  EXPECT_NEAR(prior[1].last_loss, prior[0].last_loss, 0.02 * prior[0].last_loss);
  VaeTrainOptions bad;
  bad.data = dir + "/shapes";
  bad.out = dir + "/vae_bad";
  bad.precision = "fp8";
  bad.quiet = true;
  EXPECT_THROW(vae_train(c, bad), Error);
}

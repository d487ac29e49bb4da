// Training and sampling on one device (issue 21), as `dalle train` and `dalle generate` run them
// there, in one table:
//  - training: tokens/s and MFU of the prior's full step (forward, backward, per-resblock
//    gradient scaling, AdamW) in fp32, bf16 and fp16 (real fp16 on CUDA, emulated on a CPU),
//    against the matmul rate measured in the same precision and, when given, a datasheet peak;
//  - sampling: seconds per image at batch 1 and at a larger batch (image tokens, then the dVAE
//    decode), fp32 and bf16 weights;
//  - the dVAE encoder: images per second at the preset's resolution.
// Random weights and tokens: speed only.
// Usage: bench_device [DEVICE=auto] [PRESETS=configs/bench-m.json] [STEPS=5] [SAMPLE_BATCH=64]
//                     [PEAK_TFLOPS=0] [THREADS=2]
//   PRESETS: comma-separated CONFIG[:BATCH[:ckpt]] (BATCH 0 = the config's prior_train.batch;
//   ckpt = activation checkpointing, what fits a 1.3B prior's batch on one GPU).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <torch/cuda.h>

#include "dalle/bundle/bundle.h"
#include "dalle/prior/loss.h"
#include "dalle/sample/sampler.h"
#include "dalle/train/adamw.h"
#include "dalle/train/checkpoint.h"
#include "dalle/train/grad_scaling.h"
#include "dalle/train/matmul_peak.h"
#include "dalle/train/precision.h"
#include "dalle/train/resblock_runner.h"
#include "dalle/util/device.h"
#include "dalle/util/threads.h"
#include "dalle/util/torch_api.h"

using namespace dalle;

namespace {

struct Preset {
  std::string path;
  int batch = 0;
  bool checkpoint = false;
};

std::vector<Preset> parse_presets(const std::string& list) {
  std::vector<Preset> out;
  std::stringstream items(list);
  for (std::string item; std::getline(items, item, ',');) {
    Preset p;
    std::stringstream parts(item);
    std::string part;
    std::getline(parts, p.path, ':');
    if (std::getline(parts, part, ':')) p.batch = std::atoi(part.c_str());
    if (std::getline(parts, part, ':')) p.checkpoint = part == "ckpt";
    out.push_back(p);
  }
  return out;
}

class Timer {
 public:
  explicit Timer(const c10::Device& device) : device_(device) {
    sync();
    t0_ = std::chrono::steady_clock::now();
  }
  double seconds() {
    sync();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  void sync() {
    if (device_.is_cuda()) torch::cuda::synchronize(device_.index());
  }
  c10::Device device_;
  std::chrono::steady_clock::time_point t0_;
};

// Seconds per training step of `prior` in `precision`, after two warm-up steps (with fresh AdamW
// moments; the weights carry over from the previous precision's steps, which costs no speed).
double train_step_seconds(Prior& prior, const ModelConfig& config, const Preset& preset, int batch,
                          Precision precision, const c10::Device& device, int steps) {
  prior->train();
  const PrecisionPlan plan = precision_plan(precision, device);
  const auto blocks = prior->resblock_parameters();
  GradScales scales(static_cast<int64_t>(blocks.size()));
  prior->set_resblock_runner(resblock_runner_for_training(precision, scales, preset.checkpoint, plan.emulate_fp16));
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (auto& item : prior->named_parameters()) named.emplace_back(item.key(), item.value());
  AdamW adam(named, {0.9, 0.96, 1e-8, 0.045}, [](const std::string&) { return true; });
  const auto on = torch::TensorOptions().dtype(torch::kLong).device(device);
  const torch::Tensor text = torch::randint(0, config.prior.text_vocab, {batch, config.prior.text_len}, on);
  const torch::Tensor image = torch::randint(0, config.vae.vocab, {batch, prior->image_tokens()}, on);
  auto step = [&](int64_t i) {
    adam.zero_grad();
    PriorLogits logits;
    {
      AutocastGuard autocast(plan.autocast, device.type(), plan.dtype);
      logits = prior->forward(text, image);
    }
    prior_loss(logits, text, image, 0.125).loss.backward();
    scaled_update(precision == Precision::fp32 ? nullptr : &scales, blocks, precision == Precision::fp16,
                  prior->parameters(), 4.0, adam, 1e-4, i);
  };
  for (int i = 0; i < 2; ++i) step(i);
  Timer timer(device);
  for (int i = 0; i < steps; ++i) step(2 + i);
  const double seconds = timer.seconds() / steps;
  for (torch::Tensor p : prior->parameters()) p.mutable_grad() = torch::Tensor();  // the next user's memory
  return seconds;
}

struct SampleTime {
  double tokens = 0, decode = 0;  // seconds per image
};

// `bundle` holds the preset's prior and dVAE on `device`, in fp32.
SampleTime sample_seconds(Bundle& bundle, WeightFormat weights, const c10::Device& device, int batch) {
  const ModelConfig& config = bundle.config;
  bundle.weights = weights;
  bundle.vae->decoder->to(weights == WeightFormat::fp32 ? torch::kFloat32 : torch::kBFloat16);
  bundle_to_device(bundle, device);  // a fresh decoder in this format
  torch::InferenceMode inference;
  ImageTokenDecoder& decoder = bundle_decoder(bundle);
  const torch::Tensor text = torch::randint(0, config.prior.text_vocab, {batch, config.prior.text_len}, torch::kLong);
  SamplerSettings settings;
  torch::Generator gen = step_generator(1, 0, 7);
  sample_image_tokens(decoder, text.narrow(0, 0, 1), settings, gen);  // warm-up: kernels, allocator
  Timer timer(device);
  const torch::Tensor tokens = sample_image_tokens(decoder, text, settings, gen);
  SampleTime t;
  t.tokens = timer.seconds() / batch;
  const int grid = config.vae.grid();
  bundle.vae->decode_tokens(tokens.narrow(0, 0, 1).view({1, grid, grid}));  // warm-up
  Timer decode(device);
  bundle.vae->decode_tokens(tokens.view({batch, grid, grid}));
  t.decode = decode.seconds() / batch;
  return t;
}

double encode_images_per_second(const VaeConfig& vc, const c10::Device& device, int batch) {
  torch::manual_seed(0);
  Dvae vae(vc);
  vae->eval();
  vae->to(device);
  vae->to_channels_last();
  torch::InferenceMode inference;
  const torch::Tensor images =
      torch::randint(0, 256, {batch, vc.image_size, vc.image_size, 3}, torch::kUInt8).to(device);
  vae->encode_images(images);  // warm-up
  Timer timer(device);
  const int reps = 3;
  for (int i = 0; i < reps; ++i) vae->encode_images(images);
  return batch * reps / timer.seconds();
}

}  // namespace

int main(int argc, char** argv) {
  const c10::Device device = device_from_name(argc > 1 ? argv[1] : "auto");
  const std::vector<Preset> presets = parse_presets(argc > 2 ? argv[2] : "configs/bench-m.json");
  const int steps = argc > 3 ? std::atoi(argv[3]) : 5;
  const int sample_batch = argc > 4 ? std::atoi(argv[4]) : 64;
  const double datasheet = (argc > 5 ? std::atof(argv[5]) : 0.0) * 1e12;
  set_thread_count(argc > 6 ? std::atoi(argv[6]) : 2);
  std::printf("device %s, %d timed training steps, sampling batch %d%s\n", device.str().c_str(), steps, sample_batch,
              datasheet > 0 ? (", datasheet 16-bit peak " + std::to_string(datasheet / 1e12) + " TFLOP/s").c_str() : "");
  std::printf("%-22s %-5s %6s %12s %14s %8s %10s\n", "preset", "prec", "batch", "tok/s", "peak TFLOP/s", "MFU",
              "MFU (sheet)");
  // One prior per preset, made once: a 1.3B-parameter one takes a while to initialise.
  std::vector<Prior> priors;
  for (const Preset& preset : presets) {
    const ModelConfig config = config_load(preset.path);
    torch::manual_seed(0);
    Prior prior = prior_create(config);
    prior->to(device);
    priors.push_back(prior);
    const int batch = preset.batch > 0 ? preset.batch : config.prior_train.batch;
    const int64_t n_params = prior_param_count(config.prior, config.vae.grid(), config.vae.grid(), config.vae.vocab);
    const int64_t seq = config.prior.text_len + int64_t(config.vae.grid()) * config.vae.grid();
    for (Precision p : {Precision::fp32, Precision::bf16, Precision::fp16}) {
      const PrecisionPlan plan = precision_plan(p, device);
      const double peak = matmul_peak_flops(plan.autocast ? plan.dtype : torch::kFloat32, 2048, device);
      try {
        const double s = train_step_seconds(prior, config, preset, batch, p, device, steps);
        const double tok_s = batch * seq / s;
        const double flops = 6.0 * n_params * tok_s;
        std::printf("%-22s %-5s %6d %12.0f %14.1f %7.1f%% %9s\n", (config.name + (preset.checkpoint ? " ckpt" : "")).c_str(),
                    precision_name(p), batch, tok_s, peak / 1e12, 100 * flops / peak,
                    datasheet > 0 && p != Precision::fp32 ? (std::to_string(100 * flops / datasheet).substr(0, 5) + "%").c_str() : "-");
      } catch (const std::exception& e) {  // out of memory at this batch, say: the other rows still run
        std::printf("%-22s %-5s %6d failed: %.120s\n", config.name.c_str(), precision_name(p), batch, e.what());
      }
      std::fflush(stdout);
    }
  }
  // ms/step is one decoding step of the whole batch: when it hardly grows from batch 1 to the large
  // batch, the step is bound by per-op overhead (launches, dispatch), what CUDA graphs remove.
  // On a GPU the rows run with CUDA graphs (GraphDecoder's replay), and batch 1 also without (the
  // same indexed steps launched kernel by kernel): the graphs' gain where steps are smallest.
  std::printf("\n%-22s %-8s %6s %6s %14s %14s %14s %10s\n", "sampling", "weights", "graphs", "batch", "tokens s/img",
              "decode s/img", "total s/img", "ms/step");
  for (size_t i = 0; i < presets.size(); ++i) {
    Bundle bundle;
    bundle.config = config_load(presets[i].path);
    const ModelConfig& config = bundle.config;
    bundle.prior = priors[i];
    bundle.prior->set_resblock_runner({});
    bundle.prior->eval();
    torch::manual_seed(0);
    bundle.vae = Dvae(config.vae);
    bundle.vae->eval();
    bundle.vae->to_channels_last();  // as vae_load leaves a bundle's
    for (WeightFormat w : {WeightFormat::fp32, WeightFormat::bf16})
      for (int b : {1, sample_batch})
        for (const std::string& label : !device.is_cuda() ? std::vector<std::string>{"-"}
                                        : b == 1           ? std::vector<std::string>{"yes", "no"}
                                                           : std::vector<std::string>{"yes"}) {
          try {
            setenv("DALLE_CUDA_GRAPHS", label == "no" ? "0" : "1", 1);  // read by bundle_decoder
            const SampleTime t = sample_seconds(bundle, w, device, b);
            const double steps = static_cast<double>(config.vae.grid()) * config.vae.grid();
            std::printf("%-22s %-8s %6s %6d %14.4f %14.4f %14.4f %10.3f\n", config.name.c_str(),
                        weight_format_name(w).c_str(), label.c_str(), b, t.tokens, t.decode, t.tokens + t.decode,
                        1000 * t.tokens * b / steps);
          } catch (const std::exception& e) {
            std::printf("%-22s %-8s %6s %6d failed: %.120s\n", config.name.c_str(), weight_format_name(w).c_str(),
                        label.c_str(), b, e.what());
          }
          std::fflush(stdout);
        }
  }
  const ModelConfig first = config_load(presets.front().path);
  const int encode_batch = device.is_cuda() ? 64 : 2;
  std::printf("\ndVAE encode %dx%d (%s, n_hid %d): %.1f img/s at batch %d\n", first.vae.image_size, first.vae.image_size,
              first.name.c_str(), first.vae.n_hid, encode_images_per_second(first.vae, device, encode_batch), encode_batch);
  return 0;
}

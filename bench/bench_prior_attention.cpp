// Prior training step speed, in one run: the dense masked fp32 reference against the sparse
// attention path in fp32 and in bf16 autocast (the fast path), plus the fast path with
// activation checkpointing and with per-resblock gradient scaling (what `dalle train
// --precision bf16` runs). Forward, backward and an AdamW update on random tokens. Prints
// tokens/s, ratios, MFU against this machine's bf16 and fp32 matmul peaks measured in the same
// run, and each path's peak RSS.
// Usage: bench_prior_attention [CONFIG] [BATCH] [STEPS]   (default: configs/bench-m.json 4 3)
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <torch/optim/adamw.h>

#include "dalle/bundle/config.h"
#include "dalle/prior/cost.h"
#include "dalle/prior/loss.h"
#include "dalle/prior/transformer.h"
#include "dalle/train/grad_scaling.h"
#include "dalle/train/matmul_peak.h"
#include "dalle/train/resblock_runner.h"
#include "dalle/util/threads.h"
#include "dalle/util/torch_api.h"

using namespace dalle;

namespace {

double peak_rss_gib() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_maxrss) / (1024.0 * 1024.0);
}

struct Path {
  const char* name;
  bool dense;
  bool bf16;
  bool scaled;      // per-resblock gradient scaling, unscaled before the update
  bool checkpoint;  // activation checkpointing per resblock
};

}  // namespace

int main(int argc, char** argv) {
  const std::string config_path = argc > 1 ? argv[1] : "configs/bench-m.json";
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 4;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 3;
  set_thread_count(0);
  const ModelConfig config = config_load(config_path);
  const PriorConfig& pc = config.prior;
  const int grid = config.vae.grid();
  const PriorCost cost = prior_cost(pc, grid, grid, config.vae.vocab, batch);
  const double peak_bf16 = matmul_peak_flops(torch::kBFloat16, 2048);
  const double peak_fp32 = matmul_peak_flops(torch::kFloat32, 2048);
  std::printf("config %s: %.1fM params, %d + %d positions, batch %lld, %d timed steps per path, %d threads\n",
              config_path.c_str(), cost.params / 1e6, pc.text_len, grid * grid, static_cast<long long>(batch), steps,
              torch::get_num_threads());
  std::printf("matmul peak (2048^2): bf16 %.0f GFLOP/s, fp32 %.0f GFLOP/s\n", peak_bf16 / 1e9, peak_fp32 / 1e9);

  torch::manual_seed(0);
  Prior prior(pc, grid, grid, config.vae.vocab);
  torch::optim::AdamW optimizer(prior->parameters(), torch::optim::AdamWOptions(1e-4));
  const torch::Tensor text = torch::randint(0, pc.text_vocab + pc.text_len, {batch, pc.text_len});
  const torch::Tensor image = torch::randint(0, config.vae.vocab, {batch, grid * grid});
  const double tokens = static_cast<double>(batch) * (pc.text_len + grid * grid);

  enum { kCheckpoint, kFast, kScaled, kFp32, kDense, kPaths };
  const Path paths[kPaths] = {{"sparse bf16, checkpointed", false, true, false, true},
                              {"sparse bf16 (fast path)", false, true, false, false},
                              {"sparse bf16, grad scales", false, true, true, false},
                              {"sparse fp32", false, false, false, false},
                              {"dense fp32 (reference)", true, false, false, false}};
  const auto blocks = prior->resblock_parameters();
  GradScales scales(static_cast<int64_t>(blocks.size()));
  auto train_step = [&](int p, int64_t step) {
    prior->use_dense_attention(paths[p].dense);
    ResblockRunnerOptions runner;
    runner.scales = paths[p].scaled ? &scales : nullptr;
    runner.checkpoint = paths[p].checkpoint;
    prior->set_resblock_runner(paths[p].scaled || paths[p].checkpoint ? resblock_runner_make(runner) : nullptr);
    const auto t0 = std::chrono::steady_clock::now();
    optimizer.zero_grad();
    PriorLogits logits;
    {
      AutocastGuard autocast(paths[p].bf16);
      logits = prior->forward(text, image);
    }
    prior_loss(logits, text, image, pc.text_len > 1 ? 1.0 / 8 : 0.0).loss.backward();
    if (paths[p].scaled) scales.update(grad_scales_unscale(scales, blocks, false), step);
    optimizer.step();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  // One warm-up step per path, in order of increasing memory: each peak RSS is that path's.
  double rss[kPaths] = {}, seconds[kPaths] = {}, rate[kPaths] = {};
  for (int p = 0; p < kPaths; ++p) {
    train_step(p, 0);
    rss[p] = peak_rss_gib();
  }
  // Timed steps interleave the paths, so a change in machine load hits them all alike.
  for (int s = 1; s <= steps; ++s)
    for (int p = 0; p < kPaths; ++p) seconds[p] += train_step(p, s);
  for (int p = 0; p < kPaths; ++p) {
    rate[p] = tokens * steps / seconds[p];
    std::printf("  %-26s %8.0f tok/s  %6.2f s/step  MFU %5.1f%% of bf16 peak, %5.1f%% of fp32 peak  peak RSS %.2f GiB\n",
                paths[p].name, rate[p], seconds[p] / steps, 100 * cost.train_flops_per_token * rate[p] / peak_bf16,
                100 * cost.train_flops_per_token * rate[p] / peak_fp32, rss[p]);
  }
  std::printf("fast path / dense fp32 reference: %.2fx   sparse fp32 / dense fp32: %.2fx   bf16 / fp32 (sparse): %.2fx\n",
              rate[kFast] / rate[kDense], rate[kFp32] / rate[kDense], rate[kFast] / rate[kFp32]);
  std::printf("grad scales: %.2fx the fast path's time; checkpointing: %.2fx the time, %.2f GiB less peak RSS\n",
              rate[kFast] / rate[kScaled], rate[kFast] / rate[kCheckpoint], rss[kFast] - rss[kCheckpoint]);
  std::printf("training FLOPs per token: %.3g sparse, %.3g dense\n", cost.train_flops_per_token,
              cost.train_flops_per_token_dense);
  return 0;
}

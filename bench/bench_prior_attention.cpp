// Prior training step speed, in one run: the dense masked fp32 reference against the sparse
// attention path in fp32 and in bf16 autocast (the fast path). Forward, backward and an AdamW
// update on random tokens. Prints tokens/s, ratios, MFU against this machine's bf16 and fp32
// matmul peaks measured in the same run, and peak RSS after the fast path.
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
#include "dalle/train/matmul_peak.h"
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

  const Path paths[] = {{"sparse bf16 (fast path)", false, true}, {"sparse fp32", false, false},
                        {"dense fp32 (reference)", true, false}};
  double rate[3] = {};
  double rss_fast = 0;
  for (int p = 0; p < 3; ++p) {
    prior->use_dense_attention(paths[p].dense);
    double seconds = 0;
    for (int s = 0; s <= steps; ++s) {  // step 0 warms up
      const auto t0 = std::chrono::steady_clock::now();
      optimizer.zero_grad();
      PriorLogits logits;
      {
        CpuAutocastGuard autocast(paths[p].bf16);
        logits = prior->forward(text, image);
      }
      prior_loss(logits, text, image, pc.text_len > 1 ? 1.0 / 8 : 0.0).loss.backward();
      optimizer.step();
      if (s > 0) seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    rate[p] = tokens * steps / seconds;
    if (p == 0) rss_fast = peak_rss_gib();
    std::printf("  %-24s %8.0f tok/s  %6.2f s/step  MFU %5.1f%% of bf16 peak, %5.1f%% of fp32 peak\n", paths[p].name,
                rate[p], seconds / steps, 100 * cost.train_flops_per_token * rate[p] / peak_bf16,
                100 * cost.train_flops_per_token * rate[p] / peak_fp32);
    std::fflush(stdout);
  }
  std::printf("fast path / dense fp32 reference: %.2fx   sparse fp32 / dense fp32: %.2fx   bf16 / fp32 (sparse): %.2fx\n",
              rate[0] / rate[2], rate[1] / rate[2], rate[0] / rate[1]);
  std::printf("training FLOPs per token: %.3g sparse, %.3g dense; peak RSS after the fast path %.2f GiB, after all %.2f GiB\n",
              cost.train_flops_per_token, cost.train_flops_per_token_dense, rss_fast, peak_rss_gib());
  return 0;
}

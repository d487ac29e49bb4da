// Data-parallel training on this machine, through `dalle train` processes started the way a
// launcher starts them (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), on synthetic token folders:
//   1. `small`: 1 rank x 2 threads against 2 ranks x 1 thread (tokens/s, and the seconds per step
//      each rank waits on communication), and the peak RSS per rank with and without
//      --shard-optimizer;
//   2. `bench-m`: comm_bytes per step (what each rank sends) with PowerSGD off and at ranks 4,
//      16 and 64, against `dalle info`'s plan.
// Usage: bench_dist [steps=30]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "dalle/bundle/bundle.h"
#include "dalle/data/token_set.h"
#include "dalle/dist/comm_plan.h"
#include "dalle/io/safetensors.h"
#include "dalle/io/weights.h"
#include "dalle/util/fs.h"
#include "dalle/util/subprocess.h"
#include "dalle/util/torch_api.h"
#include "dalle/vae/dvae.h"

using namespace dalle;
namespace fs = std::filesystem;

namespace {

const fs::path kBin = fs::canonical("/proc/self/exe").parent_path();
const fs::path kRoot = kBin / "../..";

// A token folder for `config`'s grid and vocabularies: random tokens, captions from a small
// vocabulary. The dVAE beside them is the config's with n_hid 16 (the prior never runs it).
std::string synthetic_tokens(const fs::path& dir, ModelConfig config, int64_t count) {
  config.vae.n_hid = 16;
  const int64_t g = config.vae.grid();
  TokenSet set;
  torch::manual_seed(0);
  set.tokens = torch::randint(0, config.vae.vocab, {count, g, g}, torch::kLong);
  const char* words[] = {"red", "green", "blue", "circle", "square", "star", "small", "large"};
  for (int64_t i = 0; i < count; ++i)
    set.captions.push_back({std::string("a ") + words[i % 3] + " " + words[6 + i % 2] + " " + words[3 + i % 3]});
  make_dirs(dir.string());
  token_set_write(dir.string(), set);
  config_save(path_join(dir.string(), kConfigFile), config);
  Dvae vae(config.vae);
  SafeTensors weights;
  module_weights_into(*vae, weights);
  safetensors_save(path_join(dir.string(), kVaeWeightsFile), weights);
  return dir.string();
}

struct RunResult {
  double tok_per_s = 0, comm_wait_s = 0, comm_bytes = 0, compression = 0, peak_rss_mib = 0;
  bool ok = false;
};

// `world` ranks of `dalle train ARGS -t threads`; the last metrics line and the largest peak RSS.
RunResult train(int world, int threads, const std::string& out, const std::vector<std::string>& args) {
  static int port = 24000 + static_cast<int>(::getpid() % 1000) * 8;
  ++port;
  fs::remove_all(out);
  std::vector<std::unique_ptr<Subprocess>> ranks;
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> argv = {"/usr/bin/env"};
    if (world > 1)
      argv.insert(argv.end(), {"RANK=" + std::to_string(r), "WORLD_SIZE=" + std::to_string(world),
                               "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port)});
    argv.insert(argv.end(), {"OMP_NUM_THREADS=" + std::to_string(threads), (kBin / "dalle").string(), "train"});
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"-o", out, "-t", std::to_string(threads), "--quiet", "--no-samples"});
    ranks.push_back(std::make_unique<Subprocess>(argv, out + ".rank" + std::to_string(r) + ".log"));
  }
  RunResult result;
  long peak = 0;
  bool running = true;
  while (running) {
    running = false;
    for (auto& p : ranks) {
      peak = std::max(peak, p->peak_rss_kib());
      if (!p->wait(0.05)) running = true;
    }
  }
  result.ok = true;
  for (auto& p : ranks)
    if (p->wait(0).value_or(-1) != 0) {
      std::fprintf(stderr, "bench_dist: a rank failed:\n%s\n", p->log().c_str());
      result.ok = false;
    }
  if (!result.ok) return result;
  std::ifstream in(path_join(out, "metrics.jsonl"));
  std::string line, last;
  int n = 0;
  double wait = 0;
  while (std::getline(in, line)) {
    last = line;
    const auto m = nlohmann::json::parse(line);
    if (++n > 2) wait += m.value("comm_wait_s", 0.0);  // after the first updates' warm-up
  }
  const auto m = nlohmann::json::parse(last);
  result.tok_per_s = m["tok_per_s"].get<double>();
  result.comm_wait_s = n > 2 ? wait / (n - 2) : 0;
  result.comm_bytes = m.value("comm_bytes", 0.0);
  result.compression = m.value("powersgd_compression", 0.0);
  result.peak_rss_mib = peak / 1024.0;
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 30;
  const fs::path dir = fs::temp_directory_path() / ("bench_dist_" + std::to_string(::getpid()));
  fs::remove_all(dir);

  // 1. small: the same global batch (2 x 16) as one process on both cores or two on one each.
  const ModelConfig small = config_load((kRoot / "configs/small.json").string());
  const std::string small_tokens = synthetic_tokens(dir / "small_tokens", small, 4096);
  auto small_args = [&](int batch) {
    return std::vector<std::string>{"-c", (kRoot / "configs/small.json").string(), "-d", small_tokens, "--steps",
                                    std::to_string(steps), "--batch", std::to_string(batch), "--val-every", "100000"};
  };
  const RunResult one = train(1, 2, (dir / "one").string(), small_args(32));
  const RunResult two = train(2, 1, (dir / "two").string(), small_args(16));
  std::vector<std::string> sharded_args = small_args(16);
  sharded_args.push_back("--shard-optimizer");
  const RunResult sharded = train(2, 1, (dir / "sharded").string(), sharded_args);
  if (!one.ok || !two.ok || !sharded.ok) return 1;
  std::printf("small, %d updates of a global batch of 32:\n", steps);
  std::printf("  1 rank x 2 threads : %8.0f tok/s, peak RSS %.0f MiB\n", one.tok_per_s, one.peak_rss_mib);
  std::printf("  2 ranks x 1 thread : %8.0f tok/s (%.2fx), %.3f s/step waiting on communication, %.1f MB sent per "
              "rank per step, peak RSS %.0f MiB per rank\n",
              two.tok_per_s, two.tok_per_s / one.tok_per_s, two.comm_wait_s, two.comm_bytes / 1e6, two.peak_rss_mib);
  std::printf("  2 ranks, --shard-optimizer: %8.0f tok/s, %.3f s/step waiting, %.1f MB sent, peak RSS %.0f MiB per "
              "rank (%.2fx unsharded)\n",
              sharded.tok_per_s, sharded.comm_wait_s, sharded.comm_bytes / 1e6, sharded.peak_rss_mib,
              sharded.peak_rss_mib / two.peak_rss_mib);

  // 2. bench-m: the bytes of one update at each PowerSGD rank (they do not depend on the batch).
  const ModelConfig bench_m = config_load((kRoot / "configs/bench-m.json").string());
  const std::string m_tokens = synthetic_tokens(dir / "bench_m_tokens", bench_m, 64);
  auto m_args = [&](int rank) {
    return std::vector<std::string>{"-c", (kRoot / "configs/bench-m.json").string(), "-d", m_tokens, "--steps", "1",
                                    "--batch", "1", "--val-every", "100000", "--powersgd-rank", std::to_string(rank)};
  };
  std::printf("bench-m, 2 ranks, bytes each rank sends per update (measured / planned by `dalle info`):\n");
  double unsharded_rss = 0;
  for (int rank : {0, 4, 16, 64}) {
    const RunResult r = train(2, 1, (dir / ("m" + std::to_string(rank))).string(), m_args(rank));
    if (!r.ok) return 1;
    if (rank == 0) unsharded_rss = r.peak_rss_mib;
    const CommPlan plan = comm_plan(bench_m, 2, rank, 100);
    const double planned = rank > 0 ? plan.comm_bytes_per_step_powersgd : plan.comm_bytes_per_step_uncompressed;
    std::printf("  PowerSGD %-3s: %8.2f MB / %8.2f MB planned, compression %.1f%%\n",
                rank ? std::to_string(rank).c_str() : "off", r.comm_bytes / 1e6, planned / 1e6, 100 * r.compression);
  }
  std::vector<std::string> sharded_m = m_args(0);
  sharded_m.push_back("--shard-optimizer");
  const RunResult m_sharded = train(2, 1, (dir / "m_sharded").string(), sharded_m);
  if (!m_sharded.ok) return 1;
  std::printf("bench-m, 2 ranks, peak RSS per rank: %.0f MiB unsharded, %.0f MiB with --shard-optimizer (%.2fx)\n",
              unsharded_rss, m_sharded.peak_rss_mib, m_sharded.peak_rss_mib / unsharded_rss);
  fs::remove_all(dir);
  return 0;
}

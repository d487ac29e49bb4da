// The fast decoder's linear layers by row count, in one run: the 48 layers of a `bench-m` step
// (12 x qkv 512->1536, projection 512->512, MLP 512->2048 and 2048->512) through PackedLinear in
// int8 and bf16 (where the CPU has AMX: bf16 on its tiles at every row count, int8 from 5 rows on
// and the panel kernel below; without AMX the panel kernel, and oneDNN for bf16 from 16 rows),
// against oneDNN's bf16 matmul called directly, as ms per step and as ratios to oneDNN. Best of
// 20 interleaved repeats: the hosts are shared and noisy.
// Usage: bench_linear [threads=2]
#include "dalle/util/torch_api.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "dalle/prior/amx_matmul.h"
#include "dalle/prior/onednn_matmul.h"
#include "dalle/prior/packed_linear.h"
#include "dalle/util/threads.h"

using namespace dalle;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  set_thread_count(threads);
  torch::manual_seed(0);
  struct Shape {
    int64_t in, out;
  };
  const Shape shapes[] = {{512, 1536}, {512, 512}, {512, 2048}, {2048, 512}};
  std::vector<PackedLinear> int8, bf16;
  std::vector<std::unique_ptr<OnednnMatmul>> onednn;
  for (int layer = 0; layer < 12; ++layer)
    for (const Shape& s : shapes) {
      const torch::Tensor w = torch::randn({s.out, s.in}) * 0.02, b = torch::randn({s.out});
      int8.emplace_back(w, b, WeightFormat::int8);
      bf16.emplace_back(w, b, WeightFormat::bf16);
      if (OnednnMatmul::available()) {
        const torch::Tensor h = w.to(torch::kBFloat16).contiguous();
        onednn.push_back(std::make_unique<OnednnMatmul>(reinterpret_cast<const uint16_t*>(h.data_ptr()),
                                                        b.data_ptr<float>(), s.in, s.out));
      }
    }
  std::printf("bench-m's 48 linear layers, %d threads, AMX %s, oneDNN %s; ms per step (ratio to oneDNN bf16)\n",
              threads, AmxMatmul::available() ? "yes" : "no", OnednnMatmul::available() ? "yes" : "no");
  std::vector<float> x(64 * 2048, 0.1f), y(64 * 2048);
  for (int rows : {1, 2, 4, 5, 8, 16, 32, 64}) {
    double best[3] = {1e9, 1e9, 1e9};
    for (int rep = 0; rep < 20; ++rep) {
      double t0 = now();
      for (const PackedLinear& l : int8) l.apply(x.data(), rows, y.data());
      best[0] = std::min(best[0], now() - t0);
      t0 = now();
      for (const PackedLinear& l : bf16) l.apply(x.data(), rows, y.data());
      best[1] = std::min(best[1], now() - t0);
      t0 = now();
      for (auto& l : onednn) l->run(x.data(), rows, y.data(), Epilogue::store);
      best[2] = std::min(best[2], now() - t0);
    }
    if (onednn.empty())
      std::printf("  rows %2d: int8 %6.2f  bf16 %6.2f\n", rows, best[0] * 1e3, best[1] * 1e3);
    else
      std::printf("  rows %2d: int8 %6.2f (%.2fx)  bf16 %6.2f (%.2fx)  oneDNN bf16 %6.2f\n", rows, best[0] * 1e3,
                  best[2] / best[0], best[1] * 1e3, best[2] / best[1], best[2] * 1e3);
  }
}

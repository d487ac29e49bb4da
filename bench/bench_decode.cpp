// dVAE decoding (tokens -> pixels), the last step of every generated image, in one run: fp32
// channels-first against channels-last, and bf16 (autocast, and weights stored in bf16), with
// the decoded pixels' difference from fp32; each with glibc's allocator defaults and with freed
// memory reused (util/allocator.h). Ratios are to fp32 channels-first with glibc's defaults.
// Usage: bench_decode [CONFIG=configs/bench-m.json] [threads=2] [batch=1] [repeats=3]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dalle/bundle/config.h"
#include "dalle/util/allocator.h"
#include "dalle/util/threads.h"
#include "dalle/util/torch_api.h"
#include "dalle/vae/dvae.h"
#include "dalle/vae/pixels.h"

using namespace dalle;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Mode {
  const char* name;
  bool channels_last;
  bool autocast;
  bool bf16_weights;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string config_path = argc > 1 ? argv[1] : "configs/bench-m.json";
  set_thread_count(argc > 2 ? std::atoi(argv[2]) : 2);
  const int64_t batch = argc > 3 ? std::atoll(argv[3]) : 1;
  const int repeats = argc > 4 ? std::atoi(argv[4]) : 3;
  const VaeConfig vc = config_load(config_path).vae;
  torch::manual_seed(0);
  const torch::Tensor tokens = torch::randint(0, vc.vocab, {batch, vc.grid(), vc.grid()}, torch::kLong);
  std::printf("%s: dVAE decoder n_hid %d, %dx%d tokens of %d -> %dx%d, batch %lld, %d threads\n", config_path.c_str(),
              vc.n_hid, vc.grid(), vc.grid(), vc.vocab, vc.image_size, vc.image_size, static_cast<long long>(batch),
              torch::get_num_threads());

  const std::vector<Mode> modes = {{"fp32 NCHW", false, false, false},
                                   {"fp32 NHWC", true, false, false},
                                   {"bf16 autocast NHWC", true, true, false},
                                   {"bf16 weights NHWC", true, false, true}};
  torch::Tensor reference;
  double base = 0;
  for (const bool reuse : {false, true}) {
  reuse_freed_memory(reuse);
  std::printf(" %s\n", reuse ? "freed memory reused (util/allocator.h, what `dalle` does)"
                              : "glibc's defaults (every large tensor a fresh mmap)");
  for (const Mode& m : modes) {
    torch::manual_seed(1);
    Dvae vae(vc);
    vae->eval();
    if (m.channels_last) vae->to_channels_last();
    if (m.bf16_weights) vae->decoder->to(torch::kBFloat16);
    torch::InferenceMode inference;
    auto decode = [&] {
      AutocastGuard autocast(m.autocast);
      torch::Tensor stats = vae->decoder->forward_tokens(tokens).to(torch::kFloat32);
      return unmap_pixels(torch::sigmoid(stats.slice(1, 0, vc.channels)), vc.eps);
    };
    decode();  // warm-up (oneDNN primitive creation)
    const auto t0 = std::chrono::steady_clock::now();
    torch::Tensor pixels;
    for (int r = 0; r < repeats; ++r) pixels = decode();
    const double s = seconds_since(t0) / (repeats * batch);
    if (!reference.defined()) {
      reference = pixels;
      base = s;
    }
    const double max_diff = (pixels - reference).abs().max().item<double>();
    const double mse = (pixels - reference).pow(2).mean().item<double>();
    std::printf("  %-20s %8.3f s/image  %6.2f img/s  %5.2fx  max |diff| %.4f, PSNR vs fp32 %s\n", m.name, s, 1 / s,
                base / s, max_diff, mse > 0 ? (std::to_string(10 * std::log10(1 / mse)).substr(0, 5) + " dB").c_str() : "exact");
  }
  }
  return 0;
}

// Sampling speed on a model bundle, in one run: KV-cached decoding against recomputing the
// whole sequence for every token (the reference path), and batch 1 against batch 8.
// Usage: bench_generate [BUNDLE] [threads]
#include "dalle/util/torch_api.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "dalle/bundle/bundle.h"
#include "dalle/sample/generate.h"
#include "dalle/train/checkpoint.h"
#include "dalle/util/threads.h"

using namespace dalle;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Reference: one full forward pass per image token (causality makes later slots irrelevant).
torch::Tensor sample_by_recompute(Prior& prior, const torch::Tensor& text, torch::Generator& gen) {
  torch::InferenceMode guard;
  const int64_t n = prior->image_tokens();
  torch::Tensor image = torch::zeros({text.size(0), n}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor logits = prior->forward(text, image).image.select(1, i);
    image.select(1, i).copy_(sample_logits(logits, SamplerSettings{}, gen));
  }
  return image;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "models/default";
  set_thread_count(argc > 2 ? std::atoi(argv[2]) : 0);
  Bundle bundle = bundle_load(path);
  const torch::Tensor text1 = encode_caption(bundle, "a red circle");
  const int64_t n = bundle.prior->image_tokens();
  torch::Generator gen = step_generator(0, 0, 0);

  auto time_cached = [&](int64_t batch, int reps) {
    const torch::Tensor text = text1.expand({batch, text1.size(1)}).contiguous();
    sample_image_tokens(bundle.prior, text, SamplerSettings{}, gen);  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) {
      torch::InferenceMode guard;
      torch::Tensor tokens = sample_image_tokens(bundle.prior, text, SamplerSettings{}, gen);
      const int g = bundle.config.vae.grid();
      bundle.vae->decode_tokens(tokens.view({batch, g, g}));
    }
    return seconds_since(t0) / (reps * batch);  // seconds per image, tokens + decoding
  };
  const double cached1 = time_cached(1, 10);
  const double cached8 = time_cached(8, 3);
  sample_by_recompute(bundle.prior, text1, gen);
  auto t0 = std::chrono::steady_clock::now();
  const int reps = 3;
  for (int r = 0; r < reps; ++r) sample_by_recompute(bundle.prior, text1, gen);
  const double recompute1 = seconds_since(t0) / reps;

  std::printf("bundle %s: %lld image tokens per image, %d threads\n", path.c_str(), static_cast<long long>(n),
              torch::get_num_threads());
  std::printf("  cached, batch 1:       %8.2f ms/image  %7.3f ms/token  %6.0f images/min\n", 1e3 * cached1,
              1e3 * cached1 / n, 60 / cached1);
  std::printf("  cached, batch 8:       %8.2f ms/image  %7.3f ms/token  %6.0f images/min\n", 1e3 * cached8,
              1e3 * cached8 / n, 60 / cached8);
  std::printf("  recompute, batch 1:    %8.2f ms/image (tokens only)\n", 1e3 * recompute1);
  std::printf("  cached vs recompute (batch 1): %.1fx faster; batch 8 vs batch 1: %.1fx less time per image\n",
              recompute1 / cached1, cached1 / cached8);
  return 0;
}

// Sampling speed in one run: the windowed KV cache against recomputing the whole sequence for
// every token (the reference path), batch 32 against batch 1, and the dVAE decode.
// Usage (from the repository root): bench_generate [CONFIG_OR_BUNDLE] [threads=1] [recompute_tokens]
//   A config (configs/small.json, configs/bench-m.json) gets random weights: speed does not
//   depend on them. A bundle folder (models/default) uses its trained weights.
//   The full recompute costs the same for every token (one forward over the whole sequence),
//   so it is timed on the first `recompute_tokens` tokens (default: all, at most 16).
#include "dalle/util/torch_api.h"

#include <time.h>
#include <cstdio>
#include <cstdlib>

#include "dalle/bundle/bundle.h"
#include "dalle/sample/generate.h"
#include "dalle/train/checkpoint.h"
#include "dalle/util/fs.h"
#include "dalle/util/allocator.h"
#include "dalle/util/threads.h"

using namespace dalle;

namespace {

// CPU seconds of this process: on a shared machine wall time mostly measures the neighbours.
// With one thread (the default here) it is the work done; pass threads > 1 for wall-clock-like
// figures only on an idle machine.
double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

Bundle random_bundle(const std::string& config_path) {
  Bundle b;
  b.path = config_path;
  b.config = config_load(config_path);
  b.tokenizer = Tokenizer::load("models/default/tokenizer.json");  // only encodes the caption
  torch::manual_seed(0);
  b.vae = Dvae(b.config.vae);
  b.vae->eval();
  b.prior = prior_create(b.config);
  b.prior->eval();
  return b;
}

// Reference: one full forward pass per image token (causality makes later slots irrelevant).
double seconds_per_token_by_recompute(Prior& prior, const torch::Tensor& text, int64_t tokens, torch::Generator& gen) {
  torch::InferenceMode guard;
  torch::Tensor image = torch::zeros({text.size(0), prior->image_tokens()}, torch::kLong);
  prior->forward(text, image);  // warm-up
  const double t0 = cpu_seconds();
  for (int64_t i = 0; i < tokens; ++i) {
    torch::Tensor logits = prior->forward(text, image).image.select(1, i);
    image.select(1, i).copy_(sample_logits(logits, SamplerSettings{}, gen));
  }
  return (cpu_seconds() - t0) / tokens;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "models/default";
  set_thread_count(argc > 2 ? std::atoi(argv[2]) : 1);
  reuse_freed_memory(true);  // as every `dalle` command does (util/allocator.h)
  const bool bundle_dir = is_directory(path);
  Bundle bundle = bundle_dir ? bundle_load(path) : random_bundle(path);
  const torch::Tensor text1 = encode_caption(bundle, "a small blue square in the top left corner");
  const int64_t n = bundle.prior->image_tokens();
  const int64_t recompute_tokens = std::min<int64_t>(n, argc > 3 ? std::atoll(argv[3]) : 16);
  const int grid = bundle.config.vae.grid();
  torch::Generator gen = step_generator(0, 0, 0);
  torch::InferenceMode guard;

  // Seconds per image for sampling the tokens only, at `batch`.
  auto time_cached = [&](int64_t batch, int reps) {
    const torch::Tensor text = text1.expand({batch, text1.size(1)}).contiguous();
    const double t0 = cpu_seconds();
    for (int r = 0; r < reps; ++r) sample_image_tokens(bundle.prior, text, SamplerSettings{}, gen);
    return (cpu_seconds() - t0) / (reps * batch);
  };
  auto time_decode = [&](int64_t batch) {
    const torch::Tensor tokens = torch::randint(0, bundle.config.vae.vocab, {batch, grid, grid}, torch::kLong);
    bundle.vae->decode_tokens(tokens.narrow(0, 0, 1));  // warm-up
    const double t0 = cpu_seconds();
    bundle.vae->decode_tokens(tokens);
    return (cpu_seconds() - t0) / batch;
  };
  time_cached(1, 1);  // warm-up
  const bool big = n > 256;
  const double cached1 = time_cached(1, big ? 1 : 10);
  const double cached32 = time_cached(32, big ? 1 : 3);
  const double decode1 = time_decode(1);
  const double decode32 = time_decode(big ? 2 : 32);
  const double recompute_per_token = seconds_per_token_by_recompute(bundle.prior, text1, recompute_tokens, gen);

  const PriorConfig& pc = bundle.config.prior;
  std::printf("%s (%s): prior %d layers d=%d, %dx%d = %lld image tokens after %d text, %d threads\n",
              bundle.config.name.c_str(), bundle_dir ? "trained bundle" : "random weights", pc.layers, pc.d_model, grid,
              grid, static_cast<long long>(n), pc.text_len, torch::get_num_threads());
  std::printf("  cached, batch 1:      %9.3f ms/image token  %9.1f ms/image sampling\n", 1e3 * cached1 / n, 1e3 * cached1);
  std::printf("  cached, batch 32:     %9.3f ms/image token  %9.1f ms/image sampling\n", 1e3 * cached32 / n, 1e3 * cached32);
  std::printf("  full recompute, b 1:  %9.3f ms/image token  (timed on %lld tokens)\n", 1e3 * recompute_per_token,
              static_cast<long long>(recompute_tokens));
  std::printf("  dVAE decode:          %9.1f ms/image at batch 1, %.1f ms/image batched\n", 1e3 * decode1, 1e3 * decode32);
  std::printf("  one image, batch 1 (sample + decode): %.1f ms; images/minute: %.0f at batch 1, %.0f at batch 32\n",
              1e3 * (cached1 + decode1), 60 / (cached1 + decode1), 60 / (cached32 + decode32));
  std::printf("  cached vs full recompute: %.1fx faster per token; batch 32 vs batch 1: %.1fx less sampling time per image\n",
              recompute_per_token * n / cached1, cached1 / cached32);
  return 0;
}

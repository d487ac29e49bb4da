// Sampling speed in one run (issue 24): the libtorch module's cached path (the reference) against
// the fast decoder with fp32, bf16 and int8 weights, at batch 1 and batch 32, plus the dVAE
// decode in fp32 and bf16, as seconds per image and ratios; the bandwidth a batch-1 step reaches
// against this machine's read bandwidth; and, for a trained bundle, how often bf16 and int8 pick
// the same greedy token as fp32.
// Usage (from the repository root): bench_generate [CONFIG_OR_BUNDLE] [threads=2] [tokens] [profile]
//   A config (configs/bench-s.json, configs/bench-m.json) gets random weights: speed does not
//   depend on them. A bundle folder (models/default) uses its trained weights. `tokens` times
//   only the first image tokens of each image (default: all, at most 256) and scales to the
//   whole image; later tokens cost the same or a little more (longer column windows).
//   `profile` = fp32, bf16 or int8 runs only that format's batch-32 sampling and dVAE decode,
//   three times, for a profiler (perf record build/bin/bench_generate configs/bench-m.json 2 64 bf16)
//   or a quick total (bench_generate configs/bench-m.json 2 1024 bf16).
#include "dalle/util/torch_api.h"

#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "dalle/bundle/bundle.h"
#include "dalle/prior/vector_math.h"
#include "dalle/sample/generate.h"
#include "dalle/train/checkpoint.h"
#include "dalle/util/allocator.h"
#include "dalle/util/fs.h"
#include "dalle/util/threads.h"

using namespace dalle;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

Bundle random_bundle(const std::string& config_path) {
  Bundle b;
  b.path = config_path;
  b.config = config_load(config_path);
  b.tokenizer = Tokenizer::load("models/default/tokenizer.json");  // only encodes the caption
  torch::manual_seed(0);
  b.vae = Dvae(b.config.vae);
  b.vae->eval();
  b.vae->to_channels_last();
  b.prior = prior_create(b.config);
  b.prior->eval();
  return b;
}

// Read bandwidth of this machine on all threads: the best of 5 sums over 256 MB, each thread
// streaming its share (a one-thread memcpy, which also writes, shows about half of it).
double read_bandwidth() {
  const int64_t n = int64_t(64) << 20;  // floats
  std::vector<float> a(static_cast<size_t>(n), 1.0f);
  const int64_t parts = at::get_num_threads();
  std::vector<float> sums(static_cast<size_t>(parts));
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    const double t0 = now();
    at::parallel_for(0, parts, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) sums[p] = vec_sum(a.data() + p * (n / parts), n / parts);
    });
    best = std::max(best, 4.0 * n / (now() - t0));
  }
  if (sums[0] < 0) std::printf("(unreachable)\n");  // keep the sums observable
  return best;
}

struct Timing {
  double seconds_per_image = 0;
  double seconds_per_step = 0;  // one decoding step for the whole batch
};

// Sampling one batch: the prefill, then `tokens` - 1 steps, scaled to the image's n tokens.
Timing time_sampling(ImageTokenDecoder& decoder, const torch::Tensor& text1, int64_t batch, int64_t tokens,
                     torch::Generator& gen) {
  torch::InferenceMode guard;
  const int64_t n = decoder.image_tokens();
  const torch::Tensor text = text1.expand({batch, text1.size(1)}).contiguous();
  decoder.start(text, {});  // warm-up (buffers, first-touch pages)
  const double t0 = now();
  torch::Tensor logits = decoder.start(text, {});
  const double t1 = now();
  for (int64_t i = 0; i + 1 < tokens; ++i) logits = decoder.step(sample_logits(logits, SamplerSettings{}, gen), i);
  const double t2 = now();
  Timing t;
  t.seconds_per_step = (t2 - t1) / std::max<int64_t>(1, tokens - 1);
  t.seconds_per_image = ((t1 - t0) + t.seconds_per_step * (n - 1)) / batch;
  return t;
}

double time_decode(Dvae& vae, int grid, int vocab, int64_t batch) {
  torch::InferenceMode guard;
  const torch::Tensor tokens = torch::randint(0, vocab, {batch, grid, grid}, torch::kLong);
  vae->decode_tokens(tokens);  // warm-up at the timed batch (first-touch pages, oneDNN primitives)
  const double t0 = now();
  vae->decode_tokens(tokens);
  return (now() - t0) / batch;
}

// Greedy decoding of fixed prompts in fp32, then each format teacher-forced on those tokens:
// the share of positions where it picks the same argmax.
double greedy_agreement(Bundle& bundle, PriorDecoder& fp32, PriorDecoder& other) {
  torch::InferenceMode guard;
  const char* prompts[] = {"a red circle", "a green square", "a blue triangle", "a yellow star",
                           "a small purple circle on the left", "a big orange square", "a red square above a blue star",
                           "a white triangle"};
  int64_t same = 0, total = 0;
  for (const char* p : prompts) {
    const torch::Tensor text = encode_caption(bundle, p);
    SamplerSettings greedy;
    greedy.top_k = 1;
    torch::Generator gen = step_generator(0, 0, 0);
    const torch::Tensor tokens = sample_image_tokens(fp32, text, greedy, gen);
    torch::Tensor a = fp32.start(text, {}).argmax(-1), b = other.start(text, {}).argmax(-1);
    for (int64_t i = 0;; ++i) {
      same += a.eq(b).sum().item<int64_t>();
      ++total;
      if (i + 1 >= fp32.image_tokens()) break;
      const torch::Tensor t = tokens.select(1, i).contiguous();
      a = fp32.step(t, i).argmax(-1);
      b = other.step(t, i).argmax(-1);
    }
  }
  return double(same) / total;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "models/default";
  set_thread_count(argc > 2 ? std::atoi(argv[2]) : 2);
  reuse_freed_memory(true);  // as every `dalle` command does (util/allocator.h)
  const bool bundle_dir = is_directory(path);
  Bundle bundle = bundle_dir ? bundle_load(path, WeightFormat::fp32) : random_bundle(path);
  const torch::Tensor text1 = encode_caption(bundle, "a small blue square in the top left corner");
  const int64_t n = bundle.prior->image_tokens();
  const int64_t tokens = std::min<int64_t>(n, argc > 3 ? std::atoll(argv[3]) : 256);
  const int grid = bundle.config.vae.grid();
  torch::Generator gen = step_generator(0, 0, 0);
  const PriorConfig& pc = bundle.config.prior;
  std::printf("%s (%s): prior %d layers d=%d, %d text + %dx%d image tokens, %d threads; timed on %lld of %lld tokens\n",
              bundle.config.name.c_str(), bundle_dir ? "trained bundle" : "random weights", pc.layers, pc.d_model,
              pc.text_len, grid, grid, static_cast<int>(torch::get_num_threads()), static_cast<long long>(tokens),
              static_cast<long long>(n));
  const double bandwidth = read_bandwidth();
  std::printf("  read bandwidth (all threads): %.1f GB/s\n", bandwidth / 1e9);

  const int64_t decode_batch = grid > 16 ? 2 : 32;  // a 256x256 decode is seconds in fp32
  if (argc > 4) {
    const WeightFormat format = parse_weight_format(argv[4]);
    PriorDecoder decoder(bundle.prior, format);
    if (format != WeightFormat::fp32) bundle.vae->decoder->to(torch::kBFloat16);
    for (int r = 0; r < 3; ++r) {
      const Timing t = time_sampling(decoder, text1, 32, tokens, gen);
      const double decode = time_decode(bundle.vae, grid, bundle.config.vae.vocab, decode_batch);
      std::printf("  %s batch 32: %.4f s/image sampling + %.4f s/image dVAE decode (batch %lld) = %.4f\n", argv[4],
                  t.seconds_per_image, decode, static_cast<long long>(decode_batch), t.seconds_per_image + decode);
    }
    return 0;
  }
  ReferenceDecoder reference(bundle.prior);
  std::unique_ptr<PriorDecoder> fast[3];
  const WeightFormat formats[3] = {WeightFormat::fp32, WeightFormat::bf16, WeightFormat::int8};
  for (int f = 0; f < 3; ++f) fast[f] = std::make_unique<PriorDecoder>(bundle.prior, formats[f]);

  // dVAE decode: fp32 weights, then bf16 weights (what --weights bf16 / int8 use).
  const double decode32_fp32 = time_decode(bundle.vae, grid, bundle.config.vae.vocab, decode_batch);
  const double decode1_fp32 = time_decode(bundle.vae, grid, bundle.config.vae.vocab, 1);
  bundle.vae->decoder->to(torch::kBFloat16);
  const double decode32_bf16 = time_decode(bundle.vae, grid, bundle.config.vae.vocab, decode_batch);
  const double decode1_bf16 = time_decode(bundle.vae, grid, bundle.config.vae.vocab, 1);

  std::printf("  %-22s %12s %12s %10s %12s %12s %10s %9s %14s %14s\n", "prior path", "b1 ms/token", "b1 s/image",
              "vs ref", "b32 ms/token", "b32 s/image", "vs ref", "MB/step", "b1 GB/s (%rd)", "s/image+dec b1/b32");
  const Timing ref1 = time_sampling(reference, text1, 1, tokens, gen);
  const Timing ref32 = time_sampling(reference, text1, 32, tokens, gen);
  auto row = [&](const char* name, const Timing& t1, const Timing& t32, int64_t bytes, double dec1, double dec32) {
    char bw[32] = "-";
    if (bytes > 0) std::snprintf(bw, sizeof(bw), "%.1f (%.0f%%)", bytes / t1.seconds_per_step / 1e9,
                                 100 * bytes / t1.seconds_per_step / bandwidth);
    std::printf("  %-22s %12.3f %12.3f %9.1fx %12.3f %12.4f %9.1fx %9.1f %14s %7.3f/%.4f\n", name,
                1e3 * t1.seconds_per_image / n, t1.seconds_per_image, ref1.seconds_per_image / t1.seconds_per_image,
                1e3 * t32.seconds_per_image / n, t32.seconds_per_image, ref32.seconds_per_image / t32.seconds_per_image,
                bytes / 1e6, bw, t1.seconds_per_image + dec1, t32.seconds_per_image + dec32);
  };
  row("reference (libtorch)", ref1, ref32, 0, decode1_fp32, decode32_fp32);
  for (int f = 0; f < 3; ++f) {
    const Timing t1 = time_sampling(*fast[f], text1, 1, tokens, gen);
    const Timing t32 = time_sampling(*fast[f], text1, 32, tokens, gen);
    const bool bf16_decode = formats[f] != WeightFormat::fp32;
    row(("fast " + weight_format_name(formats[f])).c_str(), t1, t32, fast[f]->step_weight_bytes(),
        bf16_decode ? decode1_bf16 : decode1_fp32, bf16_decode ? decode32_bf16 : decode32_fp32);
  }
  std::printf("  dVAE decode s/image: fp32 %.4f at batch 1, %.4f at batch %lld; bf16 weights %.4f / %.4f\n", decode1_fp32,
              decode32_fp32, static_cast<long long>(decode_batch), decode1_bf16, decode32_bf16);
  if (bundle_dir)
    std::printf("  greedy top-1 agreement with fp32 (8 prompts, teacher-forced): bf16 %.2f%%, int8 %.2f%%\n",
                100 * greedy_agreement(bundle, *fast[0], *fast[1]), 100 * greedy_agreement(bundle, *fast[0], *fast[2]));
  return 0;
}

#include "dalle/sample/sampler.h"

#include "dalle/util/torch_api.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "dalle/prior/vector_math.h"
#include "dalle/util/error.h"

namespace dalle {

namespace {

struct RowScratch {
  std::vector<float> weights, sorted, block_sums;
  std::vector<int32_t> order;
};
// The inversion scans block sums first, then one block: a running sum over the whole vocabulary
// is one long dependency chain.
constexpr int64_t kBlock = 64;

// One row: keeps the top_k largest logits (ties with the k-th stay), then the smallest set of
// the most likely tokens whose mass reaches top_p (the token that crosses p stays, and always the
// top one), and draws from the softmax over what is kept by inverting its running sum at u in
// [0, 1): the distribution torch::multinomial draws from, at one uniform number per row instead
// of an exponential draw and a log per vocabulary entry.
int64_t sample_row(const float* logits, int64_t vocab, const SamplerSettings& s, double u, RowScratch& w) {
  std::vector<float>& p = w.weights;
  p.resize(static_cast<size_t>(vocab));
  const float max = vec_scale_max(logits, static_cast<float>(1.0 / s.temperature), p.data(), vocab);
  if (s.top_k > 0 && s.top_k < vocab) {  // logits below the k-th largest are dropped
    w.sorted.assign(p.begin(), p.end());
    std::nth_element(w.sorted.begin(), w.sorted.begin() + (s.top_k - 1), w.sorted.end(), std::greater<float>());
    const float floor = w.sorted[static_cast<size_t>(s.top_k - 1)];
    for (int64_t i = 0; i < vocab; ++i)
      if (p[i] < floor) p[i] = -INFINITY;
  }
  vec_exp_shifted(p.data(), vocab, max);
  const int64_t blocks = (vocab + kBlock - 1) / kBlock;
  w.block_sums.resize(static_cast<size_t>(blocks));
  auto block_sums = [&] {
    double total = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      w.block_sums[b] = vec_sum(p.data() + b * kBlock, std::min(kBlock, vocab - b * kBlock));
      total += w.block_sums[b];
    }
    return total;
  };
  double sum = block_sums();
  if (!(sum > 0) || !std::isfinite(sum)) throw Error("sampling: the logits are not finite numbers");
  if (s.top_p < 1.0) {
    w.order.clear();
    for (int64_t i = 0; i < vocab; ++i)
      if (p[i] > 0) w.order.push_back(static_cast<int32_t>(i));
    std::sort(w.order.begin(), w.order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    double before = 0, kept = 0;
    for (size_t j = 0; j < w.order.size(); ++j) {
      float& pj = p[static_cast<size_t>(w.order[j])];
      const double mass = pj;
      if (j > 0 && before >= s.top_p * sum) pj = 0;
      before += mass;
      kept += pj;
    }
    if (kept < sum) sum = block_sums();  // some were dropped: the block sums change
  }
  const double target = u * sum;
  int64_t last_block = blocks - 1;
  while (last_block > 0 && !(w.block_sums[last_block] > 0)) --last_block;
  double running = 0;
  int64_t last = 0;
  for (int64_t b = 0; b <= last_block; ++b) {
    if (b < last_block && running + w.block_sums[b] <= target) {
      running += w.block_sums[b];
      continue;
    }
    for (int64_t i = b * kBlock; i < std::min(vocab, (b + 1) * kBlock); ++i) {
      if (p[i] <= 0) continue;
      running += p[i];
      last = i;
      if (running > target) return i;
    }
  }
  return last;  // rounding left the running sum just short of u * sum
}

}  // namespace

torch::Tensor sample_logits(const torch::Tensor& logits, const SamplerSettings& s, torch::Generator& gen) {
  if (s.temperature <= 0 || s.top_k == 1) return logits.argmax(-1);
  const torch::Tensor l = logits.to(torch::kFloat32).contiguous();
  const int64_t rows = l.size(0), vocab = l.size(-1);
  // Drawn before the rows run in parallel, so the tokens do not depend on the thread count.
  const torch::Tensor u = torch::rand({rows}, gen, torch::kFloat64);
  torch::Tensor out = torch::empty({rows}, torch::kLong);
  const float* in = l.data_ptr<float>();
  const double* ud = u.data_ptr<double>();
  int64_t* o = out.data_ptr<int64_t>();
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    RowScratch scratch;
    for (int64_t r = begin; r < end; ++r) o[r] = sample_row(in + r * vocab, vocab, s, ud[r], scratch);
  });
  return out;
}

torch::Tensor sample_image_tokens(ImageTokenDecoder& decoder, const torch::Tensor& text, const SamplerSettings& s,
                                  torch::Generator& gen, const std::function<void(int64_t)>& on_token,
                                  const torch::Tensor& uncond_text, const torch::Tensor& init) {
  torch::InferenceMode inference;
  const bool guided = s.cfg_scale != 1.0;
  if (guided && (!uncond_text.defined() || uncond_text.sizes() != text.sizes()))
    throw Error("sampling: classifier-free guidance needs an unconditional caption batch");
  const int64_t b = text.size(0);
  const int64_t n = decoder.image_tokens();
  const int64_t given = init.defined() ? init.size(1) : 0;
  if (init.defined() && (init.size(0) != b || given >= n))
    throw Error("sampling: init tokens must be [" + std::to_string(b) + ", P] with P < " + std::to_string(n));
  torch::Tensor out = torch::empty({b, n}, torch::kLong);
  if (given > 0) out.narrow(1, 0, given).copy_(init);
  const int64_t rows = guided ? 2 * b : b;
  torch::Tensor logits = decoder.start(guided ? torch::cat({text, uncond_text}, 0) : text,
                                       given == 0 ? torch::Tensor() : guided ? torch::cat({init, init}, 0) : init);
  // This step's token for every cache row, where the decoder runs.
  torch::Tensor fed = torch::empty({rows}, torch::TensorOptions().dtype(torch::kLong).device(logits.device()));
  for (int64_t i = given; i < n; ++i) {
    torch::Tensor mixed = logits;
    if (guided) {
      const torch::Tensor cond = logits.narrow(0, 0, b), uncond = logits.narrow(0, b, b);
      mixed = uncond + s.cfg_scale * (cond - uncond);
    }
    // On a GPU the logits come to the CPU to be drawn: the same draws as a CPU run's.
    torch::Tensor token = sample_logits(mixed.to(torch::kCPU), s, gen);
    out.select(1, i).copy_(token);
    if (on_token) on_token(i);
    if (i + 1 < n) {
      fed.narrow(0, 0, b).copy_(token);
      if (guided) fed.narrow(0, b, b).copy_(token);
      logits = decoder.step(fed, i);
    }
  }
  return out;
}

torch::Tensor sample_image_tokens(const Prior& prior, const torch::Tensor& text, const SamplerSettings& s,
                                  torch::Generator& gen, const std::function<void(int64_t)>& on_token,
                                  const torch::Tensor& uncond_text, const torch::Tensor& init) {
  PriorDecoder decoder(prior, WeightFormat::fp32);
  return sample_image_tokens(decoder, text, s, gen, on_token, uncond_text, init);
}

}  // namespace dalle

#include "dalle/train/grad_scaling.h"

#include "dalle/util/torch_api.h"

#include <algorithm>
#include <cmath>

#include "dalle/util/error.h"

namespace dalle {

GradScales::GradScales(int64_t blocks, int replicas)
    : scales_(static_cast<size_t>(blocks), replicas * std::exp2(kInitLog2)),
      last_backoff_(static_cast<size_t>(blocks), -kBackoffInterval),
      min_(replicas * std::exp2(kMinLog2)),
      max_(replicas * std::exp2(kMaxLog2)) {}

bool GradScales::update(const std::vector<bool>& overflowed, int64_t step, bool other_nonfinite) {
  const bool skip = other_nonfinite || std::find(overflowed.begin(), overflowed.end(), true) != overflowed.end();
  for (size_t b = 0; b < scales_.size(); ++b) {
    if (overflowed[b]) {
      if (step - last_backoff_[b] >= kBackoffInterval) {
        scales_[b] /= std::sqrt(2.0);
        last_backoff_[b] = step;
      }
    } else if (!skip) {
      scales_[b] *= std::exp2(1.0 / 1000);
    }
    scales_[b] = std::clamp(scales_[b], min_, max_);
  }
  return skip;
}

nlohmann::json GradScales::state() const { return {{"scales", scales_}, {"last_backoff", last_backoff_}}; }

void GradScales::load_state(const nlohmann::json& state) {
  auto scales = state.at("scales").get<std::vector<double>>();
  auto last = state.at("last_backoff").get<std::vector<int64_t>>();
  if (scales.size() != scales_.size() || last.size() != scales_.size())
    throw Error("gradient scales: checkpoint has " + std::to_string(scales.size()) + " blocks, the model " +
                std::to_string(scales_.size()));
  scales_ = std::move(scales);
  last_backoff_ = std::move(last);
}

namespace {

// Resblock matrices and conv kernels; gains and biases are 1-D.
bool is_16bit_weight(const torch::Tensor& p) { return p.dim() >= 2; }

}  // namespace

std::vector<bool> grad_scales_unscale(const GradScales& scales,
                                      const std::vector<std::vector<torch::Tensor>>& blocks,
                                      bool fp16_grads) {
  torch::NoGradGuard no_grad;
  std::vector<bool> overflowed(blocks.size(), false);
  // One reduction per block, and all of them read at once: a host sync per block (or per tensor)
  // would cost a GPU more than the check.
  std::vector<torch::Tensor> block_finite;
  std::vector<size_t> checked;
  for (size_t b = 0; b < blocks.size(); ++b) {
    std::vector<torch::Tensor> finite;
    for (const torch::Tensor& p : blocks[b]) {
      torch::Tensor g = p.mutable_grad();
      if (!g.defined()) continue;
      // Gains and biases are 32-bit (SPEC §3): unscaled, never rounded, and no part of the
      // block's overflow check (a non-finite one skips the update through the global check).
      if (is_16bit_weight(p)) {
        if (fp16_grads) g.copy_(g.to(torch::kHalf));
        finite.push_back(g.isfinite().all());
      }
      g.div_(scales.scale(static_cast<int64_t>(b)));
    }
    if (finite.empty()) continue;
    block_finite.push_back(torch::stack(finite).all());
    checked.push_back(b);
  }
  if (!block_finite.empty()) {
    const torch::Tensor ok = torch::stack(block_finite).cpu();
    const bool* flags = ok.data_ptr<bool>();
    for (size_t i = 0; i < checked.size(); ++i) overflowed[checked[i]] = !flags[i];
  }
  return overflowed;
}

double grad_global_norm(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const torch::Tensor& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().norm(2).to(torch::kFloat64));
  return norms.empty() ? 0.0 : torch::stack(norms).norm(2).item<double>();
}

std::optional<double> scaled_update(GradScales* scales, const std::vector<std::vector<torch::Tensor>>& blocks,
                                    bool fp16_grads, const std::vector<torch::Tensor>& params, double clip,
                                    AdamW& optimizer, double lr, int64_t step,
                                    const std::function<void(std::vector<bool>& overflowed)>& sync) {
  std::vector<bool> overflowed;
  if (scales) overflowed = grad_scales_unscale(*scales, blocks, fp16_grads);
  if (sync) sync(overflowed);
  // Any non-finite gradient (a 32-bit one, or all of them in fp32 mode) shows in the norm.
  const double norm = grad_global_norm(params);
  const bool nonfinite = !std::isfinite(norm);
  // Scales change only after every gradient is known: a skipped update grows none of them.
  if (scales ? scales->update(overflowed, step, nonfinite) : nonfinite) return std::nullopt;
  if (norm > clip) {
    torch::NoGradGuard no_grad;
    const double factor = clip / (norm + 1e-6);
    for (const torch::Tensor& p : params)
      if (p.grad().defined()) p.mutable_grad().mul_(factor);
  }
  optimizer.step(lr);
  return norm;
}

}  // namespace dalle

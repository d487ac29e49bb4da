// Per-resblock gradient scaling (SPEC §3, the paper's Fig. 4): every resblock keeps its own
// scale, because in a deep 16-bit model the gradients of different resblocks span more binades
// than fp16 holds, so no single loss scale avoids both overflow in some blocks and underflow in
// others. This unit holds the scales and their update rule and unscales parameter gradients;
// train/resblock_runner.h applies the scales to activation gradients at block boundaries.
#pragma once
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "dalle/train/adamw.h"

namespace dalle {

class GradScales {
 public:
  static constexpr double kInitLog2 = 13, kMinLog2 = 7, kMaxLog2 = 24;  // times M (replicas)
  static constexpr int64_t kBackoffInterval = 125;  // at most one decrease per this many updates

  // `replicas`: M, the number of data-parallel replicas the gradients are summed over.
  GradScales(int64_t blocks, int replicas = 1);

  double scale(int64_t block) const { return scales_[static_cast<size_t>(block)]; }
  const std::vector<double>& scales() const { return scales_; }
  void set_scale(int64_t block, double scale) { scales_[static_cast<size_t>(block)] = scale; }

  // After the backward pass of update `step`: blocks whose 16-bit weight gradients held Inf/NaN
  // are divided by √2 (unless they were within the last 125 updates); when the update is taken
  // the others are multiplied by 2^(1/1000); all clamped to [M·2^7, M·2^24]. Returns true when
  // the update must be skipped: some block overflowed, or `other_nonfinite` (a 32-bit gradient
  // is not finite). A skipped update grows no scale.
  bool update(const std::vector<bool>& overflowed, int64_t step, bool other_nonfinite = false);

  nlohmann::json state() const;  // for checkpoints: scales and last decrease steps
  void load_state(const nlohmann::json& state);

 private:
  std::vector<double> scales_;
  std::vector<int64_t> last_backoff_;  // step of each block's last decrease, or -kBackoffInterval
  double min_, max_;
};

// Divides each resblock's parameter gradients (`blocks[b]`, scaled by scale(b) in backward)
// by its scale in place. Its 16-bit weights (tensors of 2 or more dimensions) are first rounded
// to fp16 with `fp16_grads`, as fp16 weight gradients would be, and decide whether the block
// overflowed; its gains and biases (1-D) stay 32-bit and out of that check (SPEC §3). Returns
// per block whether any of its weight gradients is Inf/NaN.
std::vector<bool> grad_scales_unscale(const GradScales& scales,
                                      const std::vector<std::vector<torch::Tensor>>& blocks,
                                      bool fp16_grads);

// The L2 norm of all of `params`' gradients together (Inf or NaN when any of them is not finite).
double grad_global_norm(const std::vector<torch::Tensor>& params);

// The update that ends a training step. With `scales` (16-bit modes) it first unscales the
// resblocks' gradients. When any gradient is not finite (a block overflowed, or any other
// gradient, in any mode) nothing else happens: parameters, AdamW moments and step count stay as
// they were, only overflowed blocks lower their scales, and it returns nullopt. Otherwise it
// grows the scales, clips the gradients of `params` to global norm `clip`, steps `optimizer` and
// returns the norm before clipping. `sync`, in a data-parallel run, is called with the blocks'
// overflow flags right after unscaling: it compresses and reduces what is left (PowerSGD) and
// makes the flags the same on every rank.
std::optional<double> scaled_update(GradScales* scales, const std::vector<std::vector<torch::Tensor>>& blocks,
                                    bool fp16_grads, const std::vector<torch::Tensor>& params, double clip,
                                    AdamW& optimizer, double lr, int64_t step,
                                    const std::function<void(std::vector<bool>& overflowed)>& sync = nullptr);

}  // namespace dalle

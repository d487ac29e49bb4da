// What training wraps around each resblock of the prior and the dVAE (SPEC §3): per-resblock gradient
// scaling with the paper's Inf/NaN filter, emulated fp16 numerics on CPUs, and activation
// checkpointing. The identity path around the block stays fp32 and unscaled.
#pragma once
#include "dalle/util/resblock_hook.h"
#include "dalle/train/grad_scaling.h"
#include "dalle/train/precision.h"

namespace dalle {

struct ResblockRunnerOptions {
  // Per-resblock gradient scales, read at each forward; null = no scaling. Must outlive the runner.
  const GradScales* scales = nullptr;
  // Round the branch's input and output, and the gradients flowing back through them, to fp16:
  // fp16 range and precision without fp16 kernels, for CPUs (libtorch has no fast fp16 CPU
  // matmul). On CUDA the trainers run the blocks under fp16 autocast instead: real fp16
  // products, activations and activation gradients inside the blocks.
  bool fp16 = false;
  // Keep only each block's input and recompute the branch in backward.
  bool checkpoint = false;
};

// In backward, for block b with scale s: the gradient entering the branch (from the fp32
// identity path) is multiplied by s; the gradient leaving it at its input is divided by s and
// its Inf/NaN entries set to zero before it joins the identity path, so an overflow in one block
// cannot reach the blocks before it. Parameter gradients of block b come out multiplied by s:
// unscale them with grad_scales_unscale.
ResblockRunner resblock_runner_make(const ResblockRunnerOptions& options);

// What a trainer installs: scaling (with `scales`) in the 16-bit modes, fp16 rounding for fp16
// when `emulate_fp16` (CPU), and checkpointing when asked; an empty runner (blocks run plainly)
// for fp32 without it.
ResblockRunner resblock_runner_for_training(Precision precision, const GradScales& scales, bool checkpoint,
                                           bool emulate_fp16);

}  // namespace dalle

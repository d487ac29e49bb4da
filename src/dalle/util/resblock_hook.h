// The hook through which training wraps each resblock of a model (the prior's attention and
// MLP blocks, the dVAE's conv blocks): per-resblock gradient scaling, fp16 numerics and
// activation checkpointing (train/resblock_runner.h). Models only call it.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>

namespace dalle {

// A resblock's residual branch as a function of its input.
using ResidualBranch = std::function<torch::Tensor(const torch::Tensor&)>;
// Runs resblock `block` (in the model's block order) on the identity-path input `x` and returns
// the branch output; it must call `branch`.
using ResblockRunner =
    std::function<torch::Tensor(int64_t block, const torch::Tensor& x, const ResidualBranch& branch)>;

}  // namespace dalle

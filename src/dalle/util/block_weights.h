// 16-bit storage of resblock weights, the paper's memory scheme (SPEC §3): for training with
// --weights16, and for sampling bf16 weights on a GPU, where autocast would otherwise cast the
// fp32 matrices again at every decoding step.
#pragma once
#include <vector>

#include "dalle/util/torch_api.h"

namespace dalle {

// Stores the blocks' weight matrices and kernels in `dtype`; their gains and biases stay fp32, as
// does everything outside the blocks. Each block is a module's resblock_parameters() entry.
inline void store_block_weights(const std::vector<std::vector<torch::Tensor>>& blocks, at::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  c10::InferenceMode normal_tensors(false);  // parameters, even when called from sampling code
  for (const std::vector<torch::Tensor>& block : blocks)
    for (torch::Tensor p : block)
      if (p.dim() >= 2 && p.scalar_type() != dtype)
        p.set_data(p.detach().to(dtype));  // keeps the memory format (channels-last)
}

}  // namespace dalle

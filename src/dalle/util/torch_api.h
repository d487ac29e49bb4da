// The part of libtorch's C++ API that dalle.cpp uses, and the one place where code that differs
// between libtorch 1.13 (Debian) and 2.x (GPU machines) lives. Including this instead of
// <torch/torch.h> (which also pulls in the JIT, data loaders and serialisation) makes each
// translation unit compile several times faster.
#pragma once
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstdint>

namespace dalle {

// A CPU random generator with its own seed (same call in 1.13 and 2.x so far).
inline torch::Generator make_cpu_generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

}  // namespace dalle

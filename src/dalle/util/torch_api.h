// The part of libtorch's C++ API that dalle.cpp uses, and the one place where code that differs
// between libtorch 1.13 (Debian) and 2.x (GPU machines) lives. Including this instead of
// <torch/torch.h> (which also pulls in the JIT, data loaders and serialisation) makes each
// translation unit compile several times faster.
#pragma once
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <cstdint>

namespace dalle {

// A CPU random generator with its own seed (same call in 1.13 and 2.x so far).
inline torch::Generator make_cpu_generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

// Whether CPU autocast is on in this thread (checkpointed blocks recompute under the same state).
inline bool cpu_autocast_enabled() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(at::kCPU);
#else
  return at::autocast::is_cpu_enabled();
#endif
}

// Turns CPU autocast off in its scope (and back to its previous state after): what must stay
// fp32 inside an autocast region, such as the prior's logits (SPEC §3).
class CpuAutocastOff {
 public:
  CpuAutocastOff() : was_enabled_(cpu_autocast_enabled()) { set(false); }
  ~CpuAutocastOff() { set(was_enabled_); }
  CpuAutocastOff(const CpuAutocastOff&) = delete;
  CpuAutocastOff& operator=(const CpuAutocastOff&) = delete;

 private:
  static void set(bool enabled) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCPU, enabled);
#else
    at::autocast::set_cpu_enabled(enabled);
#endif
  }
  bool was_enabled_;
};

// Runs the ops in its scope in bf16 where autocast says it is safe (matmuls, convolutions) and
// in fp32 elsewhere, on CPU through oneDNN. Disabled guards do nothing.
class CpuAutocastGuard {
 public:
  explicit CpuAutocastGuard(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    was_enabled_ = at::autocast::is_autocast_enabled(at::kCPU);
    at::autocast::set_autocast_enabled(at::kCPU, true);
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
#else
    was_enabled_ = at::autocast::is_cpu_enabled();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
#endif
    at::autocast::increment_nesting();
  }
  ~CpuAutocastGuard() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCPU, was_enabled_);
#else
    at::autocast::set_cpu_enabled(was_enabled_);
#endif
  }
  CpuAutocastGuard(const CpuAutocastGuard&) = delete;
  CpuAutocastGuard& operator=(const CpuAutocastGuard&) = delete;

 private:
  bool enabled_;
  bool was_enabled_ = false;
};

}  // namespace dalle

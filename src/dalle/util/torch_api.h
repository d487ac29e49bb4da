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

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define DALLE_AUTOCAST_PER_DEVICE 1  // 2.4 made the autocast calls take a device type
#endif

// Autocast's state for one device type (CPU or CUDA) in this thread: whether it is on and the
// 16-bit type it computes matmuls and convolutions in.
struct AutocastState {
  bool enabled = false;
  at::ScalarType dtype = at::kBFloat16;
};

inline AutocastState autocast_state(c10::DeviceType device) {
#ifdef DALLE_AUTOCAST_PER_DEVICE
  return {at::autocast::is_autocast_enabled(device), at::autocast::get_autocast_dtype(device)};
#else
  if (device == c10::DeviceType::CUDA) return {at::autocast::is_enabled(), at::autocast::get_autocast_gpu_dtype()};
  return {at::autocast::is_cpu_enabled(), at::autocast::get_autocast_cpu_dtype()};
#endif
}

inline void set_autocast_state(c10::DeviceType device, const AutocastState& state) {
#ifdef DALLE_AUTOCAST_PER_DEVICE
  at::autocast::set_autocast_enabled(device, state.enabled);
  at::autocast::set_autocast_dtype(device, state.dtype);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(state.enabled);
    at::autocast::set_autocast_gpu_dtype(state.dtype);
  } else {
    at::autocast::set_cpu_enabled(state.enabled);
    at::autocast::set_autocast_cpu_dtype(state.dtype);
  }
#endif
}

// Runs the ops in its scope in `dtype` where autocast says it is safe (matmuls, convolutions)
// and in fp32 elsewhere: on CPU bf16 through oneDNN, on CUDA bf16 or fp16. Disabled guards do
// nothing.
class AutocastGuard {
 public:
  explicit AutocastGuard(bool enabled, c10::DeviceType device = c10::DeviceType::CPU,
                         at::ScalarType dtype = at::kBFloat16)
      : enabled_(enabled), device_(device) {
    if (!enabled_) return;
    before_ = autocast_state(device_);
    set_autocast_state(device_, {true, dtype});
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    set_autocast_state(device_, before_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  c10::DeviceType device_;
  AutocastState before_;
};

// Turns autocast off in its scope, on CPU and CUDA (and back to the previous state after): what
// must stay fp32 inside an autocast region, such as the prior's logits (SPEC §3).
class AutocastOff {
 public:
  AutocastOff() : cpu_(autocast_state(c10::DeviceType::CPU)), cuda_(autocast_state(c10::DeviceType::CUDA)) {
    set_autocast_state(c10::DeviceType::CPU, {false, cpu_.dtype});
    set_autocast_state(c10::DeviceType::CUDA, {false, cuda_.dtype});
  }
  ~AutocastOff() {
    set_autocast_state(c10::DeviceType::CPU, cpu_);
    set_autocast_state(c10::DeviceType::CUDA, cuda_);
  }
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  AutocastState cpu_, cuda_;
};

}  // namespace dalle

// Training precision by name, shared by the trainers. The 16-bit modes train with per-resblock
// gradient scaling (train/grad_scaling.h); fp16 is real on CUDA (autocast: fp16 products and
// activations inside the blocks) and emulated on CPUs (train/resblock_runner.h).
#pragma once
#include <initializer_list>
#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "dalle/util/error.h"

namespace dalle {

enum class Precision { fp32, bf16, fp16 };

inline const char* precision_name(Precision p) {
  return p == Precision::fp32 ? "fp32" : p == Precision::bf16 ? "bf16" : "fp16";
}

inline Precision precision_from_name(const std::string& name) {
  std::string choices;
  for (Precision p : {Precision::fp32, Precision::bf16, Precision::fp16}) {
    if (name == precision_name(p)) return p;
    choices += std::string(choices.empty() ? "" : ", ") + precision_name(p);
  }
  throw Error("unknown precision '" + name + "' (" + choices + ")");
}

// How a trainer runs a precision on a device: under autocast in `dtype` (bf16 anywhere, fp16 on
// CUDA), or in fp32 with fp16 rounding around each block (fp16 on CPUs, `emulate_fp16`).
struct PrecisionPlan {
  bool autocast = false;
  at::ScalarType dtype = at::kFloat;  // what autocast computes products in
  bool emulate_fp16 = false;
};

inline PrecisionPlan precision_plan(Precision p, const c10::Device& device) {
  if (p == Precision::bf16) return {true, at::kBFloat16, false};
  if (p == Precision::fp16 && device.is_cuda()) return {true, at::kHalf, false};
  if (p == Precision::fp16) return {false, at::kFloat, true};
  return {};
}

// --weights16, the paper's memory scheme: `command`'s resblock weights stored in the plan's 16-bit
// type. Refused where there is no 16-bit type to store (fp32, fp16 emulated on a CPU) and in
// data-parallel runs, whose gradient buckets are fp32.
inline void check_weights16(const std::string& command, const PrecisionPlan& plan, bool data_parallel) {
  if (!plan.autocast)
    throw Error(command + ": --weights16 stores resblock weights in 16 bits: it needs --precision bf16, or fp16 on CUDA");
  if (data_parallel)
    throw Error(command + ": --weights16 is not supported in data-parallel runs yet (the gradient buckets are fp32)");
}

}  // namespace dalle

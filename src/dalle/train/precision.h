// Training precision by name, shared by both trainers. The 16-bit modes train with per-resblock
// gradient scaling (train/grad_scaling.h); fp16 is emulated on CPUs (train/resblock_runner.h).
#pragma once
#include <initializer_list>
#include <string>

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

}  // namespace dalle

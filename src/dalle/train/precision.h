// Training precision by name, shared by both trainers (and later fp16 with gradient scaling).
#pragma once
#include <string>

#include "dalle/util/error.h"

namespace dalle {

enum class Precision { fp32, bf16 };

inline Precision precision_from_name(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw Error("unknown precision '" + name + "' (fp32 or bf16)");
}

}  // namespace dalle

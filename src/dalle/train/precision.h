// Training precision by name, shared by both trainers. fp16 needs per-resblock gradient
// scaling (train/grad_scaling.h), which only the prior's trainer has so far.
#pragma once
#include <initializer_list>
#include <string>

#include "dalle/util/error.h"

namespace dalle {

enum class Precision { fp32, bf16, fp16 };

inline const char* precision_name(Precision p) {
  return p == Precision::fp32 ? "fp32" : p == Precision::bf16 ? "bf16" : "fp16";
}

// `supported`: what the caller can train in; anything else is an error naming the choices.
inline Precision precision_from_name(const std::string& name,
                                     std::initializer_list<Precision> supported = {Precision::fp32,
                                                                                   Precision::bf16}) {
  std::string choices;
  for (Precision p : supported) {
    if (name == precision_name(p)) return p;
    choices += std::string(choices.empty() ? "" : ", ") + precision_name(p);
  }
  throw Error("unsupported precision '" + name + "' here (" + choices + ")");
}

}  // namespace dalle

// A bf16 matrix product through oneDNN's matmul primitive, for the fast decoder's batches (a
// pool of candidates, a prefill): y = x W^T + b with bf16 weights and activations and fp32
// output, the epilogue (GELU, or adding into y: the residual stream) fused into the primitive.
// On CPUs with AMX or AVX512-BF16 this runs the tile or dot-product instructions with one call
// per layer, where libtorch's path costs four operations and their allocations. Built only where
// oneDNN's headers were found (CMake option DALLE_ONEDNN); `available()` says so.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "dalle/prior/packed_linear.h"

namespace dalle {

class OnednnMatmul {
 public:
  static bool available();
  // weight: [out, in] bfloat16 bit patterns, bias: [out] fp32; both copied.
  OnednnMatmul(const uint16_t* weight, const float* bias, int64_t in, int64_t out);
  ~OnednnMatmul();
  // x [rows, in] fp32 (rounded to bf16 here), y [rows, out] fp32.
  void run(const float* x, int64_t rows, float* y, Epilogue epilogue);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dalle

// A matrix product on AMX tiles for the fast decoder's batches (a pool of candidates, a
// prefill): y = (x W^T) * scale + b with bf16 weights, or symmetric per-output-channel int8
// weights (packed_linear.h) and their scales; the activations rounded to bf16, fp32 sums. int8
// tiles are widened to bf16 (exact: |q| <= 127 fits bf16's 8-bit significand) just before the
// tile multiply, so an int8 batch step reads half the bytes of a bf16 one and equals a bf16
// product on the dequantized weights up to summation order; oneDNN 2.6 has no matmul for int8
// weights with bf16 activations. For bf16 it also beats oneDNN's matmul and the panel kernel
// at every row count up to 64 (bench_linear). `available()` says whether the CPU and the OS
// allow AMX.
#pragma once
#include <cstdint>
#include <vector>

#include "dalle/prior/packed_linear.h"

namespace dalle {

class AmxMatmul {
 public:
  // True on x86-64 CPUs with AMX-BF16 once Linux has granted this process the tile state.
  static bool available();
  // int8: q [out, in], scale and bias [out] fp32. bf16: weight [out, in] bit patterns, bias
  // [out]. Both copied into the tile layout.
  AmxMatmul(const int8_t* q, const float* scale, const float* bias, int64_t in, int64_t out);
  AmxMatmul(const uint16_t* weight, const float* bias, int64_t in, int64_t out);
  // x [rows, in] fp32 (rounded to bf16 here), y [rows, out] fp32. One call at a time per
  // object: the rounded activations share one buffer (as in OnednnMatmul).
  void run(const float* x, int64_t rows, float* y, Epilogue epilogue) const;

 private:
  AmxMatmul(int64_t in, int64_t out, const float* scale, const float* bias);
  template <class T>
  std::vector<T> to_tiles(const T* w) const;

  int64_t in_, out_;
  int64_t k_blocks_, n_blocks_;  // of 32 inputs and 16 outputs, zero-padded
  // Per block of 16 outputs, its k_blocks_ weight tiles of 16 pairs of inputs x 16 outputs x 2,
  // the pair order the tile multiply reads ("VNNI"). One of the two holds the weights.
  std::vector<int8_t> tiles8_;
  std::vector<uint16_t> tiles16_;
  std::vector<float> scale_, bias_;  // padded to whole blocks
  mutable std::vector<uint16_t> x16_;  // activations in bf16, rows padded to 16, inputs to 32
};

}  // namespace dalle

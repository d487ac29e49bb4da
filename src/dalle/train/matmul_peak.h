// The matrix-product rate of this machine, measured: what MFU is reported against.
#pragma once
#include <torch/types.h>

namespace dalle {

// FLOP/s of square matmuls of side `n` in `dtype` (fp32, or bf16 through oneDNN on CPU).
double matmul_peak_flops(torch::ScalarType dtype = torch::kFloat32, int64_t n = 1024);

}  // namespace dalle

// The matrix-product rate of this machine, measured: what MFU is reported against.
#pragma once
#include <c10/core/Device.h>
#include <torch/types.h>

namespace dalle {

// FLOP/s of square matmuls of side `n` in `dtype` on `device` (fp32, or bf16 through oneDNN on
// CPU; on CUDA also fp16, and fp32 on TF32 tensor cores where allow_tf32 was called). GPUs are
// measured at side 8192 at least, where their tensor cores run near full rate.
double matmul_peak_flops(torch::ScalarType dtype = torch::kFloat32, int64_t n = 1024,
                         const c10::Device& device = c10::Device(c10::kCPU));

}  // namespace dalle

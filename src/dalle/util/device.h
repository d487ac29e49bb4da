// Where tensors live: "cpu" (the default everywhere), "cuda[:N]" when libtorch was built with
// CUDA and a GPU is present, or "auto" (the first GPU when there is one, else the CPU). Seeded
// generators are per device: the CPU gets its own generator per call, a GPU reuses its default
// generator, reseeded, so a step's noise depends only on its seed on either device (and resumed
// runs draw the same noise).
#pragma once
#include <cstdint>
#include <string>

#include <c10/core/Device.h>
#include <ATen/core/Generator.h>

namespace dalle {

// Parses "cpu", "cuda", "cuda:N" or "auto"; throws an Error naming the problem (no CUDA in this
// build, no such GPU, a malformed name).
c10::Device device_from_name(const std::string& name);

// The device of one process of a data-parallel run: "cuda" (or "auto" with a GPU) is the GPU of
// its local rank (torchrun's LOCAL_RANK, Slurm's SLURM_LOCALID), one GPU per process as with
// PyTorch's DDP; "cuda:N" and "cpu" are taken as given.
c10::Device device_for_local_rank(const std::string& name, int local_rank);

// Lets fp32 matmuls and convolutions on CUDA use TF32 tensor cores (10-bit mantissa products,
// fp32 accumulation), for the rest of the process (--tf32). Without it PyTorch's defaults hold:
// TF32 convolutions, fp32 matmuls.
void allow_tf32();

// A generator for `device` seeded with `seed`. For CUDA it is the device's default generator: use
// it before the next call.
at::Generator seeded_generator(const c10::Device& device, uint64_t seed);

}  // namespace dalle

// Where tensors live: "cpu" (the default everywhere) or "cuda[:N]" when libtorch was built with
// CUDA and a GPU is present. Seeded generators are per device: the CPU gets its own generator per
// call, a GPU reuses its default generator, reseeded, so a step's noise depends only on its seed
// on either device (and resumed runs draw the same noise).
#pragma once
#include <cstdint>
#include <string>

#include <c10/core/Device.h>
#include <ATen/core/Generator.h>

namespace dalle {

// Parses "cpu", "cuda" or "cuda:N"; throws an Error naming the problem (no CUDA in this build, no
// such GPU, a malformed name).
c10::Device device_from_name(const std::string& name);

// A generator for `device` seeded with `seed`. For CUDA it is the device's default generator: use
// it before the next call.
at::Generator seeded_generator(const c10::Device& device, uint64_t seed);

}  // namespace dalle

#include "dalle/util/device.h"

#include "dalle/util/torch_api.h"

#include <mutex>

#include <ATen/Context.h>
#include <torch/cuda.h>

#include "dalle/util/error.h"

namespace dalle {

c10::Device device_from_name(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "auto") return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (name.rfind("cuda", 0) != 0)
    throw Error("--device '" + name + "': expected cpu, cuda, cuda:N or auto");
  int index = 0;
  if (name.size() > 4) {
    const std::string digits = name.substr(name.size() > 5 && name[4] == ':' ? 5 : name.size());
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
      throw Error("--device '" + name + "': expected cpu, cuda, cuda:N or auto");
    index = std::stoi(digits);
  }
  if (!torch::cuda::is_available())
    throw Error("--device " + name + ": this build of libtorch has no CUDA or no GPU is visible "
                "(build against a CUDA libtorch, see README)");
  const int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count)
    throw Error("--device " + name + ": only " + std::to_string(count) + " GPU(s) visible");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

c10::Device device_for_local_rank(const std::string& name, int local_rank) {
  const c10::Device device = device_from_name(name);
  if (!device.is_cuda() || (name != "cuda" && name != "auto")) return device;
  const int count = static_cast<int>(torch::cuda::device_count());
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank % count));
}

void allow_tf32() {
  at::globalContext().setAllowTF32CuBLAS(true);
  at::globalContext().setAllowTF32CuDNN(true);
}

at::Generator seeded_generator(const c10::Device& device, uint64_t seed) {
  if (device.is_cpu()) return make_cpu_generator(seed);
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seed);
  return gen;
}

}  // namespace dalle

#include "dalle/util/build_info.h"

#include <dlfcn.h>
#include <link.h>

#include <torch/cuda.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "dalle/dist/process_group.h"
#include "dalle/util/cuda_graph.h"
#include "dalle/util/torch_api.h"

namespace dalle {

namespace {

// Paths (symlinks resolved) of the loaded shared objects whose name mentions BLAS.
std::string loaded_blas_libraries() {
  std::set<std::string> found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        const std::string name = info->dlpi_name ? info->dlpi_name : "";
        if (name.find("blas") != std::string::npos || name.find("mkl") != std::string::npos) {
          char resolved[PATH_MAX];
          static_cast<std::set<std::string>*>(out)->insert(realpath(name.c_str(), resolved) ? resolved : name);
        }
        return 0;
      },
      &found);
  std::string out;
  for (const std::string& path : found) out += (out.empty() ? "" : ", ") + path;
  return out.empty() ? "none loaded" : out;
}

// OpenBLAS describes itself (version, target, threading) when it is the BLAS in use.
std::string openblas_description() {
  using ConfigFn = char* (*)();
  using ParallelFn = int (*)();
  const auto config = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  if (!config) return "";
  std::string out = config();
  if (const auto parallel = reinterpret_cast<ParallelFn>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"))) {
    const int mode = parallel();
    out += mode == 2 ? " (OpenMP)" : mode == 1 ? " (pthreads)" : " (single-threaded)";
  }
  return out;
}

// The CPU's model name and the flags that matter here, from /proc/cpuinfo (Linux).
std::string cpu_description() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model, flags;
  while (std::getline(in, line) && (model.empty() || flags.empty())) {
    auto value = [&] { return line.substr(line.find(':') + 2); };
    if (model.empty() && line.rfind("model name", 0) == 0) model = value();
    if (flags.empty() && line.rfind("flags", 0) == 0) flags = " " + value() + " ";
  }
  std::string out = model.empty() ? "unknown CPU" : model;
  for (const auto& [flag, label] : {std::pair<const char*, const char*>{"avx2", "AVX2"},
                                    {"avx512f", "AVX512F"},
                                    {"avx512_bf16", "AVX512-BF16"},
                                    {"amx_bf16", "AMX-BF16"}})
    out += std::string("; ") + label + (flags.find(std::string(" ") + flag + " ") != std::string::npos ? " yes" : " no");
  return out;
}

}  // namespace

std::string build_info() {
  std::ostringstream out;
  out << "dalle.cpp " << DALLE_VERSION << "\n";
  out << "libtorch " << TORCH_VERSION << "\n";
  const std::string openblas = openblas_description();
  out << "BLAS: " << loaded_blas_libraries() << (openblas.empty() ? "" : " [" + openblas + "]") << "\n";
  out << "CPU: " << cpu_description() << "; " << std::thread::hardware_concurrency() << " hardware threads\n";
  if (torch::cuda::is_available())
    out << "CUDA: available, " << torch::cuda::device_count() << " device(s)\n";
  else
    out << "CUDA: not available (" << (at::hasCUDA() ? "no usable GPU" : "a CPU-only libtorch") << ")\n";
  out << "data parallel: Gloo" << (nccl_built() ? ", NCCL" : " (no NCCL in this build)") << "\n";
  out << "CUDA graphs: " << (cuda_graphs_built() ? "built" : "not in this build") << "\n";
  return out.str();
}

}  // namespace dalle

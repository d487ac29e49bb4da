// Compiled only where CMake found that it builds against this libtorch (DALLE_HAVE_CUDA_GRAPHS):
// a CUDA libtorch, and the CUDA runtime headers its ATen/cuda/CUDAGraph.h includes.
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/cuda.h>

#include <memory>

#include "dalle/util/cuda_graph.h"

namespace dalle {

bool cuda_graphs_built() { return true; }

std::function<void()> capture_cuda_graph(const c10::Device& device, const std::function<void()>& body,
                                         std::string* why) {
  try {
    const c10::cuda::CUDAGuard on_device(device.index());
    torch::cuda::synchronize(device.index());
    // Graphs are captured on a stream of their own, never the default one.
    const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device.index());
    const c10::cuda::CUDAStreamGuard on_side(side);
    auto graph = std::make_shared<at::cuda::CUDAGraph>();
    body();  // warm-up on the capture stream (cuBLAS workspaces, lazily made kernels)
    side.synchronize();
    graph->capture_begin();
    try {
      body();
    } catch (...) {
      try {
        graph->capture_end();  // still on the capture stream: takes it out of capture mode
      } catch (...) {
      }
      throw;
    }
    graph->capture_end();
    torch::cuda::synchronize(device.index());
    return [graph] { graph->replay(); };
  } catch (const std::exception& e) {
    if (why) {
      const std::string what = e.what();
      *why = what.substr(0, what.find('\n'));
    }
    return {};
  }
}

}  // namespace dalle

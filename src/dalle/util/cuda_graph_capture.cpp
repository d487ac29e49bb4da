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

std::function<void()> capture_cuda_graph(const std::function<void()>& body, std::string* why) {
  auto graph = std::make_shared<at::cuda::CUDAGraph>();
  bool capturing = false;
  try {
    // Graphs are captured on a stream of their own, never the default one.
    const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
    torch::cuda::synchronize();
    {
      c10::cuda::CUDAStreamGuard guard(side);
      body();
      side.synchronize();
      graph->capture_begin();
      capturing = true;
      body();
      capturing = false;
      graph->capture_end();
    }
    torch::cuda::synchronize();
    return [graph] { graph->replay(); };
  } catch (const std::exception& e) {
    if (capturing) {
      try {
        graph->capture_end();  // leaves the stream out of capture mode
      } catch (...) {
      }
    }
    if (why) {
      const std::string what = e.what();
      *why = what.substr(0, what.find('\n'));
    }
    return {};
  }
}

}  // namespace dalle

#include "dalle/util/cuda_graph.h"

namespace dalle {

#ifndef DALLE_HAVE_CUDA_GRAPHS
bool cuda_graphs_built() { return false; }

std::function<void()> capture_cuda_graph(const c10::Device&, const std::function<void()>&, std::string* why) {
  if (why)
    *why = "this build has no CUDA graphs (a CPU libtorch, or CUDA's headers were not found when it was configured)";
  return {};
}
#endif

}  // namespace dalle

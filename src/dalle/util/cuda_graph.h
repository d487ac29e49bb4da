// CUDA graphs: a step of device work recorded once and replayed with one launch, instead of
// one launch (and one trip through libtorch's dispatcher) per kernel. Built where
// cmake/cuda_sources.cmake finds that src/dalle/util/cuda_graph_capture.cpp builds against this
// libtorch; elsewhere capture_cuda_graph() returns nothing and callers run their step eagerly.
#pragma once
#include <c10/core/Device.h>

#include <functional>
#include <string>

namespace dalle {

bool cuda_graphs_built();

// Captures `body` into a CUDA graph on `device` (a GPU) and returns what replays it (on that
// GPU's current stream). `body` must be device work only, idempotent and free of host state changes
// and host syncs: it runs once on a side stream to warm up (cuBLAS workspaces, lazy kernels),
// then is recorded; its tensors must stay alive and in place while the graph is replayed. Returns
// an empty function, with the reason in `why`, where graphs are not built or the capture fails.
std::function<void()> capture_cuda_graph(const c10::Device& device, const std::function<void()>& body,
                                         std::string* why = nullptr);

}  // namespace dalle

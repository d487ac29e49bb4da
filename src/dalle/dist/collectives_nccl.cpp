// Compiled only where CMake found that it builds against this libtorch (DALLE_HAVE_NCCL): a CUDA
// libtorch with NCCL, and the CUDA and NCCL headers its ProcessGroupNCCL.hpp includes.
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <cstdlib>

#include "dalle/dist/collectives.h"

namespace dalle {

bool nccl_built() { return true; }

std::unique_ptr<Collectives> nccl_collectives(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                              std::chrono::milliseconds timeout, const c10::Device& device) {
  // Blocking waits make a collective that times out (a rank died) throw in wait(), which names the
  // rank and the timeout, instead of the watchdog aborting the process. A user's setting wins.
  setenv("TORCH_NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
  setenv("NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);  // its name before PyTorch 2.2
  // Communicators, streams and the allocator of this rank on its own GPU, not on GPU 0.
  c10::cuda::set_device(device.index());
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return std::make_unique<C10dCollectives<c10d::ProcessGroupNCCL>>(
      c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, options), timeout, device);
}

}  // namespace dalle

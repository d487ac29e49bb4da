#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <cstdlib>

#include "dalle/dist/collectives.h"
#include "dalle/util/error.h"

namespace dalle {

std::unique_ptr<Collectives> gloo_collectives(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                              std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  options->devices.push_back(ifname && *ifname ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                                               : c10d::ProcessGroupGloo::createDefaultDevice());
  options->threads = 2;
  return std::make_unique<C10dCollectives<c10d::ProcessGroupGloo>>(
      c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options), timeout);
}

#ifndef DALLE_HAVE_NCCL
bool nccl_built() { return false; }

std::unique_ptr<Collectives> nccl_collectives(const c10::intrusive_ptr<c10d::Store>&, int, int, std::chrono::milliseconds,
                                              const c10::Device&) {
  throw Error("this build has no NCCL (a CPU libtorch, or a CUDA libtorch whose NCCL headers were not found when "
              "it was configured); use --dist-backend gloo");
}
#endif

}  // namespace dalle

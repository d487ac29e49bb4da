// The process group a distributed run communicates through: PyTorch's own c10d (a TCPStore for
// the rendezvous; ProcessGroupGloo, or ProcessGroupNCCL for GPUs), never a transport of our own. Every failure
// (master unreachable, a collective that times out, a rank that died) surfaces as one DistError
// naming this rank and what went wrong, so no rank hangs past the timeout and each exits non-zero.
#pragma once
#include <c10/core/Device.h>
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dalle/dist/launch.h"
#include "dalle/util/error.h"

namespace dalle {

class DistError : public Error {
 public:
  using Error::Error;
};

enum class DistBackend { gloo, nccl };
const char* dist_backend_name(DistBackend backend);
// Whether this build has NCCL: a CUDA libtorch with it, and its headers found at configure time.
bool nccl_built();
// --dist-backend: "gloo", "nccl" (GPU tensors only, where nccl_built()), or "auto": NCCL when the
// ranks train on GPUs and this build has it, else Gloo (which also carries GPU tensors, through
// host copies). Throws an Error naming what is missing.
DistBackend dist_backend_for(const std::string& choice, const c10::Device& device);

class DistGroup {
 public:
  // Joins the run `launch` describes; every rank blocks here until all have joined or `timeout`
  // has passed. `timeout` also bounds every later collective. NCCL runs on `device`, this rank's
  // GPU; Gloo takes tensors wherever they are.
  static std::shared_ptr<DistGroup> join(const DistLaunch& launch, std::chrono::milliseconds timeout,
                                         DistBackend backend = DistBackend::gloo,
                                         const c10::Device& device = c10::Device(c10::kCPU));
  ~DistGroup();

  int rank() const { return launch_.rank; }
  int world() const { return launch_.world_size; }
  bool is_main() const { return launch_.rank == 0; }
  DistBackend backend() const { return backend_kind_; }
  const DistLaunch& launch() const { return launch_; }

  // A collective in flight; wait() returns when its result is in the tensor(s).
  class Pending {
   public:
    Pending() = default;
    void wait();

   private:
    friend class DistGroup;
    std::function<void()> wait_;
  };

  // Sums `tensor` over all ranks, in place (contiguous, fp32/fp16/fp64/int).
  Pending allreduce_sum_async(torch::Tensor tensor);
  void allreduce_sum(torch::Tensor tensor) { allreduce_sum_async(std::move(tensor)).wait(); }
  // Each element becomes the maximum over all ranks.
  void allreduce_max(torch::Tensor tensor);
  // Every rank's `tensor` becomes `root`'s.
  void broadcast(torch::Tensor tensor, int root);
  void barrier();

  // Bytes this rank has sent in collectives since the last call (ring estimates: 2(N-1)/N of an
  // all-reduce's payload, (N-1)/N of a broadcast's), then starts counting again.
  double take_bytes_sent();

 private:
  struct Backend;  // the c10d store and collectives (process_group.cpp)
  DistGroup();
  [[noreturn]] void fail(const std::string& what, const std::exception& e) const;
  Pending start(const char* what, const std::function<std::function<void()>()>& start);

  DistLaunch launch_;
  std::chrono::milliseconds timeout_{0};
  std::unique_ptr<Backend> backend_;
  DistBackend backend_kind_ = DistBackend::gloo;
  double bytes_sent_ = 0;
};

// The group for this process: joins one when the environment names a distributed run (see
// dist/launch.h), else nullptr (a single process). `timeout_seconds` bounds joining and every
// collective; `backend` is --dist-backend and `device` the trainer's --device (cuda means the
// local rank's GPU).
std::shared_ptr<DistGroup> dist_join_from_env(double timeout_seconds, const std::string& backend = "auto",
                                              const std::string& device = "cpu");

}  // namespace dalle

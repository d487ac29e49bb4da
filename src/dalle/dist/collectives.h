// The collectives a DistGroup runs, on one of c10d's backends: Gloo (CPU tensors; CUDA tensors
// through host copies) or NCCL (GPU to GPU, in CUDA builds whose libtorch has it). Each call
// starts its collective and returns what waits for it; waiting throws when a rank died or the
// timeout passed.
#pragma once
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dalle/dist/process_group.h"  // nccl_built()

namespace dalle {

class Collectives {
 public:
  virtual ~Collectives() = default;
  // Sums (or takes the maximum of) `tensor` over all ranks, in place.
  virtual std::function<void()> allreduce(torch::Tensor tensor, bool max) = 0;
  // Every rank's `tensor` becomes `root`'s.
  virtual std::function<void()> broadcast(torch::Tensor tensor, int root) = 0;
  virtual std::function<void()> barrier() = 0;
};

// The same calls on ProcessGroupGloo and ProcessGroupNCCL (a ProcessGroup in libtorch 1.13, a
// Backend in 2.x: held by its own type, the calls are the same). With `device` set, tensors that
// live elsewhere travel through a copy on it (NCCL reaches GPU memory only).
template <class Group>
class C10dCollectives : public Collectives {
 public:
  C10dCollectives(c10::intrusive_ptr<Group> group, std::chrono::milliseconds timeout,
                  std::optional<c10::Device> device = std::nullopt)
      : group_(std::move(group)), timeout_(timeout), device_(device) {}

  std::function<void()> allreduce(torch::Tensor tensor, bool max) override {
    c10d::AllreduceOptions opts;
    if (max) opts.reduceOp = c10d::ReduceOp::MAX;
    return run(std::move(tensor), [&](std::vector<torch::Tensor>& t) { return group_->allreduce(t, opts); });
  }

  std::function<void()> broadcast(torch::Tensor tensor, int root) override {
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    return run(std::move(tensor), [&](std::vector<torch::Tensor>& t) { return group_->broadcast(t, opts); });
  }

  std::function<void()> barrier() override {
    // A one-element all-reduce where tensors live: NCCL's own barrier guesses the GPU.
    if (device_) return allreduce(torch::zeros({1}, torch::TensorOptions().device(*device_)), false);
    auto work = group_->barrier();
    return [work, timeout = timeout_] { work->wait(timeout); };
  }

 private:
  template <class Start>
  std::function<void()> run(torch::Tensor tensor, const Start& start) {
    const bool staged = device_ && tensor.device() != *device_;
    std::vector<torch::Tensor> tensors{staged ? tensor.to(*device_) : tensor};
    auto work = start(tensors);
    return [work, timeout = timeout_, staged, tensor, on_device = tensors[0]]() mutable {
      work->wait(timeout);
      if (staged) tensor.copy_(on_device);
    };
  }

  c10::intrusive_ptr<Group> group_;
  std::chrono::milliseconds timeout_;
  std::optional<c10::Device> device_;
};

// Gloo over the network device GLOO_SOCKET_IFNAME names (as in PyTorch), else the host's address.
std::unique_ptr<Collectives> gloo_collectives(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                              std::chrono::milliseconds timeout);
// NCCL on `device` (this rank's GPU). Only in builds where nccl_built(); throws otherwise.
std::unique_ptr<Collectives> nccl_collectives(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                              std::chrono::milliseconds timeout, const c10::Device& device);

}  // namespace dalle

#include "dalle/dist/process_group.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cmath>
#include <cstdlib>

#include "dalle/dist/collectives.h"
#include "dalle/dist/compressible.h"
#include "dalle/util/device.h"

namespace dalle {

namespace {

// The first line of a libtorch message (c10::Error appends a C++ stack trace).
std::string first_line(const char* what) {
  std::string s(what);
  const size_t end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}

}  // namespace

const char* dist_backend_name(DistBackend backend) { return backend == DistBackend::nccl ? "nccl" : "gloo"; }

DistBackend dist_backend_for(const std::string& choice, const c10::Device& device) {
  if (choice == "gloo") return DistBackend::gloo;
  if (choice == "nccl") {
    if (!nccl_built()) throw Error("--dist-backend nccl: this build has no NCCL; use gloo");
    if (!device.is_cuda()) throw Error("--dist-backend nccl moves GPU tensors only: it needs --device cuda (or auto on a GPU machine)");
    return DistBackend::nccl;
  }
  if (choice != "auto") throw Error("unknown --dist-backend '" + choice + "' (auto, gloo, nccl)");
  return device.is_cuda() && nccl_built() ? DistBackend::nccl : DistBackend::gloo;
}

struct DistGroup::Backend {
  c10::intrusive_ptr<c10d::Store> store;
  std::unique_ptr<Collectives> collectives;
};

DistGroup::DistGroup() : backend_(std::make_unique<Backend>()) {}

void DistGroup::Pending::wait() {
  if (wait_) {
    auto w = std::move(wait_);
    wait_ = nullptr;
    w();
  }
}

std::shared_ptr<DistGroup> DistGroup::join(const DistLaunch& launch, std::chrono::milliseconds timeout,
                                           DistBackend backend, const c10::Device& device) {
  std::shared_ptr<DistGroup> g(new DistGroup());
  g->launch_ = launch;
  g->timeout_ = timeout;
  g->backend_kind_ = backend;
  const std::string where = launch.master_addr + ":" + std::to_string(launch.master_port);
  try {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<uint16_t>(launch.master_port);
    // Under torchrun's agent store the agent is the server; otherwise rank 0 hosts it.
    opts.isServer = !launch.agent_store && launch.rank == 0;
    if (!launch.agent_store) opts.numWorkers = static_cast<std::size_t>(launch.world_size);  // else unset
    opts.waitWorkers = false;
    opts.timeout = timeout;
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(launch.master_addr, opts);
    if (!launch.store_prefix().empty()) store = c10::make_intrusive<c10d::PrefixStore>(launch.store_prefix(), store);
    g->backend_->store = store;
  } catch (const std::exception& e) {
    throw DistError("rank " + std::to_string(launch.rank) + " of " + std::to_string(launch.world_size) +
                    ": cannot reach the master store at " + where + " within " +
                    std::to_string(timeout.count() / 1000) + " s (" + first_line(e.what()) +
                    "); is rank 0 (or torchrun) running and MASTER_ADDR/MASTER_PORT right?");
  }
  try {
    g->backend_->collectives = backend == DistBackend::nccl
                                   ? nccl_collectives(g->backend_->store, launch.rank, launch.world_size, timeout, device)
                                   : gloo_collectives(g->backend_->store, launch.rank, launch.world_size, timeout);
  } catch (const std::exception& e) {
    throw DistError("rank " + std::to_string(launch.rank) + " of " + std::to_string(launch.world_size) +
                    ": could not connect to all ranks (" + dist_backend_name(backend) + ") through " + where +
                    " within " + std::to_string(timeout.count() / 1000) + " s: " + first_line(e.what()));
  }
  return g;
}

DistGroup::~DistGroup() = default;

void DistGroup::fail(const std::string& what, const std::exception& e) const {
  throw DistError("rank " + std::to_string(rank()) + " of " + std::to_string(world()) + ": " + what +
                  " failed (another rank died or stopped answering, or the " +
                  std::to_string(timeout_.count() / 1000) + " s timeout passed): " + first_line(e.what()));
}

// Starts a collective through `start`; the Pending (or, for blocking calls, this call) waits for it.
// Every failure becomes one DistError naming this rank and the collective.
DistGroup::Pending DistGroup::start(const char* what, const std::function<std::function<void()>()>& start) {
  Pending p;
  std::function<void()> wait;
  try {
    wait = start();
  } catch (const std::exception& e) {
    fail(what, e);
  }
  p.wait_ = [this, what, wait = std::move(wait)] {
    try {
      wait();
    } catch (const std::exception& e) {
      fail(what, e);
    }
  };
  return p;
}

DistGroup::Pending DistGroup::allreduce_sum_async(torch::Tensor tensor) {
  bytes_sent_ += ring_allreduce_bytes_sent(static_cast<double>(tensor.nbytes()), world());
  return start("all-reduce", [&] { return backend_->collectives->allreduce(tensor, false); });
}

void DistGroup::allreduce_max(torch::Tensor tensor) {
  bytes_sent_ += ring_allreduce_bytes_sent(static_cast<double>(tensor.nbytes()), world());
  start("all-reduce (max)", [&] { return backend_->collectives->allreduce(tensor, true); }).wait();
}

void DistGroup::broadcast(torch::Tensor tensor, int root) {
  if (rank() == root) bytes_sent_ += static_cast<double>(tensor.nbytes()) * (world() - 1) / world();
  start("broadcast", [&] { return backend_->collectives->broadcast(tensor, root); }).wait();
}

void DistGroup::barrier() {
  start("barrier", [&] { return backend_->collectives->barrier(); }).wait();
}

double DistGroup::take_bytes_sent() {
  const double b = bytes_sent_;
  bytes_sent_ = 0;
  return b;
}

std::shared_ptr<DistGroup> dist_join_from_env(double timeout_seconds, const std::string& backend,
                                              const std::string& device) {
  const std::optional<DistLaunch> launch = dist_launch_from_env();
  if (!launch) return nullptr;
  const c10::Device where = device_for_local_rank(device, launch->local_rank);
  return DistGroup::join(*launch, std::chrono::milliseconds(static_cast<int64_t>(std::llround(timeout_seconds * 1000))),
                         dist_backend_for(backend, where), where);
}

}  // namespace dalle

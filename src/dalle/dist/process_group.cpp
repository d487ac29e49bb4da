#include "dalle/dist/process_group.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cmath>
#include <cstdlib>

#include "dalle/dist/compressible.h"

namespace dalle {

namespace {

// The first line of a libtorch message (c10::Error appends a C++ stack trace).
std::string first_line(const char* what) {
  std::string s(what);
  const size_t end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}

// Gloo's network device: GLOO_SOCKET_IFNAME picks an interface, as in PyTorch; otherwise the
// address the host name resolves to, or loopback.
std::shared_ptr<::gloo::transport::Device> gloo_device() {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

// ProcessGroupGloo is a c10d::ProcessGroup in libtorch 1.13 and a c10d::Backend in 2.x; held by
// its own type, the calls below are the same in both.
struct DistGroup::Backend {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
};

DistGroup::DistGroup() : backend_(std::make_unique<Backend>()) {}

void DistGroup::Pending::wait() {
  if (wait_) {
    auto w = std::move(wait_);
    wait_ = nullptr;
    w();
  }
}

std::shared_ptr<DistGroup> DistGroup::join(const DistLaunch& launch, std::chrono::milliseconds timeout) {
  std::shared_ptr<DistGroup> g(new DistGroup());
  g->launch_ = launch;
  g->timeout_ = timeout;
  const std::string where = launch.master_addr + ":" + std::to_string(launch.master_port);
  try {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<uint16_t>(launch.master_port);
    // Under torchrun's agent store the agent is the server; otherwise rank 0 hosts it.
    opts.isServer = !launch.agent_store && launch.rank == 0;
    opts.numWorkers = launch.agent_store ? c10::nullopt : c10::optional<std::size_t>(launch.world_size);
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
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(gloo_device());
    options->threads = 2;
    g->backend_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(g->backend_->store, launch.rank, launch.world_size, options);
  } catch (const std::exception& e) {
    throw DistError("rank " + std::to_string(launch.rank) + " of " + std::to_string(launch.world_size) +
                    ": could not connect to all ranks through " + where + " within " +
                    std::to_string(timeout.count() / 1000) + " s: " + first_line(e.what()));
  }
  return g;
}

DistGroup::~DistGroup() = default;

void DistGroup::fail(const std::string& what, const std::exception& e) const {
  throw DistError("rank " + std::to_string(rank()) + " of " + std::to_string(world()) + ": " + what +
                  " failed (another rank died or stopped answering, or the " +
                  std::to_string(timeout_.count() / 1000) + " s timeout passed): " + first_line(e.what()));
}

DistGroup::Pending DistGroup::allreduce_sum_async(torch::Tensor tensor) {
  bytes_sent_ += ring_allreduce_bytes_sent(static_cast<double>(tensor.nbytes()), world());
  std::vector<torch::Tensor> tensors{tensor};
  Pending p;
  try {
    auto work = backend_->gloo->allreduce(tensors);
    p.wait_ = [this, work] {
      try {
        work->wait(timeout_);
      } catch (const std::exception& e) {
        fail("all-reduce", e);
      }
    };
  } catch (const DistError&) {
    throw;
  } catch (const std::exception& e) {
    fail("all-reduce", e);
  }
  return p;
}

void DistGroup::allreduce_max(torch::Tensor tensor) {
  bytes_sent_ += ring_allreduce_bytes_sent(static_cast<double>(tensor.nbytes()), world());
  std::vector<torch::Tensor> tensors{tensor};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::MAX;
  try {
    backend_->gloo->allreduce(tensors, opts)->wait(timeout_);
  } catch (const std::exception& e) {
    fail("all-reduce (max)", e);
  }
}

void DistGroup::broadcast(torch::Tensor tensor, int root) {
  if (rank() == root) bytes_sent_ += static_cast<double>(tensor.nbytes()) * (world() - 1) / world();
  std::vector<torch::Tensor> tensors{tensor};
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  try {
    backend_->gloo->broadcast(tensors, opts)->wait(timeout_);
  } catch (const std::exception& e) {
    fail("broadcast", e);
  }
}

void DistGroup::barrier() {
  try {
    backend_->gloo->barrier()->wait(timeout_);
  } catch (const std::exception& e) {
    fail("barrier", e);
  }
}

double DistGroup::take_bytes_sent() {
  const double b = bytes_sent_;
  bytes_sent_ = 0;
  return b;
}

std::shared_ptr<DistGroup> dist_join_from_env(double timeout_seconds) {
  const std::optional<DistLaunch> launch = dist_launch_from_env();
  if (!launch) return nullptr;
  return DistGroup::join(*launch, std::chrono::milliseconds(static_cast<int64_t>(std::llround(timeout_seconds * 1000))));
}

}  // namespace dalle

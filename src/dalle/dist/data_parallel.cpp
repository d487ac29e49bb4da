#include "dalle/dist/data_parallel.h"

#include "dalle/util/torch_api.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "dalle/dist/compressible.h"
#include "dalle/util/error.h"

namespace dalle {

namespace {

std::vector<int64_t> shape_of(const torch::Tensor& t) { return t.sizes().vec(); }

// Adds the seconds of its scope to `total`.
class Timed {
 public:
  explicit Timed(double& total) : total_(total), t0_(std::chrono::steady_clock::now()) {}
  ~Timed() { total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  double& total_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace

DataParallel::DataParallel(std::shared_ptr<DistGroup> group, std::vector<std::pair<std::string, torch::Tensor>> named,
                           DataParallelOptions options)
    : group_(std::move(group)), options_(options), named_(std::move(named)) {
  {
    // One start for every replica: rank 0's weights (PyTorch's DDP does the same).
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> flat;
    for (auto& [name, p] : named_) flat.push_back(p.detach().reshape({-1}));
    torch::Tensor all = torch::cat(flat);
    group_->broadcast(all, 0);
    int64_t offset = 0;
    for (auto& [name, p] : named_) {
      p.copy_(all.narrow(0, offset, p.numel()).view(p.sizes()));
      offset += p.numel();
    }
    group_->take_bytes_sent();
  }
  std::vector<torch::Tensor> uncompressed;
  std::vector<std::pair<std::string, torch::Tensor>> matrices;
  for (auto& [name, p] : named_) {
    if (options.powersgd_rank > 0 && powersgd_compresses(name, shape_of(p))) {
      matrices.emplace_back(name, p);
    } else {
      uncompressed.push_back(p);
      uncompressed_bytes_ += static_cast<int64_t>(p.nbytes());
    }
  }
  if (options.powersgd_rank > 0) {
    if (matrices.empty()) throw Error("--powersgd-rank: this model has no resblock weight matrices to compress");
    // Gradients must exist before PowerSGD reads them (the buckets give the others theirs).
    for (auto& [name, p] : matrices)
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    powersgd_ = std::make_unique<PowerSgd>(group_.get(), matrices, PowerSgdOptions{options.powersgd_rank, options.seed});
  }
  buckets_ = std::make_unique<GradBuckets>(*group_, uncompressed);
  // Owners for ZeRO-1: each parameter to the rank holding the fewest elements so far, biggest
  // first, so the shards come out even.
  owner_.assign(named_.size(), group_->rank());
  if (options.shard_optimizer) {
    std::vector<size_t> order(named_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return named_[a].second.numel() > named_[b].second.numel(); });
    std::vector<int64_t> load(static_cast<size_t>(world()), 0);
    for (size_t i : order) {
      const int r = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
      owner_[i] = r;
      load[static_cast<size_t>(r)] += named_[i].second.numel();
    }
  }
}

void DataParallel::zero_grad() {
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : named_)
    if (p.grad().defined()) p.mutable_grad().zero_();
}

void DataParallel::after_backward() {
  Timed timed(comm_seconds_);
  buckets_->finish();
}

double DataParallel::take_comm_seconds() {
  const double s = comm_seconds_;
  comm_seconds_ = 0;
  return s;
}

void DataParallel::sync_after_unscale(std::vector<bool>& overflowed) {
  Timed timed(comm_seconds_);
  if (powersgd_) powersgd_->reduce();
  if (overflowed.empty()) return;
  torch::Tensor flags = torch::zeros({static_cast<int64_t>(overflowed.size())}, torch::kFloat32);
  for (size_t b = 0; b < overflowed.size(); ++b) flags[static_cast<int64_t>(b)] = overflowed[b] ? 1.0f : 0.0f;
  group_->allreduce_max(flags);
  auto a = flags.accessor<float, 1>();
  for (size_t b = 0; b < overflowed.size(); ++b) overflowed[b] = a[static_cast<int64_t>(b)] > 0;
}

std::vector<double> DataParallel::mean(const std::vector<double>& values) {
  Timed timed(comm_seconds_);
  torch::Tensor t = torch::tensor(values, torch::kFloat64);
  group_->allreduce_sum(t);
  t.div_(world());
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

bool DataParallel::owns(const std::string& name) const {
  for (size_t i = 0; i < named_.size(); ++i)
    if (named_[i].first == name) return owner_[i] == group_->rank();
  return true;
}

void DataParallel::gather_updated_parameters() {
  if (!options_.shard_optimizer) return;
  Timed timed(comm_seconds_);
  torch::NoGradGuard no_grad;
  for (int r = 0; r < world(); ++r) {
    std::vector<size_t> mine;
    int64_t numel = 0;
    for (size_t i = 0; i < named_.size(); ++i)
      if (owner_[i] == r) {
        mine.push_back(i);
        numel += named_[i].second.numel();
      }
    if (mine.empty()) continue;
    // Where the parameters are: NCCL reaches GPU memory only.
    torch::Tensor flat = torch::empty({numel}, named_[mine.front()].second.options().dtype(torch::kFloat32));
    int64_t offset = 0;
    if (r == rank())
      for (size_t i : mine) {
        flat.narrow(0, offset, named_[i].second.numel()).copy_(named_[i].second.reshape({-1}));
        offset += named_[i].second.numel();
      }
    group_->broadcast(flat, r);
    offset = 0;
    if (r != rank())
      for (size_t i : mine) {
        torch::Tensor& p = named_[i].second;
        p.copy_(flat.narrow(0, offset, p.numel()).view(p.sizes()));
        offset += p.numel();
      }
  }
}

SafeTensors DataParallel::gather_to_main(const SafeTensors& own, const std::vector<std::string>& prefixes) {
  SafeTensors out;
  if (!options_.shard_optimizer) return out;
  for (int r = 1; r < world(); ++r) {
    std::vector<std::pair<std::string, const torch::Tensor*>> keys;  // name, parameter (for its shape)
    int64_t numel = 0;
    for (size_t i = 0; i < named_.size(); ++i) {
      if (owner_[i] != r) continue;
      for (const std::string& prefix : prefixes) {
        keys.emplace_back(prefix + named_[i].first, &named_[i].second);
        numel += named_[i].second.numel();
      }
    }
    if (keys.empty()) continue;
    torch::Tensor flat = torch::empty({numel}, keys.front().second->options().dtype(torch::kFloat32));
    int64_t offset = 0;
    if (r == rank())
      for (const auto& [key, p] : keys) {
        auto it = own.tensors.find(key);
        if (it == own.tensors.end()) throw Error("sharded optimizer state: '" + key + "' missing on its owner");
        flat.narrow(0, offset, p->numel()).copy_(it->second.reshape({-1}));
        offset += p->numel();
      }
    group_->broadcast(flat, r);
    offset = 0;
    if (is_main())
      for (const auto& [key, p] : keys) {
        out.tensors[key] = flat.narrow(0, offset, p->numel()).view(p->sizes()).clone();
        offset += p->numel();
      }
  }
  return out;
}

std::vector<std::vector<int64_t>> DataParallel::all_gather(const std::vector<int64_t>& mine) {
  const int64_t n = static_cast<int64_t>(mine.size());
  torch::Tensor all = torch::zeros({world(), n}, torch::kInt64);
  for (int64_t i = 0; i < n; ++i) all[rank()][i] = mine[static_cast<size_t>(i)];
  group_->allreduce_sum(all);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(world()));
  auto a = all.accessor<int64_t, 2>();
  for (int r = 0; r < world(); ++r)
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(r)].push_back(a[r][i]);
  return out;
}

void DataParallel::check_replicas_agree() {
  torch::NoGradGuard no_grad;
  // A weighted checksum (so swapped values count too), compared by max and -min over ranks.
  torch::Tensor total = torch::zeros({}, named_.front().second.options().dtype(torch::kFloat64));
  for (auto& [name, p] : named_)
    total += (p.detach().to(torch::kFloat64).reshape({-1}) *
              torch::arange(1, p.numel() + 1, p.options().dtype(torch::kFloat64)).remainder_(7).add_(1))
                 .sum();
  const double sum = total.item<double>();
  torch::Tensor t = torch::tensor({sum, -sum}, torch::kFloat64);
  group_->allreduce_max(t);
  if (t[0].item<double>() != -t[1].item<double>())
    throw DistError("rank " + std::to_string(rank()) + " of " + std::to_string(world()) +
                    ": the replicas' weights differ after training (checksums " + std::to_string(t[0].item<double>()) +
                    " vs " + std::to_string(-t[1].item<double>()) + ")");
}

SafeTensors DataParallel::powersgd_state() {
  SafeTensors out;
  if (!powersgd_) return out;
  SafeTensors own;
  powersgd_->state_into(own);
  // Every rank's buffers, as "powersgd.rank<R>.error.<name>", broadcast one rank at a time.
  for (int r = 0; r < world(); ++r) {
    std::vector<torch::Tensor> parts;
    for (const auto& [key, t] : own.tensors) parts.push_back(t.reshape({-1}));
    torch::Tensor flat = torch::cat(parts);
    group_->broadcast(flat, r);
    int64_t offset = 0;
    for (const auto& [key, t] : own.tensors) {
      if (is_main())
        out.tensors["powersgd.rank" + std::to_string(r) + "." + key.substr(std::string("powersgd.").size())] =
            flat.narrow(0, offset, t.numel()).view(t.sizes()).clone();
      offset += t.numel();
    }
  }
  out.metadata["powersgd_world"] = std::to_string(world());
  return out;
}

void DataParallel::load_powersgd_state(const SafeTensors& checkpoint, const std::string& source) {
  if (!powersgd_) return;
  auto it = checkpoint.metadata.find("powersgd_world");
  if (it == checkpoint.metadata.end())
    throw file_error(source, "has no PowerSGD error buffers (the run was saved without --powersgd-rank)");
  if (std::stoi(it->second) != world())
    throw file_error(source, "PowerSGD error buffers are from " + it->second + " ranks, this run has " +
                                 std::to_string(world()) + " (resume with the same world size)");
  const std::string prefix = "powersgd.rank" + std::to_string(rank()) + ".";
  SafeTensors mine;
  for (const auto& [key, t] : checkpoint.tensors)
    if (key.rfind(prefix, 0) == 0) mine.tensors["powersgd." + key.substr(prefix.size())] = t;
  powersgd_->load_state(mine, source);
}

double DataParallel::powersgd_compression() const {
  if (!powersgd_) return 0;
  const double before = static_cast<double>(uncompressed_bytes_ + powersgd_->uncompressed_payload_bytes());
  const double after = static_cast<double>(uncompressed_bytes_ + powersgd_->compressed_payload_bytes());
  return 1.0 - after / before;
}

Tokenizer tokenizer_from_main(DistGroup* group, const std::string& run_file, const std::function<Tokenizer()>& make) {
  if (!group) return make();
  Tokenizer tokenizer;
  if (group->is_main()) tokenizer = make();
  group->barrier();
  return group->is_main() ? tokenizer : Tokenizer::load(run_file);
}

LoaderPosition resume_position(const nlohmann::json& state, const DistGroup* group, const std::string& command) {
  LoaderPosition position{state.value("data_epoch", int64_t(0)), state.value("data_sample", int64_t(0))};
  const int rank = group ? group->rank() : 0, world = group ? group->world() : 1;
  const nlohmann::json positions = state.value("data_positions", nlohmann::json::array());
  if (static_cast<int>(positions.size()) == world)
    return {positions[rank][0].get<int64_t>(), positions[rank][1].get<int64_t>()};
  if (world == 1 && positions.empty()) return position;  // saved by one process before data_positions existed
  if (rank == 0)
    std::fprintf(stderr, "%s: the checkpoint was saved by %zu rank(s), this run has %d: the data stream restarts epoch %lld\n",
                 command.c_str(), std::max<size_t>(positions.size(), 1), world, static_cast<long long>(position.epoch));
  position.sample = 0;
  return position;
}

}  // namespace dalle

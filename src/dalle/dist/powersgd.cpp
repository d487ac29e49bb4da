#include "dalle/dist/powersgd.h"

#include "dalle/util/torch_api.h"

#include <ATen/ops/linalg_qr.h>

#include "dalle/dist/process_group.h"
#include "dalle/util/error.h"

namespace dalle {

torch::Tensor powersgd_orthonormalize(const torch::Tensor& p) {
  // The 1e-6·I keeps the factorisation well defined when P is rank-deficient (a column of zeros).
  const torch::Tensor shifted = p + 1e-6 * torch::eye(p.size(0), p.size(1), p.options());
  return std::get<0>(at::linalg_qr(shifted, "reduced"));
}

PowerSgd::PowerSgd(DistGroup* group, std::vector<std::pair<std::string, torch::Tensor>> matrices,
                   PowerSgdOptions options)
    : group_(group), options_(options) {
  if (options.rank < 1) throw Error("PowerSGD rank must be at least 1");
  torch::NoGradGuard no_grad;
  // Every rank draws the same Q from the shared seed, matrix by matrix in a fixed order.
  torch::Generator gen = make_cpu_generator(options.seed);
  for (auto& [name, p] : matrices) {
    if (p.dim() != 2) throw Error("PowerSGD compresses matrices; '" + name + "' is not one");
    const int64_t r = std::min({options.rank, p.size(0), p.size(1)});
    // Drawn on the CPU (its generator), so Q is the same whatever device a rank trains on.
    torch::Tensor q = torch::randn({p.size(1), r}, gen, p.options().device(torch::kCPU)).to(p.device());
    slots_.push_back({name, p, torch::zeros_like(p), q});
  }
}

void PowerSgd::average(std::vector<torch::Tensor>& parts) {
  std::vector<torch::Tensor> flat_parts;
  for (const torch::Tensor& t : parts) flat_parts.push_back(t.reshape({-1}));
  torch::Tensor flat = torch::cat(flat_parts).to(options_.wire);
  if (group_) {
    group_->allreduce_sum(flat);
    flat = flat.to(torch::kFloat32).div_(group_->world());
  } else {
    flat = flat.to(torch::kFloat32);
  }
  int64_t offset = 0;
  for (torch::Tensor& t : parts) {
    t = flat.narrow(0, offset, t.numel()).view(t.sizes());
    offset += t.numel();
  }
}

namespace {

// Whether every tensor is finite, read with one host sync (not one per matrix).
bool all_finite(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> f;
  for (const torch::Tensor& t : tensors) f.push_back(t.isfinite().all());
  return torch::stack(f).all().item<bool>();
}

}  // namespace

bool PowerSgd::reduce() {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> e, p;
  for (Slot& s : slots_) {
    e.push_back(s.param.grad() + s.error);
    p.push_back(e.back().mm(s.q));
  }
  average(p);
  bool finite = all_finite(p);
  std::vector<torch::Tensor> q;
  if (finite) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      p[i] = powersgd_orthonormalize(p[i]);
      q.push_back(e[i].t().mm(p[i]));
    }
    average(q);
    finite = all_finite(q);
  }
  if (!finite) {
    for (Slot& s : slots_) s.param.mutable_grad().fill_(NAN);
    return false;
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    const torch::Tensor approx = p[i].mm(q[i].t());
    slots_[i].error.copy_(e[i] - approx);
    slots_[i].param.mutable_grad().copy_(approx);
  }
  return true;
}

int64_t PowerSgd::compressed_payload_bytes() const {
  const int64_t wire = static_cast<int64_t>(c10::elementSize(options_.wire));
  int64_t n = 0;
  for (const Slot& s : slots_) n += (s.param.size(0) + s.param.size(1)) * s.q.size(1);
  return n * wire;
}

int64_t PowerSgd::uncompressed_payload_bytes() const {
  int64_t n = 0;
  for (const Slot& s : slots_) n += s.param.numel();
  return n * 4;
}

void PowerSgd::state_into(SafeTensors& st) const {
  for (const Slot& s : slots_) st.tensors["powersgd.error." + s.name] = s.error;
}

void PowerSgd::load_state(const SafeTensors& st, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (Slot& s : slots_) {
    auto it = st.tensors.find("powersgd.error." + s.name);
    if (it == st.tensors.end() || it->second.sizes() != s.error.sizes())
      throw file_error(source, "PowerSGD error buffer of '" + s.name +
                                   "' is missing or has the wrong shape (was the run started with --powersgd-rank?)");
    s.error.copy_(it->second);
  }
}

}  // namespace dalle

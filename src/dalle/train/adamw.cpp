#include "dalle/train/adamw.h"

#include "dalle/util/torch_api.h"

#include <cmath>

#include "dalle/util/error.h"

namespace dalle {

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions options,
             const std::function<bool(const std::string&)>& decay)
    : options_(options) {
  for (auto& [name, p] : params) {
    // 16-bit weights (--weights16) keep 16-bit moments; fp16 weights' second moment is bf16, as
    // fp16 would flush squared gradients below 6e-8 to zero.
    const torch::ScalarType v_type = p.scalar_type() == torch::kHalf ? torch::kBFloat16 : p.scalar_type();
    slots_.push_back({name, p, torch::zeros_like(p), torch::zeros_like(p, p.options().dtype(v_type)), decay(name)});
  }
}

void AdamW::zero_grad() {
  for (auto& s : slots_)
    if (s.param.grad().defined()) s.param.mutable_grad().zero_();
}

void AdamW::freeze(const std::function<bool(const std::string&)>& frozen) {
  for (auto& s : slots_) s.frozen = s.frozen || frozen(s.name);
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double bc1 = 1.0 - std::pow(options_.beta1, static_cast<double>(steps_));
  const double bc2 = 1.0 - std::pow(options_.beta2, static_cast<double>(steps_));
  for (auto& s : slots_) {
    const torch::Tensor& g = s.param.grad();
    if (!g.defined() || s.frozen) continue;
    // 16-bit weights and moments are updated in fp32 and rounded once at the end.
    const bool wide = s.param.scalar_type() == torch::kFloat32;
    const torch::Tensor g32 = g.to(torch::kFloat32);
    torch::Tensor m = wide ? s.m : s.m.to(torch::kFloat32), v = wide ? s.v : s.v.to(torch::kFloat32);
    torch::Tensor p = wide ? s.param : s.param.to(torch::kFloat32);
    m.mul_(options_.beta1).add_(g32, 1.0 - options_.beta1);
    v.mul_(options_.beta2).addcmul_(g32, g32, 1.0 - options_.beta2);
    if (s.decay && options_.weight_decay > 0) p.mul_(1.0 - lr * options_.weight_decay);
    const torch::Tensor denom = (v / bc2).sqrt_().add_(options_.eps);
    p.addcdiv_(m, denom, -lr / bc1);
    if (!wide) {
      s.m.copy_(m);
      s.v.copy_(v);
      s.param.copy_(p);
    }
  }
}

void AdamW::state_into(SafeTensors& st) const {
  for (const auto& s : slots_) {
    st.tensors["adam.m." + s.name] = s.m;
    st.tensors["adam.v." + s.name] = s.v;
  }
  st.metadata["adam_steps"] = std::to_string(steps_);
}

void AdamW::load_state(const SafeTensors& st, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (auto& s : slots_) {
    for (auto [key, dst] : {std::make_pair("adam.m." + s.name, s.m), std::make_pair("adam.v." + s.name, s.v)}) {
      auto it = st.tensors.find(key);
      if (it == st.tensors.end() || it->second.sizes() != dst.sizes())
        throw file_error(source, "optimizer state '" + key + "' is missing or has the wrong shape");
      dst.copy_(it->second);
    }
  }
  auto it = st.metadata.find("adam_steps");
  if (it == st.metadata.end()) throw file_error(source, "optimizer step count missing");
  steps_ = std::stoll(it->second);
}

}  // namespace dalle

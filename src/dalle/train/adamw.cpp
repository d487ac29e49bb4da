#include "dalle/train/adamw.h"

#include "dalle/util/torch_api.h"

#include <cmath>

#include "dalle/util/error.h"

namespace dalle {

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions options,
             const std::function<bool(const std::string&)>& decay)
    : options_(options) {
  for (auto& [name, p] : params)
    slots_.push_back({name, p, torch::zeros_like(p), torch::zeros_like(p), decay(name)});
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
    s.m.mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
    s.v.mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    if (s.decay && options_.weight_decay > 0) s.param.mul_(1.0 - lr * options_.weight_decay);
    const torch::Tensor denom = (s.v / bc2).sqrt_().add_(options_.eps);
    s.param.addcdiv_(s.m, denom, -lr / bc1);
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

#include "dalle/train/ema.h"

#include "dalle/util/torch_api.h"

#include "dalle/util/error.h"

namespace dalle {

Ema::Ema(const torch::nn::Module& module, const std::function<bool(const std::string&)>& keep) {
  for (const auto& item : module.named_parameters(true)) {
    kept_.push_back(!keep || keep(item.key()));
    if (!kept_.back()) continue;
    names_.push_back(item.key());
    shadow_.push_back(item.value().detach().to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true));
  }
}

void Ema::update(const torch::nn::Module& module, double decay) {
  torch::NoGradGuard no_grad;
  size_t i = 0, k = 0;
  for (const auto& item : module.named_parameters(true))
    if (kept_[k++]) {
      // The average stays fp32 over 16-bit weights too: a 0.99 decay's steps vanish in 16 bits.
      shadow_[i].lerp_(item.value().to(torch::kFloat32), 1.0 - decay);
      ++i;
    }
}

void Ema::state_into(SafeTensors& st, const std::string& prefix) const {
  for (size_t i = 0; i < names_.size(); ++i) st.tensors[prefix + names_[i]] = shadow_[i];
}

void Ema::load_state(const SafeTensors& st, const std::string& prefix, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < names_.size(); ++i) {
    auto it = st.tensors.find(prefix + names_[i]);
    if (it == st.tensors.end() || it->second.sizes() != shadow_[i].sizes())
      throw file_error(source, "EMA tensor '" + prefix + names_[i] + "' is missing or has the wrong shape");
    shadow_[i].copy_(it->second);
  }
}

void Ema::copy_to(torch::nn::Module& module) const {
  torch::NoGradGuard no_grad;
  size_t i = 0, k = 0;
  for (auto& item : module.named_parameters(true))
    if (kept_[k++]) item.value().copy_(shadow_[i++]);
}

}  // namespace dalle

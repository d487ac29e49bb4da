// Exponential moving average of a module's parameters (the paper's "iterate averaging"). The
// average is what bundles ship and what encodes tokens.
#pragma once
#include <torch/nn/module.h>

#include <functional>
#include <string>
#include <vector>

#include "dalle/io/safetensors.h"

namespace dalle {

class Ema {
 public:
  // `keep(name)`: which parameters this process averages (a ZeRO-1 shard); all when empty.
  explicit Ema(const torch::nn::Module& module, const std::function<bool(const std::string&)>& keep = nullptr);
  void update(const torch::nn::Module& module, double decay);
  void state_into(SafeTensors& st, const std::string& prefix) const;
  void load_state(const SafeTensors& st, const std::string& prefix, const std::string& source);
  // Copies the averages into a module of the same architecture (the kept parameters only).
  void copy_to(torch::nn::Module& module) const;

 private:
  std::vector<bool> kept_;  // per module parameter, in order
  std::vector<std::string> names_;
  std::vector<torch::Tensor> shadow_;
};

}  // namespace dalle

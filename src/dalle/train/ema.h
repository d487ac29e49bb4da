// Exponential moving average of a module's parameters (the paper's "iterate averaging"). The
// average is what bundles ship and what encodes tokens.
#pragma once
#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "dalle/io/safetensors.h"

namespace dalle {

class Ema {
 public:
  explicit Ema(const torch::nn::Module& module);
  void update(const torch::nn::Module& module, double decay);
  void state_into(SafeTensors& st, const std::string& prefix) const;
  void load_state(const SafeTensors& st, const std::string& prefix, const std::string& source);
  // Copies the averages into a module of the same architecture.
  void copy_to(torch::nn::Module& module) const;

 private:
  std::vector<std::string> names_;
  std::vector<torch::Tensor> shadow_;
};

}  // namespace dalle

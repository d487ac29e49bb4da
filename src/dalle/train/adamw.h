// AdamW with decoupled weight decay and an explicit, named state, so checkpoints store it as
// plain tensors and resume exactly. Written out (not torch::optim) because later stages need
// step skipping per gradient scale and state sharding across ranks.
#pragma once
#include <torch/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dalle/io/safetensors.h"

namespace dalle {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  // `decay(name)` says whether weight decay applies to that parameter.
  AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions options,
        const std::function<bool(const std::string&)>& decay);

  void step(double lr);
  void zero_grad();
  // Parameters for which `frozen(name)` is true are left alone by later steps (their moments too).
  void freeze(const std::function<bool(const std::string&)>& frozen);
  int64_t steps() const { return steps_; }

  void state_into(SafeTensors& st) const;  // "adam.m.<name>", "adam.v.<name>", metadata adam_steps
  void load_state(const SafeTensors& st, const std::string& source);

 private:
  struct Slot {
    std::string name;
    torch::Tensor param, m, v;
    bool decay;
    bool frozen = false;
  };
  std::vector<Slot> slots_;
  AdamWOptions options_;
  int64_t steps_ = 0;
};

}  // namespace dalle

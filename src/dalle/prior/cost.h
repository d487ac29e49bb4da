// What a prior config costs, from the config alone (no weights allocated): FLOPs per token for
// training and for cached sampling, with attention counted over the keys each mask allows
// (what a sparse kernel computes) and over all causal keys (the dense masked reference), and
// memory for weights, optimizer state and activations at a batch size; and the parameters'
// names and shapes, for the communication plan. For `dalle info`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dalle/bundle/config.h"

namespace dalle {

struct PriorCost {
  int64_t params = 0;
  double train_flops_per_token = 0;        // forward + backward, attention over allowed keys
  double train_flops_per_token_dense = 0;  // same with dense causal attention
  double sample_flops_per_token = 0;       // one cached image-token step
  int64_t weight_bytes = 0;                // fp32 weights
  int64_t optimizer_bytes = 0;             // AdamW moments (2x) + EMA (1x), fp32
  int64_t activation_bytes = 0;            // kept for backward at `batch`, fp32, no checkpointing
};

PriorCost prior_cost(const PriorConfig& config, int grid_h, int grid_w, int image_vocab, int64_t batch);

struct ParamShape {
  std::string name;
  std::vector<int64_t> shape;
};

// The prior's parameters as `Prior::named_parameters()` lists them (same names, shapes and
// order), without building the model: the paper's 12B cannot be allocated just to be planned.
std::vector<ParamShape> prior_param_shapes(const PriorConfig& config, int grid_h, int grid_w, int image_vocab);

}  // namespace dalle

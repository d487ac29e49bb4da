// Training checkpoints: one safetensors file with the raw weights ("model."), their EMA
// ("ema."), the AdamW moments ("adam.") and a JSON training state in the metadata (step,
// schedule state, config). Written atomically; loading validates every tensor, so a broken or
// mismatched checkpoint is a clear error and training resumes exactly.
#pragma once
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>

#include <string>

#include "dalle/train/adamw.h"
#include "dalle/train/ema.h"

namespace dalle {

constexpr const char* kCheckpointFile = "checkpoint.safetensors";

// `extra`: more tensors and metadata to keep (PowerSGD error buffers, other ranks' shards).
void checkpoint_save(const std::string& path, const torch::nn::Module& model, const AdamW& optimizer,
                     const Ema& ema, const nlohmann::json& state, const SafeTensors& extra = {});
// The saved training state alone (step, data position, ...), before any model exists.
nlohmann::json checkpoint_read_state(const std::string& path);
// Restores model, optimizer and EMA in place; returns the saved state. `file`: the whole
// checkpoint, for state kept through `extra`.
nlohmann::json checkpoint_load(const std::string& path, torch::nn::Module& model, AdamW& optimizer,
                               Ema& ema, SafeTensors* file = nullptr);

// Deterministic batch order: epoch e is a seeded permutation of [0, n); the batch for `step`
// is positions [step*batch, (step+1)*batch) of the concatenated epochs. Depends only on
// (n, batch, step, seed), which is what makes resume exact.
std::vector<int64_t> batch_indices(int64_t n, int64_t batch, int64_t step, uint64_t seed);

// The seed of (run seed, step, stream), and a libtorch CPU generator seeded with it, for per-step
// noise.
uint64_t step_seed(uint64_t seed, int64_t step, uint64_t stream);
torch::Generator step_generator(uint64_t seed, int64_t step, uint64_t stream);

}  // namespace dalle

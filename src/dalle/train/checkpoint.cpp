#include "dalle/train/checkpoint.h"

#include "dalle/util/torch_api.h"

#include <random>

#include "dalle/io/weights.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

void checkpoint_save(const std::string& path, const torch::nn::Module& model, const AdamW& optimizer,
                     const Ema& ema, const nlohmann::json& state, const SafeTensors& extra) {
  SafeTensors st = extra;
  module_weights_into(model, st, "model.");
  ema.state_into(st, "ema.");
  optimizer.state_into(st);
  st.metadata["state"] = state.dump();
  st.metadata["format"] = "dalle-checkpoint-1";
  safetensors_save(path, st);
}

namespace {

SafeTensors load_checkpoint_file(const std::string& path) {
  if (!path_exists(path)) throw file_error(path, "no checkpoint to resume from");
  SafeTensors st = safetensors_load(path);
  if (st.metadata.count("format") == 0 || st.metadata.count("state") == 0)
    throw file_error(path, "not a dalle training checkpoint (no training state)");
  return st;
}

nlohmann::json parse_state(const SafeTensors& st, const std::string& path) {
  nlohmann::json state = nlohmann::json::parse(st.metadata.at("state"), nullptr, false);
  if (state.is_discarded() || !state.is_object() || !state.contains("step"))
    throw file_error(path, "corrupt training state");
  return state;
}

}  // namespace

nlohmann::json checkpoint_read_state(const std::string& path) { return parse_state(load_checkpoint_file(path), path); }

nlohmann::json checkpoint_load(const std::string& path, torch::nn::Module& model, AdamW& optimizer,
                               Ema& ema, SafeTensors* file) {
  SafeTensors st = load_checkpoint_file(path);
  // Only the "model." tensors are checked against the module; others are ours.
  SafeTensors weights;
  for (const auto& [name, t] : st.tensors)
    if (name.rfind("model.", 0) == 0) weights.tensors[name] = t;
  weights.dtypes = st.dtypes;
  module_load_weights(model, weights, path, "model.");
  ema.load_state(st, "ema.", path);
  optimizer.load_state(st, path);
  nlohmann::json state = parse_state(st, path);
  if (file) *file = std::move(st);
  return state;
}

namespace {

uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::vector<int64_t> epoch_permutation(int64_t n, int64_t epoch, uint64_t seed) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
  std::mt19937_64 rng(mix(seed ^ mix(static_cast<uint64_t>(epoch))));
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates with our own draws: portable
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  return perm;
}

}  // namespace

std::vector<int64_t> batch_indices(int64_t n, int64_t batch, int64_t step, uint64_t seed) {
  std::vector<int64_t> out;
  int64_t cached_epoch = -1;
  std::vector<int64_t> perm;
  for (int64_t k = 0; k < batch; ++k) {
    const int64_t global = step * batch + k;
    const int64_t epoch = global / n;
    if (epoch != cached_epoch) {
      perm = epoch_permutation(n, epoch, seed);
      cached_epoch = epoch;
    }
    out.push_back(perm[static_cast<size_t>(global % n)]);
  }
  return out;
}

uint64_t step_seed(uint64_t seed, int64_t step, uint64_t stream) {
  return mix(seed ^ mix(static_cast<uint64_t>(step) ^ mix(stream)));
}

torch::Generator step_generator(uint64_t seed, int64_t step, uint64_t stream) {
  return make_cpu_generator(step_seed(seed, step, stream));
}

}  // namespace dalle

// Fixtures for tests that train the prior: a learnable synthetic token folder, presets and a
// run's metrics.
#pragma once
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "dalle/bundle/bundle.h"
#include "dalle/data/token_set.h"
#include "dalle/io/safetensors.h"
#include "dalle/io/weights.h"
#include "dalle/train/prior_trainer.h"
#include "dalle/util/fs.h"
#include "dalle/vae/dvae.h"
#include "test_paths.h"

namespace dalle::test {

// A token folder whose image tokens follow from the caption (colour picks a band of ids, shape
// a pattern), with 10% noise: a task a small prior learns in a hundred steps.
inline void write_synthetic_tokens(const std::string& dir, const ModelConfig& config, int64_t count) {
  const char* colours[] = {"red", "green", "blue", "yellow", "purple", "orange", "white", "pink"};
  const char* shapes[] = {"circle", "square", "triangle", "star", "heart", "cross", "hexagon", "ring"};
  const int64_t g = config.vae.grid(), vocab = config.vae.vocab;
  torch::manual_seed(7);
  TokenSet set;
  set.tokens = torch::empty({count, g, g}, torch::kLong);
  auto acc = set.tokens.accessor<int64_t, 3>();
  const torch::Tensor noise_t = torch::rand({count, g, g});
  const torch::Tensor random_t = torch::randint(0, vocab, {count, g, g});
  auto noise = noise_t.accessor<float, 3>();
  auto random_ids = random_t.accessor<int64_t, 3>();
  for (int64_t n = 0; n < count; ++n) {
    const int64_t c = n % 8, s = (n / 8) % 8;
    set.captions.push_back({std::string("a ") + colours[c] + " " + shapes[s]});
    for (int64_t y = 0; y < g; ++y)
      for (int64_t x = 0; x < g; ++x)
        acc[n][y][x] = noise[n][y][x] < 0.1f ? random_ids[n][y][x] : c * vocab / 8 + (s * 7 + x * y + y) % (vocab / 8);
  }
  make_dirs(dir);
  token_set_write(dir, set);
  config_save(path_join(dir, kConfigFile), config);
  Dvae vae(config.vae);
  SafeTensors weights;
  module_weights_into(*vae, weights);
  safetensors_save(path_join(dir, kVaeWeightsFile), weights);
}

// A quiet run of `steps` updates on a token folder, without sample grids, checkpointed and
// validated only at its end.
inline PriorTrainOptions tiny_run(const std::string& data, const std::string& out, int64_t steps) {
  PriorTrainOptions o;
  o.data = data;
  o.out = out;
  o.steps = steps;
  o.save_every = 1000;
  o.val_every = 1000;
  o.quiet = true;
  o.sample_prompts.clear();
  return o;
}

inline ModelConfig preset(const char* name) {
  return config_load(std::string(DALLE_SOURCE_DIR) + "/configs/" + name + ".json");
}

inline std::vector<nlohmann::json> metrics_of(const std::string& run) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path_join(run, "metrics.jsonl"));
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace dalle::test

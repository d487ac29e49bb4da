// A model bundle is a folder: config.json (every hyperparameter, the tokenizer file name,
// versions), vae.safetensors, prior.safetensors, the tokenizer file, and optionally
// rerank.safetensors (the contrastive reranker, over the same tokenizer). Training runs write
// the same layout, so a run folder is a bundle.
#pragma once
#include <string>

#include "dalle/bundle/config.h"
#include "dalle/prior/transformer.h"
#include "dalle/rerank/reranker.h"
#include "dalle/text/tokenizer.h"
#include "dalle/vae/dvae.h"

namespace dalle {

constexpr const char* kConfigFile = "config.json";
constexpr const char* kVaeWeightsFile = "vae.safetensors";
constexpr const char* kPriorWeightsFile = "prior.safetensors";

struct Bundle {
  std::string path;
  ModelConfig config;
  Tokenizer tokenizer;
  Dvae vae{nullptr};
  Prior prior{nullptr};
  Reranker reranker{nullptr};  // null when the bundle has no rerank.safetensors
};

// A folder with config.json and vae.safetensors (a VAE run, a token folder or a bundle).
Dvae vae_load(const std::string& dir, ModelConfig* config_out = nullptr);
Prior prior_create(const ModelConfig& config);
Bundle bundle_load(const std::string& dir);

}  // namespace dalle

// A model bundle is a folder: config.json (every hyperparameter, the tokenizer file name,
// versions), vae.safetensors, prior.safetensors, the tokenizer file, and optionally
// rerank.safetensors (the contrastive reranker, over the same tokenizer). Training runs write
// the same layout, so a run folder is a bundle.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "dalle/bundle/config.h"
#include "dalle/prior/decoder.h"
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
  // Sampling runs on `decoder`, with the prior's linear weights in `weights`; with bf16 or int8
  // the dVAE decoder's weights are bf16 too (bench_decode: pixels within 1e-4 of fp32). On a CPU
  // it is the packed PriorDecoder; on a GPU the module with its KV cache, its steps replayed as a
  // CUDA graph (GraphDecoder; DALLE_CUDA_GRAPHS=0 turns graphs off), in
  // bf16 for the bf16 and int8 formats (CUDA has no int8 path here: int8 weights run as bf16;
  // the prior's resblock matrices are then stored in bf16, in place, by bundle_to_device).
  WeightFormat weights = WeightFormat::fp32;
  std::shared_ptr<ImageTokenDecoder> decoder;
  c10::Device device{c10::kCPU};  // where the models run
};

// A folder with config.json and vae.safetensors (a VAE run, a token folder or a bundle).
Dvae vae_load(const std::string& dir, ModelConfig* config_out = nullptr);
Prior prior_create(const ModelConfig& config);
// `weights`: the inference format; by default the one prior.safetensors is stored in (an int8
// bundle from `dalle quantize` samples in int8, a trained fp32 bundle in fp32).
Bundle bundle_load(const std::string& dir, std::optional<WeightFormat> weights = std::nullopt,
                   const c10::Device& device = c10::Device(c10::kCPU));
// Moves the bundle's models to `device` (and drops its decoder, remade there on first use). Set
// `weights` first: on a GPU, bf16 and int8 bundles get their prior's block matrices in bf16.
void bundle_to_device(Bundle& bundle, const c10::Device& device);
// The bundle's decoder, made (in `weights`, on the bundle's device) on first use for a bundle
// assembled in code. On a CPU it packs a copy of the prior's weights: code that changes them
// resets `bundle.decoder`.
ImageTokenDecoder& bundle_decoder(Bundle& bundle);

}  // namespace dalle

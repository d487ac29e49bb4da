// `dalle train`: the transformer prior's training loop (SPEC §3): AdamW (beta2 0.96, decay on
// weights only), linear warm-up then halve-on-plateau, global-norm clipping, EMA, gradient
// accumulation, a held-out validation split, metrics, sample grids and exact resume. The run
// folder is a model bundle (config.json, prior.safetensors = EMA weights, vae.safetensors,
// tokenizer) that `dalle generate --model` accepts.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dalle/bundle/config.h"

namespace dalle {

class DistGroup;

struct PriorTrainOptions {
  std::string data;       // token folder from `dalle vae encode`; images with encode_on_the_fly
  // Encode the images of `data` with the dVAE in `vae` as they stream, each epoch with new crops
  // (SPEC §3's augmentation, prior_train.augment), instead of reading pre-encoded tokens.
  bool encode_on_the_fly = false;
  std::string vae;        // the dVAE run or bundle for encode_on_the_fly
  int workers = 2;        // image decoding threads (encode_on_the_fly)
  std::string out;        // run folder (becomes a bundle)
  std::string tokenizer;  // existing tokenizer file; empty = learn one from the captions
  int64_t steps = -1;     // -1 = config
  int batch = -1;         // samples per update per rank; -1 = config
  int accumulate = 1;     // micro-batches per update
  uint64_t seed = 0;
  bool resume = false;
  int threads = 0;
  int64_t val_every = 200;
  int64_t save_every = 500;
  int64_t sample_every = 500;
  int64_t shuffle_buffer = 10000;  // token samples mixed across shards
  int64_t val_samples = 2048;      // held-out samples kept for the validation loss (at most)
  std::vector<std::string> sample_prompts = {"a red circle", "a small blue square in the top left corner",
                                             "a green star above a yellow heart", "a large white cross"};
  // fp32; bf16 autocast (oneDNN on CPU); fp16 (real on CUDA, emulated on CPU). 16-bit modes use
  // per-resblock gradient scaling and skip updates whose block gradients overflow.
  std::string precision = "fp32";
  std::string device = "cpu";  // cpu, cuda, cuda:N or auto (util/device.h)
  bool tf32 = false;           // fp32 products on TF32 tensor cores (CUDA)
  // The paper's memory scheme: resblock matrices stored in the precision's 16-bit type (no fp32
  // master copy), AdamW moments in 16 bits (adamw.h); needs bf16, or fp16 on CUDA.
  bool weights16 = false;
  bool checkpoint_activations = false;  // recompute each resblock in backward to save memory
  bool quiet = false;
  // Fault injection for tests: the loss of each update for which this returns true becomes NaN.
  std::function<bool(int64_t step)> nonfinite_loss_at;
  // Data parallelism (SPEC §3, dist/): the process group this rank trains in (nullptr: one
  // process). prior_train.batch is per rank; rank 0 alone writes the run folder, which every
  // rank must see (it is also what they resume from).
  std::shared_ptr<DistGroup> dist;
  int powersgd_rank = -1;        // -1: the config's prior_train.powersgd_rank; 0: off
  bool shard_optimizer = false;  // ZeRO-1: AdamW moments and EMA split across ranks
};

struct PriorTrainResult {
  double first_loss = 0, last_loss = 0;
  double val_loss_image = 0;
  double tokens_per_second = 0;
  int64_t steps = 0;
  int64_t skipped_steps = 0;  // updates skipped for a non-finite loss or gradient
  double comm_bytes = 0;      // bytes this rank sent in the last update (data-parallel runs)
  double powersgd_compression = 0;
};

PriorTrainResult prior_train(const ModelConfig& preset, const PriorTrainOptions& options);

}  // namespace dalle

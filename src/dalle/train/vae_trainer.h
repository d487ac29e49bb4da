// `dalle vae train`: the dVAE's training loop (SPEC §1) with Gumbel-softmax relaxation,
// cosine schedules for beta, tau and the learning rate, AdamW, EMA, metrics, reconstruction
// grids and exact resume. The run folder holds config.json + vae.safetensors (EMA weights).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "dalle/bundle/config.h"

namespace dalle {

class DistGroup;

struct VaeTrainOptions {
  std::string data;              // images: a folder, tar shards (paths or brace patterns) or a TSV; streamed
  std::string out;               // run folder
  int64_t steps = -1;            // total updates; -1 = config
  double schedule_scale = 1.0;   // multiplies the beta, tau and lr schedule lengths
  int64_t decoder_finetune_steps = -1;  // decoder-only updates at the end; -1 = config
  std::string decoder_finetune_loss;    // "nll" or "mse" for those updates; empty = config
  uint64_t seed = 0;
  bool resume = false;
  int threads = 0;
  int64_t save_every = 500;
  int64_t sample_every = 500;
  int64_t max_images = -1;       // only the first N images of the data (name order), -1 = all
  int workers = 2;               // image decoding + augmentation threads
  int64_t shuffle_buffer = 1000; // samples mixed across shards
  int64_t val_images = 512;      // held-out images read for the final evaluation (at most)
  std::string precision = "fp32";  // fp32, bf16 (oneDNN autocast) or fp16 (emulated on CPU)
  bool checkpoint_activations = false;  // recompute each resblock's branch in backward
  bool weights16 = false;  // resblock kernels stored in the precision's 16-bit type (precision.h)
  // cpu, cuda, cuda:N or auto. On a GPU the Gumbel noise comes from the GPU's generator, so a GPU
  // run differs from a CPU run of the same seed.
  std::string device = "cpu";
  bool tf32 = false;  // fp32 products on TF32 tensor cores (CUDA)
  bool quiet = false;
  // Fault injection for tests: the loss of each update for which this returns true becomes NaN.
  std::function<bool(int64_t step)> nonfinite_loss_at;
  // Data parallelism (dist/): this rank's process group (nullptr: one process); vae_train.batch
  // is per rank and rank 0 alone writes the run folder.
  std::shared_ptr<DistGroup> dist;
};

struct VaeTrainResult {
  double first_loss = 0, last_loss = 0;
  double val_psnr = 0;        // held-out (training images when none), EMA weights, argmax tokens
  int64_t val_images = 0;     // held-out images it was measured on
  int64_t skipped_images = 0; // unreadable or undecodable samples the loader skipped
  double val_codes_used = 0;  // fraction of the codebook those tokens use
  double images_per_second = 0;
  int64_t steps = 0;
};

VaeTrainResult vae_train(ModelConfig config, const VaeTrainOptions& options);

}  // namespace dalle

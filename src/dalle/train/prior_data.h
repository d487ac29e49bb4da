// Where the prior's training samples come from (SPEC §3), as one stream of token batches:
//   - a token folder from `dalle vae encode` (pre-encoded, possibly several crops per image), or
//   - images encoded on the fly: each batch of images gets SPEC §3's augmentation (near-centre
//     crop, random resize, no flip) and is encoded by the dVAE in the loader's place, so every
//     epoch sees new crops, as in the paper.
// Both hold out a fixed share of samples by name, resume exactly from a position and keep
// memory independent of the dataset's size.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dalle/bundle/bundle.h"
#include "dalle/data/loader.h"
#include "dalle/data/token_loader.h"

namespace dalle {

struct PriorDataOptions {
  std::string data;   // a token folder, or images with `vae`
  std::string vae;    // empty: `data` is a token folder; else the dVAE that encodes `data` on the fly
  int64_t batch_size = 32;
  int64_t shuffle_buffer = 10000;
  uint64_t seed = 0;
  double holdout = 0.02;
  bool augment = true;  // on-the-fly mode: SPEC §3's crops (false: centre crops)
  int workers = 2;      // on-the-fly mode: image decoding threads
  int rank = 0, world = 1;  // data-parallel: this rank reads its own share (data/loader.h)
};

class PriorData {
 public:
  virtual ~PriorData() = default;
  virtual TokenBatch next() = 0;
  // Seconds spent waiting for images (on-the-fly mode), 0 for token folders.
  virtual double wait_seconds() const { return 0; }
};

// The dVAE that made (or makes) the tokens, and its config: from the token folder, or `vae`.
Dvae prior_data_vae(const PriorDataOptions& options, ModelConfig* config);

// Opens the stream at `start`. `vae` is the dVAE of prior_data_vae (used on the fly only).
std::unique_ptr<PriorData> prior_data_open(const PriorDataOptions& options, Dvae vae, LoaderPosition start);

// Up to `max_samples` held-out samples as tokens (centre crops when encoding on the fly).
TokenBatch prior_data_holdout(const PriorDataOptions& options, Dvae vae, int64_t max_samples);

// Captions of the first `max_samples` samples, for learning a tokenizer.
std::vector<std::vector<std::string>> prior_data_captions(const PriorDataOptions& options, int64_t max_samples);

// Throws naming the data when it cannot be read (before a run writes anything).
void prior_data_check(const PriorDataOptions& options);

}  // namespace dalle

// Streams a token folder (data/token_set.h) to the prior's trainer: shards in a per-epoch
// shuffled order, split by rank, samples mixed in a seeded shuffle buffer, a held-out share
// chosen by a hash of each sample's shard and row, and a position that resumes the stream
// exactly. Memory holds one shard and the buffer, whatever the folder's size. Tokens need no
// decoding, so one thread reads them as the trainer asks (no workers, unlike data/loader.h).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dalle/data/loader.h"
#include "dalle/data/shuffle_buffer.h"

namespace dalle {

struct TokenLoaderOptions {
  std::string dir;  // a token folder from `dalle vae encode`
  int64_t batch_size = 32;
  int64_t shuffle_buffer = 10000;
  uint64_t seed = 0;
  int rank = 0;
  int world = 1;
  double holdout = 0.0;  // share of samples held out (0: none)
  LoaderSplit split = LoaderSplit::train;
};

struct TokenBatch {
  torch::Tensor tokens;                             // int64 [B, h, w]
  std::vector<std::vector<std::string>> captions;   // all captions of each sample
  LoaderPosition position;                          // after this batch
};

class TokenLoader {
 public:
  explicit TokenLoader(TokenLoaderOptions options, LoaderPosition start = {});
  TokenBatch next();
  // Samples of this rank's stream, one at a time (next() gathers batches of them).
  struct Sample {
    torch::Tensor tokens;  // int64 [h, w]
    std::vector<std::string> captions;
    LoaderPosition position;
  };
  Sample next_sample();

 private:
  bool pull(Sample& out);  // the next sample of this epoch in file order; false at its end
  void start_epoch(int64_t epoch);
  void load_shard(const std::string& stem);

  TokenLoaderOptions o_;
  std::vector<std::string> shards_;  // stems, in name order
  std::vector<std::string> mine_;    // this epoch's, for this rank
  bool stride_samples_ = false;
  size_t next_shard_ = 0;
  std::string shard_stem_;
  torch::Tensor shard_tokens_;  // int64 [n, h, w] of the open shard
  std::vector<std::vector<std::string>> shard_captions_;
  int64_t row_ = 0;
  int64_t seen_ = 0;  // samples of the epoch before the rank stride
  int64_t epoch_ = 0, emitted_ = 0;
  bool draining_ = false;
  ShuffleBuffer<Sample> buffer_;
  AugmentRng shuffle_rng_{0};
};

// Up to `max_samples` held-out samples in file order (one pass over the folder, nothing
// shuffled): the prior's validation set.
TokenBatch token_loader_read_holdout(TokenLoaderOptions options, int64_t max_samples);

}  // namespace dalle

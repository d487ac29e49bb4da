// A streaming training loader: shards are read in a per-epoch shuffled order, samples pass a
// seeded shuffle buffer, worker threads decode and augment them, and a bounded prefetch queue
// hands out batches in a fixed order. The order and the pixels depend only on (seed, rank,
// world, options), never on thread timing, so a run resumed from a checkpointed position sees
// exactly the batches the uninterrupted run would have seen.
//
// Why one reader and many decoders: reading tar bytes is cheap, decoding and resizing is not.
// One reader keeps the sample order deterministic; workers do the expensive part in any order
// and a reorder buffer restores the sequence.
//
// Sharding by rank: with at least `world` shards, rank r reads shards r, r+world, ... of each
// epoch's shuffled list; with fewer (one folder, one TSV), it takes every world-th sample.
#pragma once
#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dalle/data/augment.h"
#include "dalle/data/sample_source.h"
#include "dalle/util/error.h"

namespace dalle {

// A stream (this rank's part of a split) that ends an epoch without a single sample.
class NoSamplesError : public Error {
 public:
  using Error::Error;
};
// "DATA: no samples for rank R of W".
NoSamplesError no_samples_error(const std::string& data, int rank, int world);

// Which part of the data a loader streams: a held-out sample is one whose name (a file's name,
// or a tar member's key) hashes into the first `holdout` fraction, so the split is the same for
// every shard order, rank and epoch, and needs no list of files.
enum class LoaderSplit { train, holdout };

struct LoaderOptions {
  std::string data;          // anything open_sample_source reads: prepared shards, a folder, a TSV
  int image_size = 64;
  AugmentKind augment = AugmentKind::dvae;
  int64_t batch_size = 32;
  int workers = 2;           // decode + augment threads
  int64_t prefetch = 4;      // batches decoded ahead of the consumer
  int64_t shuffle_buffer = 1000;
  uint64_t seed = 0;
  int rank = 0;
  int world = 1;
  int64_t max_pixels = int64_t(1) << 26;
  bool require_caption = false;  // skip (and count) images without a caption
  bool all_captions = false;     // also deliver every caption of each image (LoaderBatch::caption_lists)
  double holdout = 0.0;  // share of the samples held out (0: none)
  LoaderSplit split = LoaderSplit::train;
  // Only the first N samples of the source in name order (shards unshuffled), -1 = all: a
  // fixed subset, for small experiments.
  int64_t max_samples = -1;
};

// Whether the sample named `key` (RawSample::key) falls in the held-out `fraction`.
bool loader_holdout(const std::string& key, double fraction);

// This rank's shards for `epoch`: every rank permutes `shards` the same way (unless `shuffle` is
// false), then takes shards rank, rank + world, ... When there are fewer shards than ranks it
// returns all of them and sets `stride_samples`: the rank then takes every world-th sample.
std::vector<std::string> loader_epoch_shards(const std::vector<std::string>& shards, uint64_t seed, int64_t epoch,
                                             int rank, int world, bool shuffle, bool* stride_samples);

// Where the stream stands: `sample` samples of `epoch` were consumed (this rank's stream).
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t sample = 0;
  bool operator==(const LoaderPosition& o) const { return epoch == o.epoch && sample == o.sample; }
};

struct LoaderBatch {
  torch::Tensor images;               // uint8 [B, S, S, 3]
  std::vector<std::string> captions;  // one per image, picked at random among its captions
  std::vector<std::vector<std::string>> caption_lists;  // all of them, with options.all_captions
  LoaderPosition position;            // after this batch: save it to resume right after it
  std::vector<LoaderPosition> positions;  // after each image (a batch may cross an epoch's end)
};

struct LoaderStats {
  int64_t delivered = 0;
  int64_t skipped = 0;  // unreadable or undecodable samples, counted, never fatal
};

class Loader {
 public:
  explicit Loader(LoaderOptions options, LoaderPosition start = {});
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  LoaderBatch next();
  LoaderStats stats() const;
  // Seconds next() spent waiting for data since construction.
  double wait_seconds() const { return wait_seconds_; }

 private:
  struct Item {  // one sample on its way from the reader to the consumer
    int64_t seq = 0;
    LoaderPosition after;
    RawSample raw;
  };
  struct Result {
    LoaderPosition after;
    bool ok = false;
    Image image;
    std::string caption;
    std::vector<std::string> all_captions;
  };
  void read_loop();
  void work_loop();
  void fail(std::exception_ptr e);

  LoaderOptions o_;
  std::vector<std::string> shards_;  // empty: a single non-shard source
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> work_;            // bounded by capacity_
  std::map<int64_t, Result> done_;   // reorder buffer
  int64_t capacity_;
  int64_t next_seq_ = 0;             // the next sequence number the consumer takes
  bool stop_ = false;
  std::exception_ptr error_;
  LoaderStats stats_;
  double wait_seconds_ = 0;
  LoaderPosition start_;
  std::thread reader_;
  std::vector<std::thread> workers_;
};

// The held-out part of `options.data` (options.split is ignored): up to `max_images` samples,
// centre-cropped (no augmentation), in a fixed order; none when the data holds none. Small
// enough to keep in memory for every evaluation of a run.
struct HeldOutSet {
  torch::Tensor images;  // uint8 [N, S, S, 3], N may be 0
  std::vector<std::string> captions;
};
HeldOutSet loader_read_holdout(LoaderOptions options, int64_t max_images);

// The captions (one list per sample, normalised, empty lines dropped) of the first `max_samples`
// samples of `data` in source order, without decoding any image: enough to learn a tokenizer.
std::vector<std::vector<std::string>> loader_read_captions(const std::string& data, int64_t max_samples);

}  // namespace dalle

#include "dalle/data/token_loader.h"

#include "dalle/util/torch_api.h"

#include "dalle/data/token_set.h"
#include "dalle/util/error.h"

namespace dalle {

namespace {

// A sample's name for the held-out hash: its shard's file name and row ("shard-000003:1234").
std::string sample_name(const std::string& stem, int64_t row) {
  const size_t slash = stem.find_last_of('/');
  return (slash == std::string::npos ? stem : stem.substr(slash + 1)) + ":" + std::to_string(row);
}

}  // namespace

TokenLoader::TokenLoader(TokenLoaderOptions options, LoaderPosition start)
    : o_(std::move(options)), buffer_(o_.shuffle_buffer) {
  if (o_.batch_size <= 0) throw Error("token loader: batch size must be positive");
  if (o_.world <= 0 || o_.rank < 0 || o_.rank >= o_.world)
    throw Error("token loader: rank " + std::to_string(o_.rank) + " is outside world size " + std::to_string(o_.world));
  shards_ = token_shard_stems(o_.dir);
  start_epoch(start.epoch);
  // Resuming: the stream is deterministic, so skipping what was consumed lands exactly where it stood.
  while (emitted_ < start.sample) next_sample();
}

void TokenLoader::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  emitted_ = seen_ = row_ = 0;
  draining_ = false;
  buffer_.clear();
  shard_tokens_ = torch::Tensor();
  next_shard_ = 0;
  mine_ = loader_epoch_shards(shards_, o_.seed, epoch, o_.rank, o_.world, /*shuffle=*/true, &stride_samples_);
  shuffle_rng_ = AugmentRng(augment_seed(o_.seed ^ (0x70cull * static_cast<uint64_t>(o_.rank + 1)), epoch, -3));
}

void TokenLoader::load_shard(const std::string& stem) {
  TokenSet shard = token_shard_read(stem);
  shard_stem_ = stem;
  shard_tokens_ = shard.tokens;
  shard_captions_ = std::move(shard.captions);
  row_ = 0;
}

bool TokenLoader::pull(Sample& out) {
  for (;;) {
    if (shard_tokens_.defined() && row_ < shard_tokens_.size(0)) {
      const int64_t row = row_++;
      if (o_.holdout > 0 && loader_holdout(sample_name(shard_stem_, row), o_.holdout) != (o_.split == LoaderSplit::holdout))
        continue;
      if (stride_samples_ && (seen_++ % o_.world) != o_.rank) continue;
      out.tokens = shard_tokens_[row].clone();  // a view would keep the whole shard alive in the buffer
      out.captions = shard_captions_[static_cast<size_t>(row)];
      return true;
    }
    if (next_shard_ >= mine_.size()) return false;
    load_shard(mine_[next_shard_++]);
  }
}

TokenLoader::Sample TokenLoader::next_sample() {
  for (;;) {
    std::optional<Sample> s;
    while (!s && !draining_) {
      Sample pulled;
      if (pull(pulled))
        s = buffer_.push(std::move(pulled), shuffle_rng_);
      else
        draining_ = true;
    }
    if (!s) s = buffer_.pop(shuffle_rng_);
    if (s) {
      s->position = {epoch_, ++emitted_};
      return std::move(*s);
    }
    if (emitted_ == 0) throw no_samples_error(o_.dir, o_.rank, o_.world);
    start_epoch(epoch_ + 1);
  }
}

TokenBatch TokenLoader::next() {
  TokenBatch batch;
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < o_.batch_size; ++i) {
    Sample s = next_sample();
    rows.push_back(std::move(s.tokens));
    batch.captions.push_back(std::move(s.captions));
    batch.position = s.position;
  }
  batch.tokens = torch::stack(rows);
  return batch;
}

TokenBatch token_loader_read_holdout(TokenLoaderOptions o, int64_t max_samples) {
  TokenBatch out;
  if (o.holdout <= 0 || max_samples <= 0) return out;
  o.split = LoaderSplit::holdout;
  o.shuffle_buffer = 1;
  o.rank = 0;
  o.world = 1;
  std::vector<torch::Tensor> rows;
  try {
    TokenLoader loader(o);
    while (static_cast<int64_t>(rows.size()) < max_samples) {
      TokenLoader::Sample s = loader.next_sample();
      if (s.position.epoch > 0) break;  // wrapped around: every held-out sample is in
      rows.push_back(std::move(s.tokens));
      out.captions.push_back(std::move(s.captions));
    }
  } catch (const NoSamplesError&) {
    // A folder without a single held-out sample ends its first epoch empty: no error here.
  }
  if (!rows.empty()) out.tokens = torch::stack(rows);
  return out;
}

}  // namespace dalle

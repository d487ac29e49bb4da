#include "dalle/data/loader.h"

#include "dalle/util/torch_api.h"

#include <xxhash.h>

#include <chrono>
#include <cstring>

#include "dalle/data/caption_filters.h"
#include "dalle/data/filters.h"
#include "dalle/data/shuffle_buffer.h"
#include "dalle/data/tar_shards.h"
#include "dalle/util/error.h"

namespace dalle {

namespace {

// After this many undecodable samples in a row the data is unusable, not unlucky.
constexpr int64_t kMaxConsecutiveSkips = 100000;

std::vector<std::string> caption_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string c = caption_normalize(std::string_view(text).substr(start, end - start));
    if (!c.empty()) out.push_back(std::move(c));
    start = end + 1;
  }
  return out;
}

}  // namespace

NoSamplesError no_samples_error(const std::string& data, int rank, int world) {
  return NoSamplesError(data + ": no samples for rank " + std::to_string(rank) + " of " + std::to_string(world));
}

bool loader_holdout(const std::string& key, double fraction) {
  if (fraction <= 0) return false;
  // The name without its folder or shard, so moving or resharding the data keeps the split.
  const size_t cut = key.find_last_of(":/");
  const std::string_view name = cut == std::string::npos ? std::string_view(key) : std::string_view(key).substr(cut + 1);
  const uint64_t h = XXH3_64bits(name.data(), name.size());
  return static_cast<double>(h >> 11) * 0x1.0p-53 < fraction;
}

std::vector<std::string> loader_epoch_shards(const std::vector<std::string>& shards, uint64_t seed, int64_t epoch,
                                             int rank, int world, bool shuffle, bool* stride_samples) {
  std::vector<std::string> order = shards;
  if (shuffle) {
    AugmentRng shard_rng(augment_seed(seed, epoch, -1));
    for (size_t i = order.size(); i > 1; --i)
      std::swap(order[i - 1], order[static_cast<size_t>(shard_rng.uniform_int(0, static_cast<int>(i) - 1))]);
  }
  *stride_samples = order.size() < static_cast<size_t>(world);
  if (*stride_samples) return order;
  std::vector<std::string> mine;
  for (size_t i = static_cast<size_t>(rank); i < order.size(); i += static_cast<size_t>(world)) mine.push_back(order[i]);
  return mine;
}

Loader::Loader(LoaderOptions options, LoaderPosition start) : o_(std::move(options)), start_(start) {
  if (o_.batch_size <= 0) throw Error("loader: batch size must be positive");
  if (o_.world <= 0 || o_.rank < 0 || o_.rank >= o_.world)
    throw Error("loader: rank " + std::to_string(o_.rank) + " is outside world size " + std::to_string(o_.world));
  if (o_.image_size <= 0) throw Error("loader: image size must be positive");
  if (detect_source_format(o_.data) == SourceFormat::tar) shards_ = tar_shard_list(o_.data);
  capacity_ = std::max<int64_t>(1, o_.prefetch) * o_.batch_size + std::max(1, o_.workers);
  reader_ = std::thread([this] { read_loop(); });
  for (int w = 0; w < std::max(1, o_.workers); ++w) workers_.emplace_back([this] { work_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  reader_.join();
  for (auto& w : workers_) w.join();
}

void Loader::fail(std::exception_ptr e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!error_) error_ = e;
  cv_.notify_all();
}

void Loader::read_loop() {
  try {
    int64_t seq = 0;
    for (int64_t epoch = start_.epoch;; ++epoch) {
      // A fixed subset (max_samples) reads the shards in name order.
      bool stride_samples = true;
      const std::vector<std::string> mine =
          loader_epoch_shards(shards_, o_.seed, epoch, o_.rank, o_.world, o_.max_samples < 0, &stride_samples);
      AugmentRng shuffle_rng(augment_seed(o_.seed ^ (0x9e37ull * static_cast<uint64_t>(o_.rank + 1)), epoch, -2));
      ShuffleBuffer<RawSample> buffer(o_.shuffle_buffer);
      int64_t index = 0, k = 0, read = 0;
      auto emit = [&](RawSample&& raw) -> bool {
        ++index;
        if (epoch == start_.epoch && index <= start_.sample) return true;  // resuming: already consumed
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || static_cast<int64_t>(work_.size()) < capacity_; });
        if (stop_) return false;
        work_.push_back({seq++, {epoch, index}, std::move(raw)});
        cv_.notify_all();
        return true;
      };
      auto feed = [&](SampleSource& source) -> bool {
        RawSample raw;
        while ((o_.max_samples < 0 || read < o_.max_samples) && source.next(raw)) {
          ++read;
          if (o_.holdout > 0 && loader_holdout(raw.key, o_.holdout) != (o_.split == LoaderSplit::holdout)) continue;
          if (stride_samples && (k++ % o_.world) != o_.rank) continue;
          std::optional<RawSample> out = buffer.push(std::move(raw), shuffle_rng);
          raw = RawSample{};
          if (out && !emit(std::move(*out))) return false;
        }
        return true;
      };
      if (shards_.empty()) {
        auto source = open_sample_source(o_.data);
        if (!feed(*source)) return;
      } else {
        for (const auto& shard : mine) {
          TarShardSource source({shard}, SourceOptions{});
          if (!feed(source)) return;
        }
      }
      while (std::optional<RawSample> raw = buffer.pop(shuffle_rng))
        if (!emit(std::move(*raw))) return;
      if (index == 0) throw no_samples_error(o_.data, o_.rank, o_.world);
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
  } catch (...) {
    fail(std::current_exception());
  }
}

void Loader::work_loop() {
  try {
    for (;;) {
      Item item;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !work_.empty(); });
        if (stop_) return;
        item = std::move(work_.front());
        work_.pop_front();
        cv_.notify_all();
      }
      Result r;
      r.after = item.after;
      const RawSample& raw = item.raw;
      if (raw.reason.empty() && raw.has_image &&
          image_truncation_problem(raw.image.data(), raw.image.size()).empty()) {
        try {
          const uint64_t seed = augment_seed(o_.seed ^ (0x51afull * static_cast<uint64_t>(o_.rank + 1)),
                                             item.after.epoch, item.after.sample);
          const Image image = image_decode_on_white(raw.image.data(), raw.image.size(), raw.image_name, o_.max_pixels);
          r.image = augment_image(image, o_.image_size, o_.augment, seed);
          const std::vector<std::string> captions = caption_list(raw.captions_text);
          if (!captions.empty()) {
            AugmentRng pick(seed ^ 0xca9710ull);
            r.caption = captions[static_cast<size_t>(pick.uniform_int(0, static_cast<int>(captions.size()) - 1))];
          }
          r.ok = !o_.require_caption || !captions.empty();
          if (o_.all_captions) r.all_captions = captions;
        } catch (const Error&) {
        }
      }
      std::unique_lock<std::mutex> lock(mu_);
      // Bounded reorder buffer: run at most `capacity_` ahead of the consumer.
      cv_.wait(lock, [&] { return stop_ || item.seq < next_seq_ + capacity_; });
      if (stop_) return;
      done_[item.seq] = std::move(r);
      cv_.notify_all();
    }
  } catch (...) {
    fail(std::current_exception());
  }
}

LoaderBatch Loader::next() {
  LoaderBatch batch;
  const int64_t b = o_.batch_size, s = o_.image_size;
  batch.images = torch::empty({b, s, s, 3}, torch::kUInt8);
  uint8_t* out = batch.images.data_ptr<uint8_t>();
  const size_t image_bytes = static_cast<size_t>(s) * s * 3;
  int64_t filled = 0, skipped_in_a_row = 0;
  while (filled < b) {
    Result r;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto ready = [&] { return error_ || done_.count(next_seq_) > 0; };
      if (!ready()) {
        const auto t0 = std::chrono::steady_clock::now();
        cv_.wait(lock, ready);
        wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      if (error_) std::rethrow_exception(error_);
      auto it = done_.find(next_seq_);
      r = std::move(it->second);
      done_.erase(it);
      ++next_seq_;
      if (r.ok) ++stats_.delivered;
      else ++stats_.skipped;
    }
    cv_.notify_all();
    batch.position = r.after;
    if (!r.ok) {
      if (++skipped_in_a_row >= kMaxConsecutiveSkips)
        throw file_error(o_.data, "no decodable image in " + std::to_string(kMaxConsecutiveSkips) + " samples in a row");
      continue;
    }
    skipped_in_a_row = 0;
    std::memcpy(out + static_cast<size_t>(filled) * image_bytes, r.image.pixels.data(), image_bytes);
    batch.captions.push_back(std::move(r.caption));
    batch.positions.push_back(r.after);
    if (o_.all_captions) batch.caption_lists.push_back(std::move(r.all_captions));
    ++filled;
  }
  return batch;
}

HeldOutSet loader_read_holdout(LoaderOptions o, int64_t max_images) {
  HeldOutSet out;
  const int64_t s = o.image_size;
  out.images = torch::empty({0, s, s, 3}, torch::kUInt8);
  if (o.holdout <= 0 || max_images <= 0) return out;
  o.split = LoaderSplit::holdout;
  o.augment = AugmentKind::centre;
  o.batch_size = 1;
  o.shuffle_buffer = 1;  // the source's order: the same images whatever the seed
  o.rank = 0;            // every rank of a data-parallel run validates on the same images
  o.world = 1;
  std::vector<torch::Tensor> images;
  try {
    Loader loader(o);
    while (static_cast<int64_t>(images.size()) < max_images) {
      LoaderBatch b = loader.next();
      if (b.position.epoch > 0) break;  // wrapped around: every held-out sample is in
      images.push_back(b.images);
      out.captions.push_back(b.captions.empty() ? "" : b.captions[0]);
    }
  } catch (const NoSamplesError&) {
    // A source without a single held-out sample ends its first epoch empty: that is no error here.
  }
  if (!images.empty()) out.images = torch::cat(images);
  return out;
}

std::vector<std::vector<std::string>> loader_read_captions(const std::string& data, int64_t max_samples) {
  std::vector<std::vector<std::string>> out;
  auto source = open_sample_source(data);
  RawSample raw;
  while (static_cast<int64_t>(out.size()) < max_samples && source->next(raw)) {
    std::vector<std::string> captions = caption_list(raw.captions_text);
    if (!captions.empty()) out.push_back(std::move(captions));
  }
  return out;
}

LoaderStats Loader::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace dalle

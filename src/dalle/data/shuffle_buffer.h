// The seeded shuffle buffer both streaming loaders mix samples with (data/loader.h for images,
// data/token_loader.h for tokens): it holds up to `capacity` samples; once full, each new sample
// takes the place of a random held one, which comes out. At the end of an epoch the rest come out
// in random order. The draws depend only on the generator, so a stream is the same every run.
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "dalle/data/augment.h"

namespace dalle {

template <typename T>
class ShuffleBuffer {
 public:
  explicit ShuffleBuffer(int64_t capacity) : capacity_(std::max<int64_t>(1, capacity)) {}

  // Takes `item`; returns the sample that leaves, or nothing while the buffer fills.
  std::optional<T> push(T item, AugmentRng& rng) {
    if (static_cast<int64_t>(items_.size()) < capacity_) {
      items_.push_back(std::move(item));
      return std::nullopt;
    }
    std::swap(item, items_[pick(rng)]);
    return item;
  }

  // At the end of the input: a random held sample, or nothing when the buffer is empty.
  std::optional<T> pop(AugmentRng& rng) {
    if (items_.empty()) return std::nullopt;
    const size_t j = pick(rng);
    T item = std::move(items_[j]);
    items_[j] = std::move(items_.back());
    items_.pop_back();
    return item;
  }

  void clear() { items_.clear(); }

 private:
  size_t pick(AugmentRng& rng) const {
    return static_cast<size_t>(rng.uniform_int(0, static_cast<int>(items_.size()) - 1));
  }

  int64_t capacity_;
  std::vector<T> items_;
};

}  // namespace dalle

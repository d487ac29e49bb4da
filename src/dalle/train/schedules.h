// Learning-rate and annealing schedules (SPEC §1, §3).
#pragma once
#include <cmath>
#include <cstdint>

namespace dalle {

// Cosine from `start` to `end` over `length` steps, then held at `end`.
inline double cosine_schedule(int64_t step, double start, double end, int64_t length) {
  if (length <= 0 || step >= length) return end;
  const double t = static_cast<double>(step) / static_cast<double>(length);
  return end + (start - end) * 0.5 * (1.0 + std::cos(M_PI * t));
}

// Linear warm-up from 0 to `peak` over `warmup` steps (step is 0-based: the first update uses
// peak / warmup).
inline double warmup_factor(int64_t step, int64_t warmup) {
  if (warmup <= 0 || step >= warmup) return 1.0;
  return static_cast<double>(step + 1) / static_cast<double>(warmup);
}

// Halve the learning rate whenever the mean training loss over a window of steps fails to
// improve on the best window by at least `min_improvement` (relative), up to `max_halvings`.
class PlateauHalver {
 public:
  PlateauHalver(int64_t window, int max_halvings, double min_improvement = 0.01)
      : window_(window), max_halvings_(max_halvings), min_improvement_(min_improvement) {}

  void observe(double loss) {
    sum_ += loss;
    if (++count_ < window_) return;
    const double mean = sum_ / static_cast<double>(count_);
    sum_ = 0;
    count_ = 0;
    if (best_ <= 0 || mean < best_ * (1.0 - min_improvement_)) {
      best_ = mean;
    } else if (halvings_ < max_halvings_) {
      ++halvings_;
      best_ = mean;
    }
  }
  double factor() const { return std::ldexp(1.0, -halvings_); }
  int halvings() const { return halvings_; }

  // Serialised state for exact resume.
  double best_ = 0;
  double sum_ = 0;
  int64_t count_ = 0;
  int halvings_ = 0;

 private:
  int64_t window_;
  int max_halvings_;
  double min_improvement_;
};

}  // namespace dalle

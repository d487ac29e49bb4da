// Training-time augmentation, scaled to any target side T (the paper's numbers are for T = 256):
//   dVAE (SPEC §1): random square crop of the short side s, resize to a random side in
//     [min(s, 288/256·T), min(s, 384/256·T)], random crop to T, random horizontal flip.
//   prior (SPEC §3): near-centre square crop, resize to a random side in [T, min(s, 1.125·T)],
//     random crop to T, no flip (images may contain text).
//   centre: centre square crop resized to T (evaluation, token encoding).
// A resize side below T (small images) becomes T, so the final crop always fits. Every random
// choice comes from a seed, through our own generator, so the same seed gives the same pixels on
// every platform.
#pragma once
#include <cstdint>

#include "dalle/io/image.h"

namespace dalle {

enum class AugmentKind { dvae, prior, centre };

// splitmix64: tiny, fast, and the same sequence everywhere (std:: distributions are not).
class AugmentRng {
 public:
  explicit AugmentRng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform integer in [lo, hi] (hi >= lo).
  int uniform_int(int lo, int hi);
  double uniform01();

 private:
  uint64_t state_;
};

// The random choices for one image, separate from the pixel work so tests can check ranges.
struct AugmentParams {
  int crop_x = 0, crop_y = 0, crop_side = 0;  // square crop of the source
  int resize_side = 0;                        // the square is resized to this
  int x = 0, y = 0;                           // final T×T crop inside the resized square
  bool flip = false;
};

AugmentParams augment_params(int width, int height, int target, AugmentKind kind, AugmentRng& rng);
Image augment_apply(const Image& image, const AugmentParams& params, int target);
Image augment_image(const Image& image, int target, AugmentKind kind, uint64_t seed);

// One seed per (run seed, epoch, sample): independent streams without shared state.
uint64_t augment_seed(uint64_t seed, int64_t epoch, int64_t index);

}  // namespace dalle

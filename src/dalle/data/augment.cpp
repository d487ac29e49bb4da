#include "dalle/data/augment.h"

#include <stb/stb_image_resize.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "dalle/util/error.h"

namespace dalle {

uint64_t AugmentRng::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int AugmentRng::uniform_int(int lo, int hi) {
  if (hi <= lo) return lo;
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  // Multiply-shift: unbiased enough for crop offsets (span < 2^32), and portable.
  return lo + static_cast<int>(((next() >> 32) * span) >> 32);
}

double AugmentRng::uniform01() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

uint64_t augment_seed(uint64_t seed, int64_t epoch, int64_t index) {
  AugmentRng a(seed ^ 0x6a09e667f3bcc909ull);
  const uint64_t s1 = a.next() ^ static_cast<uint64_t>(epoch);
  AugmentRng b(s1 * 0xbb67ae8584caa73bull);
  return b.next() ^ (static_cast<uint64_t>(index) * 0x3c6ef372fe94f82bull);
}

AugmentParams augment_params(int w, int h, int target, AugmentKind kind, AugmentRng& rng) {
  if (w <= 0 || h <= 0 || target <= 0) throw Error("augment: empty image or target");
  AugmentParams p;
  const int s = std::min(w, h);
  p.crop_side = s;
  auto scaled = [&](double factor) { return std::min(s, static_cast<int>(std::lround(factor * target))); };
  switch (kind) {
    case AugmentKind::dvae: {
      p.crop_x = rng.uniform_int(0, w - s);
      p.crop_y = rng.uniform_int(0, h - s);
      p.resize_side = rng.uniform_int(scaled(288.0 / 256.0), scaled(384.0 / 256.0));
      break;
    }
    case AugmentKind::prior: {
      // Near the centre: the square's offset varies by at most 1/8 of the slack on each side.
      const int jx = (w - s) / 8, jy = (h - s) / 8;
      p.crop_x = (w - s) / 2 + rng.uniform_int(-jx, jx);
      p.crop_y = (h - s) / 2 + rng.uniform_int(-jy, jy);
      p.resize_side = rng.uniform_int(std::min(s, target), scaled(1.125));
      break;
    }
    case AugmentKind::centre:
      p.crop_x = (w - s) / 2;
      p.crop_y = (h - s) / 2;
      p.resize_side = target;
      break;
  }
  p.resize_side = std::max(p.resize_side, target);
  if (kind != AugmentKind::centre) {
    p.x = rng.uniform_int(0, p.resize_side - target);
    p.y = rng.uniform_int(0, p.resize_side - target);
  }
  p.flip = kind == AugmentKind::dvae && (rng.next() >> 63) != 0;
  return p;
}

Image augment_apply(const Image& image, const AugmentParams& p, int target) {
  if (p.crop_x < 0 || p.crop_y < 0 || p.crop_x + p.crop_side > image.width ||
      p.crop_y + p.crop_side > image.height || p.x + target > p.resize_side || p.y + target > p.resize_side)
    throw Error("augment: crop outside the image");
  const uint8_t* crop = image.at(p.crop_x, p.crop_y);
  std::vector<uint8_t> resized;
  const uint8_t* src = crop;
  int stride = image.width * 3;
  if (p.resize_side != p.crop_side) {
    resized.resize(static_cast<size_t>(p.resize_side) * p.resize_side * 3);
    if (!stbir_resize_uint8(crop, p.crop_side, p.crop_side, stride, resized.data(), p.resize_side,
                            p.resize_side, 0, 3))
      throw Error("augment: resize failed");
    src = resized.data();
    stride = p.resize_side * 3;
  }
  Image out;
  out.width = out.height = target;
  out.pixels.resize(static_cast<size_t>(target) * target * 3);
  for (int y = 0; y < target; ++y) {
    const uint8_t* row = src + static_cast<size_t>(p.y + y) * stride + static_cast<size_t>(p.x) * 3;
    uint8_t* dst = out.at(0, y);
    if (!p.flip) {
      std::memcpy(dst, row, static_cast<size_t>(target) * 3);
    } else {
      for (int x = 0; x < target; ++x) std::memcpy(dst + x * 3, row + (target - 1 - x) * 3, 3);
    }
  }
  return out;
}

Image augment_image(const Image& image, int target, AugmentKind kind, uint64_t seed) {
  AugmentRng rng(seed);
  return augment_apply(image, augment_params(image.width, image.height, target, kind, rng), target);
}

}  // namespace dalle

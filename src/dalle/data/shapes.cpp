#include "dalle/data/shapes.h"

#include "dalle/data/tar_shards.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/util/threads.h"

namespace dalle {

namespace {

enum Shape { kCircle, kSquare, kTriangle, kDiamond, kStar, kHexagon, kCross, kHeart, kShapeCount };

struct Colour {
  const char* name;
  uint8_t r, g, b;
};

const Colour kColours[] = {{"red", 220, 40, 40},     {"orange", 245, 140, 30},
                           {"yellow", 240, 215, 40}, {"green", 50, 170, 60},
                           {"blue", 40, 80, 225},    {"purple", 140, 60, 190},
                           {"pink", 245, 130, 185},  {"white", 248, 248, 248}};
constexpr int kColourCount = 8;

const Colour kBackgrounds[] = {{"gray", 190, 190, 190},  {"dark gray", 70, 70, 70},
                               {"beige", 225, 210, 180}, {"navy", 25, 30, 75},
                               {"cream", 250, 244, 222}, {"slate", 95, 105, 125},
                               {"black", 18, 18, 18},    {"teal", 40, 120, 120},
                               {"brown", 105, 70, 45}};
constexpr int kBackgroundCount = 9;

const char* const kShapeWords[kShapeCount][2] = {
    {"circle", "disk"}, {"square", "square"},  {"triangle", "triangle"}, {"diamond", "rhombus"},
    {"star", "star"},   {"hexagon", "hexagon"}, {"cross", "plus sign"},  {"heart", "heart"}};

// Named positions: centre coordinates in [0, 1] and the phrases that describe them.
struct Position {
  double x, y;
  std::vector<const char*> phrases;
};

const std::vector<Position>& positions() {
  static const std::vector<Position> p = {
      {0.5, 0.5, {"in the center", "in the middle", "in the centre of the image"}},
      {0.28, 0.28, {"in the top left corner", "at the top left", "in the upper left"}},
      {0.72, 0.28, {"in the top right corner", "at the top right", "in the upper right"}},
      {0.28, 0.72, {"in the bottom left corner", "at the bottom left", "in the lower left"}},
      {0.72, 0.72, {"in the bottom right corner", "at the bottom right", "in the lower right"}}};
  return p;
}

// Held-out (colour, shape) pairs by index.
const std::vector<std::pair<int, int>>& heldout_index_pairs() {
  static const std::vector<std::pair<int, int>> p = {{3, kCircle}, {2, kSquare}, {4, kTriangle},
                                                      {5, kStar},   {1, kHeart},  {6, kHexagon}};
  return p;
}

bool is_heldout(int colour, int shape) {
  for (const auto& [c, s] : heldout_index_pairs())
    if (c == colour && s == shape) return true;
  return false;
}

bool inside_polygon(double u, double v, const double (*pts)[2], int n) {
  bool in = false;
  for (int i = 0, j = n - 1; i < n; j = i++) {
    if (((pts[i][1] > v) != (pts[j][1] > v)) &&
        (u < (pts[j][0] - pts[i][0]) * (v - pts[i][1]) / (pts[j][1] - pts[i][1]) + pts[i][0]))
      in = !in;
  }
  return in;
}

// (u, v): offset from the shape's centre over its radius, v pointing down.
bool inside(int shape, double u, double v) {
  switch (shape) {
    case kCircle: return u * u + v * v <= 1.0;
    case kSquare: return std::fabs(u) <= 0.85 && std::fabs(v) <= 0.85;
    case kDiamond: return std::fabs(u) + std::fabs(v) <= 1.0;
    case kTriangle: {
      // Apex up; vertices (0,-1), (0.95,0.75), (-0.95,0.75).
      if (v > 0.75) return false;
      return std::fabs(u) <= 0.95 * (v + 1.0) / 1.75;
    }
    case kHexagon: {
      const double au = std::fabs(u), av = std::fabs(v);
      return av <= 0.866 && 0.866 * au + 0.5 * av <= 0.866;
    }
    case kCross: {
      const double au = std::fabs(u), av = std::fabs(v);
      return (au <= 0.3 && av <= 0.95) || (av <= 0.3 && au <= 0.95);
    }
    case kStar: {
      static double pts[10][2];
      static const bool init = [] {
        for (int i = 0; i < 10; ++i) {
          const double a = -M_PI / 2 + i * M_PI / 5;
          const double r = (i % 2 == 0) ? 1.0 : 0.42;
          pts[i][0] = r * std::cos(a);
          pts[i][1] = r * std::sin(a) + 0.08;
        }
        return true;
      }();
      (void)init;
      return inside_polygon(u, v, pts, 10);
    }
    case kHeart: {
      const double x = 1.15 * u, y = -1.1 * v + 0.15;
      const double a = x * x + y * y - 1.0;
      return a * a * a - x * x * y * y * y <= 0.0;
    }
  }
  return false;
}

struct Object {
  int shape, colour;
  bool large;
  double cx, cy, radius;  // pixels
  uint8_t rgb[3];
};

uint8_t jitter(uint8_t base, std::mt19937_64& rng, int amount) {
  std::uniform_int_distribution<int> d(-amount, amount);
  return static_cast<uint8_t>(std::clamp(int(base) + d(rng), 0, 255));
}

// 3x3 supersampling inside the object's bounding box gives anti-aliased edges.
void draw(Image& img, const Object& o) {
  const int x0 = std::max(0, int(std::floor(o.cx - o.radius - 1)));
  const int x1 = std::min(img.width - 1, int(std::ceil(o.cx + o.radius + 1)));
  const int y0 = std::max(0, int(std::floor(o.cy - o.radius - 1)));
  const int y1 = std::min(img.height - 1, int(std::ceil(o.cy + o.radius + 1)));
  for (int y = y0; y <= y1; ++y) {
    for (int x = x0; x <= x1; ++x) {
      int hits = 0;
      for (int sy = 0; sy < 3; ++sy)
        for (int sx = 0; sx < 3; ++sx) {
          const double px = x + (sx + 0.5) / 3.0, py = y + (sy + 0.5) / 3.0;
          hits += inside(o.shape, (px - o.cx) / o.radius, (py - o.cy) / o.radius);
        }
      if (!hits) continue;
      uint8_t* p = img.at(x, y);
      for (int c = 0; c < 3; ++c) p[c] = static_cast<uint8_t>((p[c] * (9 - hits) + o.rgb[c] * hits + 4) / 9);
    }
  }
}

double colour_distance(const Colour& a, const Colour& b) {
  const double dr = a.r - b.r, dg = a.g - b.g, db = a.b - b.b;
  return std::sqrt(dr * dr + dg * dg + db * db);
}

template <typename T>
const T& pick(const std::vector<T>& v, std::mt19937_64& rng) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}

std::string article(const std::string& word) {
  return std::string("aeiou").find(word[0]) != std::string::npos ? "an " + word : "a " + word;
}

std::string object_phrase(const Object& o, std::mt19937_64& rng, bool with_size) {
  const std::string shape = kShapeWords[o.shape][std::uniform_int_distribution<int>(0, 1)(rng)];
  std::string words = kColours[o.colour].name + std::string(" ") + shape;
  if (with_size) {
    static const std::vector<const char*> small = {"small", "little"}, large = {"large", "big"};
    words = std::string(o.large ? pick(large, rng) : pick(small, rng)) + " " + words;
  }
  return article(words);
}

std::vector<std::string> single_captions(const Object& o, const Position& pos,
                                         const Colour& bg, int count, std::mt19937_64& rng) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    const std::string where = pick(pos.phrases, rng);
    std::string c;
    switch (std::uniform_int_distribution<int>(0, 7)(rng)) {
      case 0: c = object_phrase(o, rng, true) + " " + where; break;
      case 1: c = object_phrase(o, rng, false) + " " + where; break;
      case 2: c = object_phrase(o, rng, true); break;
      case 3: c = object_phrase(o, rng, false); break;
      case 4: c = "a picture of " + object_phrase(o, rng, true) + " " + where; break;
      case 5: c = "there is " + object_phrase(o, rng, true) + " " + where; break;
      case 6: c = object_phrase(o, rng, false) + " on " + article(bg.name) + " background"; break;
      default: c = object_phrase(o, rng, true) + " " + where + " on " + article(bg.name) + " background";
    }
    out.push_back(c);
  }
  return out;
}

// relation: 0 = a above b, 1 = a left of b. Captions may state it from either side.
std::vector<std::string> pair_captions(const Object& a, const Object& b, int relation, int count,
                                       std::mt19937_64& rng) {
  static const std::vector<const char*> above = {"above", "over"}, below = {"below", "under", "beneath"},
                                        left = {"to the left of", "left of"},
                                        right = {"to the right of", "right of"};
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    const bool flip = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    const bool sizes = std::uniform_int_distribution<int>(0, 2)(rng) == 0;
    const Object& first = flip ? b : a;
    const Object& second = flip ? a : b;
    const char* rel = relation == 0 ? (flip ? pick(below, rng) : pick(above, rng))
                                    : (flip ? pick(right, rng) : pick(left, rng));
    std::string c = object_phrase(first, rng, sizes) + " " + rel + " " + object_phrase(second, rng, sizes);
    if (std::uniform_int_distribution<int>(0, 4)(rng) == 0) c = "a picture of " + c;
    out.push_back(c);
  }
  return out;
}

}  // namespace

const std::vector<std::string>& shapes_names() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> n;
    for (int s = 0; s < kShapeCount; ++s) n.push_back(kShapeWords[s][0]);
    return n;
  }();
  return v;
}

const std::vector<std::string>& shapes_colour_names() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> n;
    for (const auto& c : kColours) n.push_back(c.name);
    return n;
  }();
  return v;
}

const std::vector<std::pair<std::string, std::string>>& shapes_heldout_pairs() {
  static const std::vector<std::pair<std::string, std::string>> v = [] {
    std::vector<std::pair<std::string, std::string>> n;
    for (const auto& [c, s] : heldout_index_pairs()) n.emplace_back(kColours[c].name, kShapeWords[s][0]);
    return n;
  }();
  return v;
}

bool shapes_pair_heldout(int colour, int shape) { return is_heldout(colour, shape); }

namespace {

// A stream per (seed, split, index): any subset of indices renders identically.
std::mt19937_64 render_stream(int64_t index, const ShapesOptions& options) {
  std::seed_seq seq{static_cast<uint32_t>(options.seed), static_cast<uint32_t>(options.seed >> 32),
                    static_cast<uint32_t>(options.split), static_cast<uint32_t>(index),
                    static_cast<uint32_t>(static_cast<uint64_t>(index) >> 32)};
  return std::mt19937_64(seq);
}

// Draws `objects` (colour, shape and size chosen) as `relation` says (-1 with two objects:
// drawn here, where shapes_render always drew it, so its images stay as they were), with the
// rest of the image's randomness from `rng`.
ShapesSample render(std::vector<Object> objects, int relation, const ShapesOptions& options, std::mt19937_64& rng) {
  const int s = options.size;
  // A background that contrasts with every object.
  const Colour* bg = nullptr;
  for (;;) {
    bg = &kBackgrounds[std::uniform_int_distribution<int>(0, kBackgroundCount - 1)(rng)];
    bool contrast = true;
    for (const auto& o : objects) contrast &= colour_distance(*bg, kColours[o.colour]) > 110;
    if (contrast) break;
  }

  Image img;
  img.width = img.height = s;
  img.pixels.resize(static_cast<size_t>(s) * s * 3);
  const uint8_t br = jitter(bg->r, rng, 10), bgg = jitter(bg->g, rng, 10), bb = jitter(bg->b, rng, 10);
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    img.pixels[i] = br;
    img.pixels[i + 1] = bgg;
    img.pixels[i + 2] = bb;
  }
  std::uniform_real_distribution<double> wobble(-0.03, 0.03);
  for (auto& o : objects) {
    const Colour& c = kColours[o.colour];
    o.rgb[0] = jitter(c.r, rng, 12);
    o.rgb[1] = jitter(c.g, rng, 12);
    o.rgb[2] = jitter(c.b, rng, 12);
  }

  ShapesSample sample;
  if (objects.size() == 1) {
    Object& o = objects[0];
    const auto& pos_list = positions();
    const Position& pos = pos_list[std::uniform_int_distribution<size_t>(0, pos_list.size() - 1)(rng)];
    o.radius = (o.large ? 0.21 : 0.12) * s;
    o.cx = (pos.x + wobble(rng)) * s;
    o.cy = (pos.y + wobble(rng)) * s;
    draw(img, o);
    sample.captions = single_captions(o, pos, *bg, options.captions_per_image, rng);
  } else {
    if (relation < 0) relation = std::uniform_int_distribution<int>(0, 1)(rng);
    const double along = 0.5 + wobble(rng);
    for (int i = 0; i < 2; ++i) {
      Object& o = objects[static_cast<size_t>(i)];
      o.radius = (o.large ? 0.19 : 0.12) * s;
      const double lead = (i == 0 ? 0.27 : 0.73) + wobble(rng);
      o.cx = (relation == 0 ? along + wobble(rng) : lead) * s;
      o.cy = (relation == 0 ? lead : along + wobble(rng)) * s;
      draw(img, o);
    }
    sample.captions = pair_captions(objects[0], objects[1], relation, options.captions_per_image, rng);
    sample.scene.relation = relation;
  }
  for (const Object& o : objects) sample.scene.objects.push_back({o.colour, o.shape});
  sample.image = std::move(img);
  return sample;
}

}  // namespace

ShapesSample shapes_render(int64_t index, const ShapesOptions& options) {
  std::mt19937_64 rng = render_stream(index, options);
  const bool heldout = options.split == ShapesSplit::heldout;
  const bool two = std::uniform_int_distribution<int>(0, 9)(rng) < 4;
  std::vector<Object> objects(two ? 2 : 1);
  for (;;) {
    bool any_heldout = false, ok = true;
    for (auto& o : objects) {
      o.shape = std::uniform_int_distribution<int>(0, kShapeCount - 1)(rng);
      o.colour = std::uniform_int_distribution<int>(0, kColourCount - 1)(rng);
      o.large = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
      const bool h = is_heldout(o.colour, o.shape);
      any_heldout |= h;
      if (h && !heldout) ok = false;
    }
    if (ok && (!heldout || any_heldout)) break;
  }
  return render(std::move(objects), -1, options, rng);
}

ShapesSample shapes_render_scene(const ShapesScene& scene, int64_t index, const ShapesOptions& options) {
  if (scene.objects.empty() || scene.objects.size() > 2 || (scene.objects.size() == 2 && (scene.relation < 0 || scene.relation > 1)))
    throw Error("shapes: a scene has one object, or two with relation 0 (above) or 1 (left of)");
  std::mt19937_64 rng = render_stream(index, options);
  std::vector<Object> objects;
  for (const ShapesObject& so : scene.objects) {
    if (so.colour < 0 || so.colour >= kColourCount || so.shape < 0 || so.shape >= kShapeCount)
      throw Error("shapes: colour or shape index out of range");
    Object o{};
    o.colour = so.colour;
    o.shape = so.shape;
    o.large = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    objects.push_back(o);
  }
  return render(std::move(objects), scene.relation, options, rng);
}

void shapes_write(const std::string& dir, const ShapesOptions& options,
                  const std::function<void(int64_t)>& progress) {
  make_dirs(dir);
  const int threads = options.threads > 0 ? options.threads : default_thread_count();
  // Work units: one image (a folder of files) or one shard of `shard_size` images.
  const int64_t per_unit = options.shard_size > 0 ? options.shard_size : 1;
  const int64_t units = (options.count + per_unit - 1) / per_unit;
  std::atomic<int64_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::string failure;
  std::mutex failure_mutex;
  auto write_unit = [&](int64_t unit) {
    char name[32];
    const int64_t first = unit * per_unit, last = std::min(options.count, first + per_unit);
    if (options.shard_size > 0) {
      std::snprintf(name, sizeof(name), "shard-%06lld.tar", static_cast<long long>(unit));
      TarShardWriter writer(path_join(dir, name));  // written to a temporary name, renamed when complete
      for (int64_t i = first; i < last && !failed; ++i) {
        ShapesSample sample = shapes_render(i, options);
        std::snprintf(name, sizeof(name), "%09lld", static_cast<long long>(i));
        const std::vector<uint8_t> png = image_encode_png(sample.image);
        std::string text;
        for (const auto& c : sample.captions) text += c + '\n';
        writer.add(std::string(name) + ".png", png.data(), png.size());
        writer.add(std::string(name) + ".txt", text.data(), text.size());
        ++done;
      }
      writer.close();
      return;
    }
    ShapesSample sample = shapes_render(first, options);
    std::snprintf(name, sizeof(name), "%06lld", static_cast<long long>(first));
    const std::string base = path_join(dir, name);
    const std::vector<uint8_t> png = image_encode_png(sample.image);
    std::ofstream img_out(base + ".png", std::ios::binary);
    img_out.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
    std::ofstream txt_out(base + ".txt");
    for (const auto& c : sample.captions) txt_out << c << '\n';
    if (!img_out || !txt_out) throw file_error(base + ".png", "write failed");
    ++done;
  };
  auto worker = [&] {
    for (;;) {
      const int64_t unit = next.fetch_add(1);
      if (unit >= units || failed) return;
      try {
        write_unit(unit);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failed.exchange(true)) failure = e.what();
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  while (done < options.count && !failed) {
    if (progress) progress(done);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : pool) t.join();
  if (failed) throw Error(failure);
  if (progress) progress(done);
}

}  // namespace dalle

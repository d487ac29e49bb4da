// The shapes dataset: one or two coloured shapes on a plain background with varied English
// captions from templates and synonyms. A fixed set of (colour, shape) pairs never appears in
// the train split, in images or captions, so zero-shot composition can be measured on the
// heldout split. Each image depends only on (seed, split, index): deterministic and parallel.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dalle/io/image.h"

namespace dalle {

enum class ShapesSplit { train, heldout };

struct ShapesOptions {
  int64_t count = 1000;
  int size = 64;
  uint64_t seed = 0;
  ShapesSplit split = ShapesSplit::train;
  int captions_per_image = 3;
  int threads = 0;  // 0 = all cores
  // > 0: write WebDataset tar shards of this many images (shard-NNNNNN.tar, members
  // NNNNNNNNN.png + .txt) instead of a folder of files: what a million images need.
  int64_t shard_size = 0;
};

// What an image shows, by index into shapes_colour_names() and shapes_names().
struct ShapesObject {
  int colour = 0;
  int shape = 0;
};

// The scene of one image: one object, or two side by side (the first above or left of the
// second). The ground truth that `dalle eval` judges samples against.
struct ShapesScene {
  std::vector<ShapesObject> objects;
  int relation = -1;  // two objects: 0 = first above second, 1 = first left of second
};

struct ShapesSample {
  Image image;
  std::vector<std::string> captions;
  ShapesScene scene;
};

const std::vector<std::string>& shapes_names();
const std::vector<std::string>& shapes_colour_names();
// The (colour, shape) pairs kept out of the train split.
const std::vector<std::pair<std::string, std::string>>& shapes_heldout_pairs();

ShapesSample shapes_render(int64_t index, const ShapesOptions& options);
// A given scene, with size, position, background and colour jitter drawn from (seed, index) as
// shapes_render draws them; options.split is ignored.
ShapesSample shapes_render_scene(const ShapesScene& scene, int64_t index, const ShapesOptions& options);
// Whether (colour, shape) is kept out of the train split.
bool shapes_pair_heldout(int colour, int shape);

// Writes NNNNNN.png and NNNNNN.txt (one caption per line) into `dir`, or tar shards of them
// (options.shard_size). `progress(done)` is called from the writing threads' coordinator.
void shapes_write(const std::string& dir, const ShapesOptions& options,
                  const std::function<void(int64_t)>& progress = {});

}  // namespace dalle

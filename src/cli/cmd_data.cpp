// dalle data: datasets. `shapes` renders the synthetic shapes dataset.
#include <cstdio>

#include "cli/command.h"
#include "dalle/data/shapes.h"
#include "dalle/util/error.h"
#include "dalle/util/progress.h"

namespace dalle::cli {

namespace {

struct ShapesFlags {
  int64_t count = 10000;
  std::string out;
  int size = 64;
  int64_t seed = 0;
  std::string split = "train";
  int captions = 3;
  int threads = 0;
};

int run_shapes(const ShapesFlags& f) {
  ShapesOptions o;
  o.count = f.count;
  o.size = f.size;
  o.seed = static_cast<uint64_t>(f.seed);
  o.split = f.split == "heldout" ? ShapesSplit::heldout : ShapesSplit::train;
  o.captions_per_image = f.captions;
  o.threads = f.threads;
  ProgressBar bar("shapes", f.count, "img");
  shapes_write(f.out, o, [&](int64_t done) { bar.update(done); });
  bar.finish();
  std::fprintf(stderr, "data shapes: wrote %lld %s images to %s (%.0f img/s)\n", static_cast<long long>(f.count),
               f.split.c_str(), f.out.c_str(), f.count / std::max(bar.elapsed_seconds(), 1e-9));
  return 0;
}

int not_yet(const char* what) {
  throw Error(std::string("`dalle data ") + what + "` is not implemented yet (planned in issue 4)");
}

}  // namespace

void register_data(CLI::App& app, Action& action) {
  static ShapesFlags f;
  CLI::App* data = app.add_subcommand("data", "Datasets: render shapes, prepare image-caption data");
  data->require_subcommand(1);
  CLI::App* shapes = data->add_subcommand("shapes", "Render the synthetic shapes dataset (PNG + .txt captions)");
  shapes->add_option("-n,--count", f.count, "Number of images")->capture_default_str()->check(CLI::PositiveNumber);
  shapes->add_option("-o,--output", f.out, "Output folder (NNNNNN.png + NNNNNN.txt)")->required();
  shapes->add_option("--size", f.size, "Image side in pixels")->capture_default_str()->check(CLI::Range(16, 1024));
  shapes->add_option("-s,--seed", f.seed, "Random seed (same seed, same images)")->capture_default_str();
  shapes->add_option("--split", f.split,
                     "train: never uses the held-out (colour, shape) pairs; heldout: only scenes that do")
      ->capture_default_str()->check(CLI::IsMember({"train", "heldout"}));
  shapes->add_option("--captions", f.captions, "Captions per image (lines of the .txt)")
      ->capture_default_str()->check(CLI::Range(1, 16));
  add_threads_option(shapes, f.threads);
  shapes->callback([&action] { action = [] { return run_shapes(f); }; });

  CLI::App* prepare = data->add_subcommand("prepare", "Filter and shard image-caption data (not implemented yet)");
  prepare->allow_extras();
  prepare->callback([&action] { action = [] { return not_yet("prepare"); }; });
  CLI::App* emoji = data->add_subcommand("emoji", "Build the emoji dataset from npm packages (not implemented yet)");
  emoji->allow_extras();
  emoji->callback([&action] { action = [] { return not_yet("emoji"); }; });
}

}  // namespace dalle::cli

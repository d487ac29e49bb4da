// dalle data: datasets. `shapes` renders the synthetic shapes dataset, `prepare` filters and
// shards image-caption data, `emoji` builds the emoji dataset from npm packages.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "dalle/data/emoji.h"
#include "dalle/data/prepare.h"
#include "dalle/data/shapes.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
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
  int64_t shards = 0;
};

int run_shapes(const ShapesFlags& f) {
  ShapesOptions o;
  o.count = f.count;
  o.size = f.size;
  o.seed = static_cast<uint64_t>(f.seed);
  o.split = f.split == "heldout" ? ShapesSplit::heldout : ShapesSplit::train;
  o.captions_per_image = f.captions;
  o.threads = f.threads;
  o.shard_size = f.shards;
  ProgressBar bar("shapes", f.count, "img");
  shapes_write(f.out, o, [&](int64_t done) { bar.update(done); });
  bar.finish();
  std::fprintf(stderr, "data shapes: wrote %lld %s images to %s (%.0f img/s)\n", static_cast<long long>(f.count),
               f.split.c_str(), f.out.c_str(), f.count / std::max(bar.elapsed_seconds(), 1e-9));
  return 0;
}

struct PrepareFlags {
  PrepareOptions o;
  std::string utf8 = "drop";
  bool no_english = false, no_boilerplate = false, no_dedup = false;
};

int run_prepare(PrepareFlags& f) {
  PrepareOptions& o = f.o;
  o.filters.english = !f.no_english;
  o.filters.boilerplate = !f.no_boilerplate;
  o.filters.dedup = !f.no_dedup;
  o.filters.utf8 = f.utf8 == "repair" ? Utf8Policy::repair : Utf8Policy::drop;
  std::fprintf(stderr, "data prepare: %s (%s) -> %s\n", o.input.c_str(),
               source_format_name(detect_source_format(o.input)), o.output.c_str());
  ProgressBar bar("prepare", 0, "img");
  const PrepareReport r = prepare_dataset(o, [&](int64_t seen, int64_t total) {
    bar.set_total(total > 0 ? total : seen);
    bar.update(seen);
  });
  bar.finish();
  const double pct = r.seen > 0 ? 100.0 * r.kept / r.seen : 0.0;
  std::fprintf(stderr, "data prepare: kept %lld of %lld images (%.1f%%) in %lld shard%s, %.1f MB, %.1f s (%.0f img/s)\n",
               static_cast<long long>(r.kept), static_cast<long long>(r.seen), pct,
               static_cast<long long>(r.shards), r.shards == 1 ? "" : "s", r.bytes_written / 1e6, r.seconds,
               r.seen / std::max(r.seconds, 1e-9));
  std::vector<std::pair<int64_t, std::string>> drops;
  for (const auto& [k, v] : r.dropped) drops.push_back({-v, k});
  std::sort(drops.begin(), drops.end());
  for (const auto& [neg, k] : drops) {
    const auto& ex = r.examples.at(k);
    std::fprintf(stderr, "  dropped %7lld  %-22s e.g. %s\n", static_cast<long long>(-neg), k.c_str(),
                 ex.empty() ? "" : ex.front().c_str());
  }
  if (r.utf8_repaired > 0)
    std::fprintf(stderr, "  repaired invalid UTF-8 in %lld captions\n", static_cast<long long>(r.utf8_repaired));
  std::fprintf(stderr, "data prepare: report in %s\n", path_join(o.output, "report.json").c_str());
  return 0;
}

struct EmojiFlags {
  EmojiOptions o;
  bool offline = false, no_skins = false;
};

int run_emoji(EmojiFlags& f) {
  f.o.fetch = !f.offline;
  f.o.skins = !f.no_skins;
  if (f.o.cache.empty()) f.o.cache = emoji_default_cache();
  std::fprintf(stderr, "data emoji: packages in %s\n", f.o.cache.c_str());
  ProgressBar bar("emoji", 0, "img");
  const EmojiReport r = emoji_build(f.o, [&](int64_t done, int64_t total) {
    bar.set_total(total);
    bar.update(done);
  });
  bar.finish();
  for (const auto& p : r.packs)
    std::fprintf(stderr, "  %-8s %s %s (%s): %lld images written, %lld without an English label, %lld undecodable\n",
                 p.pack.name.c_str(), p.pack.package.c_str(), p.resolved_version.c_str(), p.pack.license.c_str(),
                 static_cast<long long>(p.written), static_cast<long long>(p.no_label),
                 static_cast<long long>(p.undecodable));
  std::fprintf(stderr, "data emoji: wrote %lld images + captions (labels: emojibase-data %s) to %s; licences in %s\n",
               static_cast<long long>(r.written), r.labels_version.c_str(), f.o.output.c_str(),
               path_join(f.o.output, "LICENSES.md").c_str());
  return 0;
}

}  // namespace

void register_data(CLI::App& app, Action& action) {
  static ShapesFlags f;
  CLI::App* data = app.add_subcommand("data", "Datasets: render shapes, prepare image-caption data");
  data->require_subcommand(1);
  CLI::App* shapes = data->add_subcommand("shapes", "Render the synthetic shapes dataset (PNG + .txt captions)");
  shapes->add_option("-n,--count", f.count, "Number of images")->capture_default_str()->check(CLI::PositiveNumber);
  shapes->add_option("-o,--output", f.out, "Output folder (NNNNNN.png + NNNNNN.txt, or tar shards with --shards)")->required();
  shapes->add_option("--size", f.size, "Image side in pixels")->capture_default_str()->check(CLI::Range(16, 1024));
  shapes->add_option("-s,--seed", f.seed, "Random seed (same seed, same images)")->capture_default_str();
  shapes->add_option("--split", f.split,
                     "train: never uses the held-out (colour, shape) pairs; heldout: only scenes that do")
      ->capture_default_str()->check(CLI::IsMember({"train", "heldout"}));
  shapes->add_option("--captions", f.captions, "Captions per image (lines of the .txt)")
      ->capture_default_str()->check(CLI::Range(1, 16));
  shapes->add_option("--shards", f.shards,
                     "Write WebDataset tar shards of N images each (shard-NNNNNN.tar) instead of a folder of files "
                     "(0: files)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  add_threads_option(shapes, f.threads);
  add_progress_options(shapes);
  shapes->callback([&action] { action = [] { return run_shapes(f); }; });

  static PrepareFlags p;
  CLI::App* prepare = data->add_subcommand(
      "prepare", "Filter image-caption pairs (paper's collection filters), resize, write WebDataset shards + report.json");
  prepare->add_option("-i,--input", p.o.input,
                      "A folder of images + same-stem .txt, tar shards (a.tar, 'dir/{000..099}.tar', a folder of .tar), or a .tsv of path<TAB>caption")
      ->required();
  prepare->add_option("-o,--output", p.o.output, "Output folder: shard-NNNNNN.tar + report.json")->required();
  prepare->add_option("--max-side", p.o.max_side, "Shrink images so the longer side is at most this (0: keep)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  prepare->add_option("--shard-size", p.o.shard_size, "Samples per shard")->capture_default_str()->check(CLI::PositiveNumber);
  prepare->add_option("--image-format", p.o.image_format, "auto: PNG stays PNG, others become JPEG")
      ->capture_default_str()->check(CLI::IsMember({"auto", "png", "jpg"}));
  prepare->add_option("--jpeg-quality", p.o.jpeg_quality, "JPEG quality")->capture_default_str()->check(CLI::Range(1, 100));
  prepare->add_option("--min-words", p.o.filters.min_words, "Drop captions with fewer words (0: off)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  prepare->add_option("--max-caption-bytes", p.o.filters.max_caption_bytes, "Drop longer captions (0: off)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  prepare->add_flag("--no-english", p.no_english, "Keep captions cld2 detects as another language");
  prepare->add_flag("--no-boilerplate", p.no_boilerplate, "Keep mostly-boilerplate captions (dates, file names, URLs)");
  prepare->add_option("--boilerplate-fraction", p.o.filters.max_boilerplate_fraction,
                      "Drop captions whose words are more than this fraction boilerplate")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  prepare->add_option("--utf8", p.utf8, "Captions with invalid UTF-8: drop them, or repair (U+FFFD) and keep")
      ->capture_default_str()->check(CLI::IsMember({"drop", "repair"}));
  prepare->add_option("--min-aspect", p.o.filters.min_aspect, "Drop images with width/height below (0: off)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  prepare->add_option("--max-aspect", p.o.filters.max_aspect, "Drop images with width/height above (0: off)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  prepare->add_option("--min-side", p.o.filters.min_side, "Drop images whose shorter side is below (0: off)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  prepare->add_option("--max-pixels", p.o.filters.max_pixels, "Drop images whose header claims more pixels (checked before decoding)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  prepare->add_flag("--no-dedup", p.no_dedup, "Keep exact duplicate images");
  prepare->add_option("--limit", p.o.limit, "Stop after this many input samples");
  add_threads_option(prepare, p.o.threads);
  add_progress_options(prepare);
  prepare->callback([&action] { action = [] { return run_prepare(p); }; });
  static EmojiFlags e;
  CLI::App* emoji = data->add_subcommand(
      "emoji", "Build a text-image dataset from the 64x64 emoji of emoji-datasource-google/-twitter and emojibase-data labels (npm)");
  emoji->add_option("-o,--output", e.o.output, "Output folder (PACK-HEX.png + .txt, LICENSES.md, report.json)")->required();
  emoji->add_option("--cache", e.o.cache, "Folder for the npm .tgz packages (default: ~/.cache/dalle/npm)");
  emoji->add_option("--packs", e.o.packs, "Image packs")->delimiter(',')->capture_default_str()
      ->check(CLI::IsMember({"google", "twitter"}));
  emoji->add_flag("--offline", e.offline, "Never run npm; use the .tgz files already in the cache");
  emoji->add_flag("--no-skins", e.no_skins, "Leave out skin-tone variants");
  add_threads_option(emoji, e.o.threads);
  add_progress_options(emoji);
  emoji->callback([&action] { action = [] { return run_emoji(e); }; });
}

}  // namespace dalle::cli

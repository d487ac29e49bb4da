// `dalle data emoji`: a real text–image dataset from npm packages. The 64×64 PNGs of
// emoji-datasource-google (Noto Emoji, Apache-2.0) and emoji-datasource-twitter (Twemoji,
// CC-BY-4.0), version 16.x, joined by code point with the English labels and tags of
// emojibase-data 17.x (MIT). Output is an image folder (PACK-HEXCODE.png + .txt, alpha composited
// on white) that every `--data` flag reads, plus LICENSES.md and report.json naming each image
// pack's licence. Packages come from `npm pack` into a cache folder, or from .tgz files already
// there (offline use, tests).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace dalle {

struct EmojiPack {
  std::string name;         // "google"
  std::string package;      // "emoji-datasource-google"
  std::string version;      // npm range: "16"
  std::string license;      // SPDX id of the images
  std::string attribution;  // who made the images, and where the licence is
};

// The two packs of issue 4.
std::vector<EmojiPack> emoji_default_packs();

struct EmojiOptions {
  std::string output;
  std::string cache;                 // where the .tgz files are (and where npm pack puts them)
  std::vector<std::string> packs = {"google", "twitter"};
  std::string labels_package = "emojibase-data";
  std::string labels_version = "17";
  bool fetch = true;                 // run `npm pack` when a package is not in the cache
  bool skins = true;                 // include skin-tone variants
  int threads = 0;
};

struct EmojiPackReport {
  EmojiPack pack;
  std::string resolved_version;  // from the package's package.json
  int64_t images = 0;            // 64×64 PNGs in the package
  int64_t written = 0;
  int64_t no_label = 0;          // no emojibase entry for the code point
  int64_t undecodable = 0;
};

struct EmojiReport {
  std::vector<EmojiPackReport> packs;
  std::string labels_version;
  int64_t labels = 0;
  int64_t written = 0;
  nlohmann::json to_json() const;
};

// Default cache folder: $XDG_CACHE_HOME/dalle/npm, else $HOME/.cache/dalle/npm.
std::string emoji_default_cache();

// The newest `PACKAGE-VERSION.tgz` in `cache` whose version matches `version` (a major number or
// an exact version); runs `npm pack PACKAGE@VERSION` into `cache` first when there is none and
// `fetch` is set. Throws with the command to run by hand when it cannot.
std::string npm_package_tgz(const std::string& package, const std::string& version, const std::string& cache,
                            bool fetch);

// Captions for one emoji from its emojibase label and tags: the label ("grinning face with big
// eyes"), with an article ("a red apple", "the flag of Germany"), as "an emoji of ...", and the
// label followed by tags that add words.
std::vector<std::string> emoji_captions(const std::string& label, const std::vector<std::string>& tags);

EmojiReport emoji_build(const EmojiOptions& options, const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace dalle

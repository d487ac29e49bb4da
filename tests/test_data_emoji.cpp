// `data emoji` on small hand-made stand-ins for the npm packages (no network in tests), and
// the readers of image_folder.h on prepared shards.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dalle/data/emoji.h"
#include "dalle/data/image_folder.h"
#include "dalle/data/prepare.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "test_data_util.h"

using namespace dalle;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> rgba_png(int side, uint8_t r, uint8_t g, uint8_t b, uint8_t a) {
  std::vector<uint8_t> px(static_cast<size_t>(side) * side * 4);
  for (size_t i = 0; i < px.size(); i += 4) {
    px[i] = r;
    px[i + 1] = g;
    px[i + 2] = b;
    px[i + 3] = a;
  }
  std::vector<uint8_t> out;
  stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        auto* o = static_cast<std::vector<uint8_t>*>(ctx);
        o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &out, side, side, 4, px.data(), side * 4);
  return out;
}

// A cache folder with fake emoji-datasource-google 16.0.1 and emojibase-data 17.0.0 packages
// (npm .tgz files are tar + gzip; libarchive reads plain tar under that name just as well).
fs::path make_fake_cache(const fs::path& dir) {
  const fs::path cache = dir / "cache";
  make_dirs(cache.string());
  test::write_tar(cache / "emoji-datasource-google-16.0.1.tgz",
                  {{"package/package.json", test::bytes_of(R"({"name": "emoji-datasource-google", "version": "16.0.1"})")},
                   {"package/img/google/64/1f34e.png", rgba_png(64, 220, 20, 20, 255)},
                   {"package/img/google/64/1f44b-1f3fd.png", rgba_png(64, 200, 150, 100, 255)},
                   {"package/img/google/64/0023-fe0f-20e3.png", rgba_png(64, 0, 0, 0, 0)},
                   {"package/img/google/64/1f1e9-1f1ea.png", rgba_png(64, 0, 0, 0, 255)},
                   {"package/img/google/64/e000.png", rgba_png(64, 1, 2, 3, 255)},
                   {"package/img/google/32/1f34e.png", rgba_png(32, 220, 20, 20, 255)},
                   {"package/img/google/64/ffff.png", test::bytes_of("not a png")}});
  // An older version that must not be picked.
  test::write_tar(cache / "emoji-datasource-google-15.1.2.tgz", {{"package/package.json", test::bytes_of("{}")}});
  test::write_tar(cache / "emojibase-data-17.0.0.tgz",
                  {{"package/package.json", test::bytes_of(R"({"version": "17.0.0"})")},
                   {"package/en/data.json", test::bytes_of(R"([
                     {"label": "red apple", "hexcode": "1F34E", "tags": ["apple", "fruit", "red"]},
                     {"label": "waving hand", "hexcode": "1F44B", "tags": ["hand", "wave"],
                      "skins": [{"label": "waving hand: medium skin tone", "hexcode": "1F44B-1F3FD"}]},
                     {"label": "keycap: #", "hexcode": "0023-FE0F-20E3"},
                     {"label": "flag: Germany", "hexcode": "1F1E9-1F1EA", "tags": ["DE"]},
                     {"label": "invalid", "hexcode": "FFFF"}
                   ])")}});
  return cache;
}

}  // namespace

TEST(DataEmoji, CaptionsFromLabelsAndTags) {
  EXPECT_EQ(emoji_captions("red apple", {"apple", "diet", "food", "fruit", "health", "red", "ripe"}),
            (std::vector<std::string>{"red apple", "a red apple", "an emoji of a red apple",
                                      "red apple, diet, food, fruit, health"}));
  EXPECT_EQ(emoji_captions("grinning face with big eyes", {})[1], "a grinning face with big eyes");
  EXPECT_EQ(emoji_captions("ogre", {})[1], "an ogre");
  EXPECT_EQ(emoji_captions("flag: Germany", {})[1], "the flag of Germany");
  EXPECT_EQ(emoji_captions("people hugging", {})[1], "an emoji of people hugging");
  EXPECT_EQ(emoji_captions("waving hand: dark skin tone", {})[0], "waving hand, dark skin tone");
}

TEST(DataEmoji, BuildsAnImageFolderWithLicencesFromCachedPackages) {
  const fs::path dir = test::scratch_dir("emoji");
  EmojiOptions o;
  o.output = (dir / "out").string();
  o.cache = make_fake_cache(dir).string();
  o.packs = {"google"};
  o.fetch = false;
  o.threads = 2;
  const EmojiReport r = emoji_build(o);
  ASSERT_EQ(r.packs.size(), 1u);
  EXPECT_EQ(r.packs[0].resolved_version, "16.0.1");
  EXPECT_EQ(r.packs[0].images, 6);        // the 32px one is not counted
  EXPECT_EQ(r.packs[0].no_label, 1);      // e000
  EXPECT_EQ(r.packs[0].undecodable, 1);   // ffff
  EXPECT_EQ(r.written, 4);
  EXPECT_EQ(read_file_text((dir / "out/google-1f34e.txt").string()),
            "red apple\na red apple\nan emoji of a red apple\nred apple, fruit\n");
  EXPECT_EQ(read_caption_lines((dir / "out/google-1f1e9-1f1ea.txt").string())[1], "the flag of Germany");
  EXPECT_EQ(read_caption_lines((dir / "out/google-1f44b-1f3fd.txt").string())[0], "waving hand, medium skin tone");
  // Transparent pixels become white, not black.
  const Image keycap = image_load((dir / "out/google-0023-fe0f-20e3.png").string());
  EXPECT_EQ(keycap.width, 64);
  EXPECT_EQ(keycap.pixels[0], 255);
  const std::string licenses = read_file_text((dir / "out/LICENSES.md").string());
  EXPECT_NE(licenses.find("Apache-2.0"), std::string::npos);
  const auto j = nlohmann::json::parse(read_file_text((dir / "out/report.json").string()));
  EXPECT_EQ(j["packs"][0]["license"], "Apache-2.0");
  EXPECT_EQ(j["labels"]["version"], "17.0.0");
  EXPECT_EQ(emoji_default_packs()[1].license, "CC-BY-4.0");

  // The output is an ordinary image folder: prepare shards it, and image_set_load reads both.
  EXPECT_EQ(image_set_load((dir / "out").string(), 16, true, 1).images.size(0), 4);
  PrepareOptions p;
  p.input = (dir / "out").string();
  p.output = (dir / "shards").string();
  p.filters.min_words = 1;
  p.filters.english = false;
  const PrepareReport pr = prepare_dataset(p);
  EXPECT_EQ(pr.kept, 4);
  const ImageSet set = image_set_load((dir / "shards").string(), 16, true, 2);
  EXPECT_EQ(set.images.size(0), 4);
  EXPECT_EQ(set.captions[2], (std::vector<std::string>{"red apple", "a red apple", "an emoji of a red apple", "red apple, fruit"}));
  EXPECT_EQ(set.images[0][0][0][0].item<int>(), 255);  // the keycap (sorted first), on white
}

TEST(DataEmoji, MissingPackageOfflineIsOneClearError) {
  const fs::path dir = test::scratch_dir("emoji_offline");
  EmojiOptions o;
  o.output = (dir / "out").string();
  o.cache = (dir / "empty-cache").string();
  o.fetch = false;
  try {
    emoji_build(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("npm pack emojibase-data@17"), std::string::npos) << e.what();
  }
}

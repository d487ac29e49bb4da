// `data prepare` on crafted good and bad inputs: every sample is kept or counted under its
// reason, nothing is written outside OUT, and the run finishes.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>

#include "dalle/data/prepare.h"
#include "dalle/data/tar_shards.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "test_data_util.h"
#include "test_paths.h"
#include "test_util.h"

using namespace dalle;
namespace fs = std::filesystem;
using Counts = std::map<std::string, int64_t>;

namespace {

// Every sample of every shard in `dir`: key → captions text.
std::map<std::string, std::string> read_shards(const fs::path& dir, int64_t* images = nullptr) {
  std::map<std::string, std::string> out;
  auto source = open_sample_source(dir.string());
  RawSample s;
  int64_t n = 0;
  while (source->next(s)) {
    EXPECT_TRUE(s.reason.empty()) << s.detail;
    EXPECT_TRUE(s.has_image && s.has_caption) << s.key;
    out[s.key.substr(s.key.rfind(':') + 1)] = s.captions_text;
    n += s.has_image;
  }
  if (images) *images = n;
  return out;
}

// A folder holding 3 good pairs and one bad pair per reason; returns the expected drops.
Counts make_mixed_folder(const fs::path& d) {
  using namespace dalle::test;
  write_bytes(d / "good1.png", png_bytes(80, 80, 1));
  write_text(d / "good1.txt", "a striped square of many colours\n\n  a colourful test pattern here  \n");
  write_bytes(d / "good2.jpg", jpeg_bytes(120, 90, 2));
  write_text(d / "good2.txt", "a red and green gradient picture");
  write_bytes(d / "good3.png", png_bytes(64, 100, 3));
  write_text(d / "good3.txt", "a tall colourful rectangle with stripes\n");

  write_bytes(d / "bad_trunc_png.png", truncated(png_bytes(80, 80, 4), 0.5));
  write_text(d / "bad_trunc_png.txt", "a picture that was cut in half");
  write_bytes(d / "bad_trunc_jpg.jpg", truncated(jpeg_bytes(80, 80, 5), 0.6));
  write_text(d / "bad_trunc_jpg.txt", "a photo that was cut short");
  write_bytes(d / "bad_zero.png", {});
  write_text(d / "bad_zero.txt", "an empty file pretending to be an image");
  write_bytes(d / "bad_huge.png", png_claiming(100000, 100000));
  write_text(d / "bad_huge.txt", "a decompression bomb claiming ten gigapixels");
  write_text(d / "bad_notimage.jpg", "this is text, not a jpeg");
  write_text(d / "bad_notimage.txt", "a text file with an image name");
  write_bytes(d / "bad_tiny.png", png_bytes(16, 16, 6));
  write_text(d / "bad_tiny.txt", "a very small thumbnail image here");
  write_bytes(d / "bad_wide.png", png_bytes(200, 64, 7));
  write_text(d / "bad_wide.txt", "a very wide panorama of stripes");
  write_bytes(d / "zz_dup.png", png_bytes(80, 80, 1));  // sorts after good1, so good1 is the original
  write_text(d / "zz_dup.txt", "the same bytes as the first good image");
  write_bytes(d / "cap_short.png", png_bytes(80, 80, 8));
  write_text(d / "cap_short.txt", "a cat");
  write_bytes(d / "cap_french.png", png_bytes(80, 80, 9));
  write_text(d / "cap_french.txt", "un chat noir dort sur une table rouge");
  write_bytes(d / "cap_boiler.png", png_bytes(80, 80, 10));
  write_text(d / "cap_boiler.txt", "Photographed on March 4, 2021");
  write_bytes(d / "cap_empty.png", png_bytes(80, 80, 11));
  write_text(d / "cap_empty.txt", "\n  \n");
  write_bytes(d / "cap_utf8.png", png_bytes(80, 80, 12));
  write_text(d / "cap_utf8.txt", "a striped square with \xff\xfe broken bytes");
  write_bytes(d / "cap_long.png", png_bytes(80, 80, 13));
  write_text(d / "cap_long.txt", std::string(1 << 20, 'a'));  // 1 MiB: over the reader's bound
  write_bytes(d / "no_caption.png", png_bytes(80, 80, 14));
  write_text(d / "no_image.txt", "a caption whose image went missing");
  return {{"image_truncated", 2},     {"image_empty", 1},         {"image_too_many_pixels", 1},
          {"image_undecodable", 1},   {"image_too_small", 1},     {"aspect_ratio", 1},
          {"duplicate_image", 1},     {"caption_too_short", 1},   {"caption_not_english", 1},
          {"caption_boilerplate", 1}, {"caption_empty", 1},       {"caption_invalid_utf8", 1},
          {"caption_too_long", 1},    {"missing_caption", 1},     {"missing_image", 1}};
}

}  // namespace

TEST(DataPrepare, FolderWithGoodAndBadPairsKeepsExactlyTheGoodOnes) {
  const fs::path dir = test::scratch_dir("prepare_mixed");
  make_dirs((dir / "in").string());
  const Counts expected = make_mixed_folder(dir / "in");
  PrepareOptions o;
  o.input = (dir / "in").string();
  o.output = (dir / "out").string();
  o.shard_size = 2;
  o.threads = 2;
  const PrepareReport r = prepare_dataset(o);
  EXPECT_EQ(r.kept, 3);
  EXPECT_EQ(r.seen, 3 + 16);
  EXPECT_EQ(r.dropped, expected);
  int64_t drops = 0;
  for (const auto& [k, v] : r.dropped) drops += v;
  EXPECT_EQ(r.kept + drops, r.seen);
  EXPECT_EQ(r.shards, 2);

  // report.json says the same.
  const auto j = nlohmann::json::parse(read_file_text((dir / "out/report.json").string()));
  EXPECT_EQ(j["seen"], r.seen);
  EXPECT_EQ(j["kept"], 3);
  EXPECT_EQ(j["dropped"].get<Counts>(), expected);
  EXPECT_EQ(j["utf8_policy"], "drop");

  // The shards hold exactly the good images, captions normalised, several lines kept apart.
  int64_t images = 0;
  const auto shards = read_shards(dir / "out", &images);
  EXPECT_EQ(images, 3);
  ASSERT_EQ(shards.size(), 3u);
  EXPECT_EQ(shards.at("000000000"), "a striped square of many colours\na colourful test pattern here\n");
  EXPECT_EQ(shards.at("000000001"), "a red and green gradient picture\n");
}

TEST(DataPrepare, Utf8RepairModeKeepsAndCountsRepairedCaptions) {
  const fs::path dir = test::scratch_dir("prepare_repair");
  make_dirs((dir / "in").string());
  make_mixed_folder(dir / "in");
  PrepareOptions o;
  o.input = (dir / "in").string();
  o.output = (dir / "out").string();
  o.filters.utf8 = Utf8Policy::repair;
  o.threads = 1;
  const PrepareReport r = prepare_dataset(o);
  EXPECT_EQ(r.kept, 4);
  EXPECT_EQ(r.utf8_repaired, 1);
  EXPECT_EQ(r.dropped.count("caption_invalid_utf8"), 0u);
  bool found = false;
  for (const auto& [key, text] : read_shards(dir / "out"))
    found = found || text == "a striped square with \xef\xbf\xbd broken bytes\n";
  EXPECT_TRUE(found);
}

TEST(DataPrepare, SameResultForAnyThreadCountAndFiltersCanBeSwitchedOff) {
  const fs::path dir = test::scratch_dir("prepare_threads");
  make_dirs((dir / "in").string());
  make_mixed_folder(dir / "in");
  PrepareOptions o;
  o.input = (dir / "in").string();
  o.output = (dir / "out1").string();
  o.threads = 1;
  const PrepareReport a = prepare_dataset(o);
  o.output = (dir / "out3").string();
  o.threads = 3;
  const PrepareReport b = prepare_dataset(o);
  EXPECT_EQ(a.dropped, b.dropped);
  EXPECT_EQ(read_file_bytes((dir / "out1/shard-000000.tar").string()),
            read_file_bytes((dir / "out3/shard-000000.tar").string()));

  o.output = (dir / "loose").string();
  o.filters.english = o.filters.boilerplate = o.filters.dedup = false;
  o.filters.min_words = 0;
  o.filters.min_side = 0;
  o.filters.min_aspect = o.filters.max_aspect = 0;
  const PrepareReport c = prepare_dataset(o);
  EXPECT_EQ(c.kept, 3 + 6);  // good1..3 and the short, French, boilerplate, tiny, wide, duplicate ones
  EXPECT_EQ(c.dropped.count("caption_not_english"), 0u);
}

TEST(DataPrepare, TarWithUnsafeNamesAndMissingMembersWritesNothingOutsideOut) {
  const fs::path dir = test::scratch_dir("prepare_tar");
  make_dirs((dir / "in").string());
  const auto caption = test::bytes_of("a striped square of many colours");
  test::write_tar(dir / "in" / "shard-000000.tar",
                  {{"good1.png", test::png_bytes(80, 80, 1)},
                   {"good1.txt", caption},
                   {"good1.json", test::bytes_of("{}")},
                   {"../evil.png", test::png_bytes(80, 80, 2)},
                   {"../evil.txt", caption},
                   {"/tmp/dalle_evil_abs.png", test::png_bytes(80, 80, 3)},
                   {"/tmp/dalle_evil_abs.txt", caption},
                   {"sub/../../evil2.png", test::png_bytes(80, 80, 4)},
                   {"lonely.png", test::png_bytes(80, 80, 5)},
                   {"orphan.txt", caption},
                   {"dir/good2.jpg", test::jpeg_bytes(90, 80, 6)},
                   {"dir/good2.txt", caption}});
  // A second shard cut inside the data of its last image: what comes before the cut is read.
  const fs::path cut = dir / "in" / "shard-000001.tar";
  test::write_tar(cut, {{"a.png", test::png_bytes(80, 80, 7)}, {"a.txt", caption},
                        {"b.png", test::png_bytes(150, 150, 8)}, {"b.txt", caption}});
  const auto bytes = read_file_bytes(cut.string());
  write_file_atomic(cut.string(), bytes.data(), bytes.size() - 1024 - 1024 - 100);

  PrepareOptions o;
  o.input = (dir / "in" / "shard-000000.tar").string();
  o.output = (dir / "out").string();
  o.threads = 2;
  PrepareReport r = prepare_dataset(o);
  EXPECT_EQ(r.dropped, (Counts{{"unsafe_member_name", 3}, {"missing_caption", 1}, {"missing_image", 1}}));
  EXPECT_EQ(r.kept, 2);
  EXPECT_EQ(r.seen, 7);

  o.input = (dir / "in" / "shard-{000000..000001}.tar").string();
  r = prepare_dataset(o);
  EXPECT_EQ(r.dropped,
            (Counts{{"unsafe_member_name", 3}, {"missing_caption", 1}, {"missing_image", 1}, {"tar_corrupt", 1}}));
  EXPECT_EQ(r.kept, 3);
  EXPECT_EQ(r.seen, 9);
  EXPECT_FALSE(fs::exists(dir / "evil.png"));
  EXPECT_FALSE(fs::exists(dir / "in" / "evil.png"));
  EXPECT_FALSE(fs::exists(dir / "evil2.png"));
  EXPECT_FALSE(fs::exists("/tmp/dalle_evil_abs.png"));
  for (const auto& entry : fs::directory_iterator(dir / "out"))
    EXPECT_TRUE(entry.path().filename() == "report.json" || entry.path().extension() == ".tar") << entry.path();
}

TEST(DataPrepare, TsvRowsGroupCaptionsAndCountMalformedLines) {
  const fs::path dir = test::scratch_dir("prepare_tsv");
  make_dirs((dir / "img").string());
  test::write_bytes(dir / "img/a.png", test::png_bytes(80, 80, 1));
  test::write_bytes(dir / "img/b.jpg", test::jpeg_bytes(80, 80, 2));
  test::write_text(dir / "list.tsv",
                   "path\tcaption\n"
                   "img/a.png\ta striped square of many colours\n"
                   "img/a.png\tthe same square described again\n"
                   "this line has no tab\n"
                   "img/missing.png\ta caption for nothing at all\n"
                   "img/b.jpg\ta red and green gradient picture\r\n");
  PrepareOptions o;
  o.input = (dir / "list.tsv").string();
  o.output = (dir / "out").string();
  const PrepareReport r = prepare_dataset(o);
  EXPECT_EQ(r.seen, 4);
  EXPECT_EQ(r.kept, 2);
  EXPECT_EQ(r.dropped, (Counts{{"tsv_malformed_line", 1}, {"missing_image", 1}}));
  const auto shards = read_shards(dir / "out");
  EXPECT_EQ(shards.at("000000000"), "a striped square of many colours\nthe same square described again\n");
  EXPECT_EQ(shards.at("000000001"), "a red and green gradient picture\n");
}

TEST(DataPrepare, ImagesAreShrunkToTheMaximumSide) {
  const fs::path dir = test::scratch_dir("prepare_resize");
  make_dirs((dir / "in").string());
  test::write_bytes(dir / "in/big.png", test::png_bytes(300, 200, 1));
  test::write_text(dir / "in/big.txt", "a big striped rectangle of colours");
  PrepareOptions o;
  o.input = (dir / "in").string();
  o.output = (dir / "out").string();
  o.max_side = 96;
  prepare_dataset(o);
  auto source = open_sample_source((dir / "out").string());
  RawSample s;
  ASSERT_TRUE(source->next(s));
  const ImageHeader h = image_probe(s.image.data(), s.image.size(), s.image_name);
  EXPECT_EQ(h.width, 96);
  EXPECT_EQ(h.height, 64);
}

TEST(DataPrepare, MissingInputIsOneClearError) {
  PrepareOptions o;
  o.input = "/nonexistent/dalle/input";
  o.output = test::scratch_dir("prepare_missing").string();
  try {
    prepare_dataset(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dalle/input"), std::string::npos) << e.what();
  }
  o.input = "/nonexistent/dalle/shard-{0..3}.tar";
  EXPECT_THROW(prepare_dataset(o), Error);
  // Writing into the input's own folder would delete the shards being read.
  const fs::path dir = test::scratch_dir("prepare_in_is_out");
  test::write_tar(dir / "shard-000000.tar", {{"k.txt", test::bytes_of("a caption of some words")}});
  o.input = (dir / "shard-000000.tar").string();
  o.output = dir.string();
  EXPECT_THROW(prepare_dataset(o), Error);
  EXPECT_TRUE(fs::exists(dir / "shard-000000.tar"));
}

TEST(DataCli, PrepareThroughTheBinaryKeepsGoodPairsAndReports) {
  const fs::path dir = test::scratch_dir("prepare_cli");
  make_dirs((dir / "in").string());
  const Counts expected = make_mixed_folder(dir / "in");
  const test::CliRun run =
      test::dalle_run("data prepare -i " + (dir / "in").string() + " -o " + (dir / "out").string() + " -t 2");
  const std::string& out = run.output;
  ASSERT_NE(run.code, -1);
  EXPECT_EQ(run.code, 0) << out;
  EXPECT_NE(out.find("kept 3 of 19 images"), std::string::npos) << out;
  EXPECT_NE(out.find("image_too_many_pixels"), std::string::npos) << out;
  const auto j = nlohmann::json::parse(read_file_text((dir / "out/report.json").string()));
  EXPECT_EQ(j["kept"], 3);
  EXPECT_EQ(j["dropped"].get<Counts>(), expected);

  const test::CliRun bad =
      test::dalle_run("data prepare -i " + (dir / "nope").string() + " -o " + (dir / "out2").string());
  EXPECT_EQ(bad.code, 1) << bad.output;
  EXPECT_NE(bad.output.find("nope"), std::string::npos) << bad.output;
}

TEST(DataPrepare, AShardThatIsNotATarIsCountedAndTheRunGoesOn) {
  // Found by the fuzzer: libarchive refuses such a file at open time, which used to abort the run.
  const fs::path dir = test::scratch_dir("prepare_not_tar");
  make_dirs((dir / "in").string());
  test::write_tar(dir / "in" / "a.tar", {{"k.png", test::png_bytes(80, 80, 1)},
                                          {"k.txt", test::bytes_of("a striped square of many colours")}});
  test::write_bytes(dir / "in" / "b.tar", test::png_bytes(80, 80, 2));
  test::write_bytes(dir / "in" / "c.tar", {});
  PrepareOptions o;
  o.input = (dir / "in").string();
  o.output = (dir / "out").string();
  const PrepareReport r = prepare_dataset(o);
  EXPECT_EQ(r.kept, 1);
  EXPECT_EQ(r.dropped.at("tar_corrupt"), r.seen - 1);
  EXPECT_GE(r.dropped.at("tar_corrupt"), 1);
}

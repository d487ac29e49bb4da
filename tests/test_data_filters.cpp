// The caption and image checks of the collection filters, one function at a time.
#include <gtest/gtest.h>

#include "dalle/data/caption_filters.h"
#include "dalle/data/filters.h"
#include "dalle/data/sample_source.h"
#include "dalle/data/tar_shards.h"
#include "dalle/util/error.h"
#include "test_data_util.h"

using namespace dalle;

TEST(DataFilters, Utf8ValidationRejectsOverlongSurrogatesAndTruncatedSequences) {
  EXPECT_TRUE(utf8_valid("a red apple"));
  EXPECT_TRUE(utf8_valid("caf\xc3\xa9 \xe7\x8c\xab \xf0\x9f\x8d\x8e"));  // é, 猫, 🍎
  EXPECT_FALSE(utf8_valid("\xc0\x80"));          // overlong NUL
  EXPECT_FALSE(utf8_valid("\xed\xa0\x80"));      // UTF-16 surrogate
  EXPECT_FALSE(utf8_valid("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(utf8_valid("abc\xe7\x8c"));       // cut short
  EXPECT_FALSE(utf8_valid("\xff\xfe"));
  EXPECT_EQ(utf8_repair("a \xff\xfe b"), "a \xef\xbf\xbd b");
  EXPECT_EQ(utf8_repair("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_TRUE(utf8_valid(utf8_repair("x\xe7\x8c")));
}

TEST(DataFilters, NormaliseAndCountWords) {
  EXPECT_EQ(caption_normalize("  a\tred \r\n apple  "), "a red apple");
  EXPECT_EQ(caption_word_count("a red apple"), 3);
  EXPECT_EQ(caption_word_count("a cat !!! --"), 2);
  EXPECT_EQ(caption_word_count("\xe7\x8c\xab"), 1);
  EXPECT_EQ(caption_word_count(""), 0);
}

TEST(DataFilters, BoilerplateCaptionsAreRecognisedAndRealOnesKept) {
  for (const char* boiler :
       {"photographed on 2021-03-04", "Photographed on March 4, 2021", "taken 03/04/2021 12:30 pm",
        "IMG_1234.JPG", "DSC01234", "untitled", "Image", "Untitled image 2019",
        "http://example.com/photos/123", "uploaded on 4th of March 2021", "PXL_20210101_123456789",
        "photo taken on Monday 4.3.21", "no description available"})
    EXPECT_GT(caption_boilerplate_fraction(boiler), 0.5) << boiler;
  for (const char* real : {"a red apple on a wooden table", "grinning face with big eyes",
                           "a dog at the beach photographed on may 5 2019", "a small blue square",
                           "the march of the penguins across the ice"})
    EXPECT_LE(caption_boilerplate_fraction(real), 0.5) << real;
  EXPECT_EQ(caption_boilerplate_fraction(""), 0.0);
  // Long words go through the same expressions as short ones (RE2 runs in linear time; the
  // fuzzer once found a 7 KB word that took libstdc++'s regex seconds, so long words used to
  // skip it and a long camera file name counted as a content word).
  EXPECT_EQ(caption_boilerplate_fraction(std::string(1 << 20, 'a')), 0.0);
  EXPECT_EQ(caption_boilerplate_fraction("https://example.com/" + std::string(200, 'a')), 1.0);
  EXPECT_EQ(caption_boilerplate_fraction("IMG_" + std::string(80, '1') + ".JPG"), 1.0);
  EXPECT_EQ(caption_boilerplate_fraction("a red apple " + std::string(200, '7') + " on a table"), 0.25);
  EXPECT_EQ(caption_boilerplate_fraction("holiday " + std::string(100000, '2') + ".jpeg"), 0.5);
}

TEST(DataFilters, LanguageDetectionDropsOtherLanguagesOnlyWhenSure) {
  EXPECT_EQ(caption_language("a photo of a dog running on the beach"), CaptionLanguage::english);
  std::string code;
  EXPECT_EQ(caption_language("un chat noir sur une table", &code), CaptionLanguage::other);
  EXPECT_EQ(code, "fr");
  EXPECT_EQ(caption_language("ein roter Kreis auf dem Tisch"), CaptionLanguage::other);
  EXPECT_EQ(caption_language("\xd0\xba\xd1\x80\xd0\xb0\xd1\x81\xd0\xbd\xd1\x8b\xd0\xb9 \xd0\xba\xd1\x80\xd1\x83\xd0\xb3"),
            CaptionLanguage::other);  // красный круг
  // Short English captions are never called foreign (without the English hint, cld2 says
  // Indonesian for this one).
  EXPECT_NE(caption_language("an orange rhombus"), CaptionLanguage::other);
  EXPECT_NE(caption_language("a red circle"), CaptionLanguage::other);
}

TEST(DataFilters, TruncationIsDetectedInPngAndJpeg) {
  const auto png = test::png_bytes(40, 30, 1);
  const auto jpg = test::jpeg_bytes(40, 30, 1);
  EXPECT_EQ(image_format_of(png.data(), png.size()), "png");
  EXPECT_EQ(image_format_of(jpg.data(), jpg.size()), "jpg");
  EXPECT_EQ(image_truncation_problem(png.data(), png.size()), "");
  EXPECT_EQ(image_truncation_problem(jpg.data(), jpg.size()), "");
  for (double keep : {0.3, 0.7, 0.98}) {
    const auto p = test::truncated(png, keep), j = test::truncated(jpg, keep);
    EXPECT_NE(image_truncation_problem(p.data(), p.size()), "") << keep;
    EXPECT_NE(image_truncation_problem(j.data(), j.size()), "") << keep;
  }
}

TEST(DataFilters, AlphaIsCompositedOnWhite) {
  // A 2x1 RGBA PNG: one transparent black pixel, one opaque red pixel.
  const uint8_t rgba[8] = {0, 0, 0, 0, 255, 0, 0, 255};
  std::vector<uint8_t> png;
  stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        auto* o = static_cast<std::vector<uint8_t>*>(ctx);
        o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &png, 2, 1, 4, rgba, 8);
  const Image img = image_decode_on_white(png.data(), png.size(), "rgba.png", 1 << 20);
  EXPECT_EQ(std::vector<uint8_t>(img.pixels.begin(), img.pixels.end()),
            (std::vector<uint8_t>{255, 255, 255, 255, 0, 0}));
}

TEST(DataFilters, ContentHashIsXxh3With128Bits) {
  // xxhsum -H2 of "abc": 06b05ab6733a6185 78af5f94892f3950 (high, low).
  const std::string abc = "abc";
  const ContentHash h = content_hash(reinterpret_cast<const uint8_t*>(abc.data()), abc.size());
  EXPECT_EQ(h.a, 0x78af5f94892f3950ull);
  EXPECT_EQ(h.b, 0x06b05ab6733a6185ull);
}

TEST(DataFilters, ContentHashSeparatesOneByteChanges) {
  auto a = test::png_bytes(20, 20, 3);
  const ContentHash h1 = content_hash(a.data(), a.size());
  EXPECT_EQ(h1, content_hash(a.data(), a.size()));
  a[a.size() / 2] ^= 1;
  EXPECT_FALSE(h1 == content_hash(a.data(), a.size()));
}

TEST(DataSources, BraceExpansionOfShardLists) {
  EXPECT_EQ(expand_braces("data/{000000..000002}.tar"),
            (std::vector<std::string>{"data/000000.tar", "data/000001.tar", "data/000002.tar"}));
  EXPECT_EQ(expand_braces("{a,b}-{8..10}"),
            (std::vector<std::string>{"a-8", "a-9", "a-10", "b-8", "b-9", "b-10"}));
  EXPECT_EQ(expand_braces("plain.tar"), (std::vector<std::string>{"plain.tar"}));
  EXPECT_THROW(expand_braces("{3..1}.tar"), Error);
  EXPECT_THROW(expand_braces("{0..9.tar"), Error);
  EXPECT_THROW(expand_braces("x}.tar"), Error);
  EXPECT_THROW(expand_braces("{a..z}.tar"), Error);
  EXPECT_THROW(expand_braces("{0..99999999999}.tar"), Error);
}

TEST(DataSources, WebDatasetKeysAndUnsafeNames) {
  EXPECT_EQ(webdataset_split("a/b/000123.seg.PNG"), (std::pair<std::string, std::string>{"a/b/000123", "seg.png"}));
  EXPECT_EQ(webdataset_split("x.y/k.txt"), (std::pair<std::string, std::string>{"x.y/k", "txt"}));
  for (const char* bad : {"../x.png", "/etc/passwd", "a/../../x.txt", "a\\..\\x.txt", "", "C:/x.png"})
    EXPECT_TRUE(tar_member_name_unsafe(bad)) << bad;
  for (const char* ok : {"x.png", "a/b/x.png", "..x.png", "a/..b/x.txt"})
    EXPECT_FALSE(tar_member_name_unsafe(ok)) << ok;
}

TEST(DataSources, FormatIsDetectedFromThePath) {
  const auto dir = test::scratch_dir("detect");
  test::write_bytes(dir / "a.png", test::png_bytes(8, 8, 0));
  EXPECT_EQ(detect_source_format(dir.string()), SourceFormat::folder);
  EXPECT_EQ(detect_source_format((dir / "x.tar").string()), SourceFormat::tar);
  EXPECT_EQ(detect_source_format((dir / "x-{0..3}.tar").string()), SourceFormat::tar);
  EXPECT_EQ(detect_source_format((dir / "x.tsv").string()), SourceFormat::tsv);
  const auto shards = test::scratch_dir("detect_shards");
  test::write_tar(shards / "shard-000000.tar", {{"k.txt", test::bytes_of("a caption")}});
  EXPECT_EQ(detect_source_format(shards.string()), SourceFormat::tar);
  EXPECT_THROW(detect_source_format((dir / "missing.csv").string()), Error);
  test::write_text(dir / "notes.csv", "x");
  EXPECT_THROW(detect_source_format((dir / "notes.csv").string()), Error);
}

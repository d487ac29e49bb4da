// WebP images: stills decode exactly (lossless fixtures made here with libwebp's encoder),
// alpha lands on white where readers compose, animations give their first frame, and broken
// files are clear errors.
#include <gtest/gtest.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include "dalle/util/torch_api.h"

#include <filesystem>
#include <fstream>

#include "dalle/data/filters.h"
#include "dalle/data/loader.h"
#include "dalle/io/image.h"
#include "dalle/util/error.h"
#include "test_util.h"

using namespace dalle;

namespace {

std::vector<uint8_t> rgba_pattern(int w, int h, int seed, uint8_t alpha) {
  std::vector<uint8_t> p(static_cast<size_t>(w) * h * 4);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* q = &p[(static_cast<size_t>(y) * w + x) * 4];
      q[0] = static_cast<uint8_t>(x * 9 + seed);
      q[1] = static_cast<uint8_t>(y * 5 + 2 * seed);
      q[2] = static_cast<uint8_t>((x ^ y) * 3);
      q[3] = alpha;
    }
  return p;
}

std::vector<uint8_t> lossless_webp(const std::vector<uint8_t>& rgba, int w, int h) {
  uint8_t* out = nullptr;
  const size_t size = WebPEncodeLosslessRGBA(rgba.data(), w, h, w * 4, &out);
  std::vector<uint8_t> bytes(out, out + size);
  WebPFree(out);
  return bytes;
}

// Two lossless frames of different content.
std::vector<uint8_t> animated_webp(const std::vector<uint8_t>& first, const std::vector<uint8_t>& second, int w, int h) {
  WebPAnimEncoderOptions options;
  WebPAnimEncoderOptionsInit(&options);
  WebPAnimEncoder* encoder = WebPAnimEncoderNew(w, h, &options);
  WebPConfig config;
  WebPConfigInit(&config);
  config.lossless = 1;
  int timestamp = 0;
  for (const auto* frame : {&first, &second}) {
    WebPPicture picture;
    WebPPictureInit(&picture);
    picture.use_argb = 1;
    picture.width = w;
    picture.height = h;
    WebPPictureImportRGBA(&picture, frame->data(), w * 4);
    WebPAnimEncoderAdd(encoder, &picture, timestamp, &config);
    WebPPictureFree(&picture);
    timestamp += 100;
  }
  WebPAnimEncoderAdd(encoder, nullptr, timestamp, nullptr);
  WebPData data;
  WebPDataInit(&data);
  WebPAnimEncoderAssemble(encoder, &data);
  std::vector<uint8_t> bytes(data.bytes, data.bytes + data.size);
  WebPDataClear(&data);
  WebPAnimEncoderDelete(encoder);
  return bytes;
}

std::vector<uint8_t> rgb_of(const std::vector<uint8_t>& rgba) {
  std::vector<uint8_t> rgb;
  for (size_t i = 0; i < rgba.size(); i += 4) rgb.insert(rgb.end(), rgba.begin() + i, rgba.begin() + i + 3);
  return rgb;
}

}  // namespace

TEST(WebP, StillImagesDecodeExactly) {
  const auto rgba = rgba_pattern(13, 7, 1, 255);
  const auto bytes = lossless_webp(rgba, 13, 7);
  const ImageHeader header = image_probe(bytes.data(), bytes.size(), "x.webp");
  EXPECT_EQ(header.width, 13);
  EXPECT_EQ(header.height, 7);
  const Image img = image_decode(bytes.data(), bytes.size(), "x.webp");
  EXPECT_EQ(img.width, 13);
  EXPECT_EQ(img.pixels, rgb_of(rgba));
  EXPECT_EQ(image_decode_on_white(bytes.data(), bytes.size(), "x.webp", 1 << 20).pixels, rgb_of(rgba));
  // The pixel limit is checked from the header, before decoding.
  EXPECT_THROW(image_decode(bytes.data(), bytes.size(), "x.webp", 50), Error);
}

TEST(WebP, TransparentPixelsLandOnWhite) {
  const auto rgba = rgba_pattern(4, 4, 2, 0);  // fully transparent
  const auto bytes = lossless_webp(rgba, 4, 4);
  const Image img = image_decode_on_white(bytes.data(), bytes.size(), "t.webp", 1 << 20);
  for (uint8_t v : img.pixels) EXPECT_EQ(v, 255);
}

TEST(WebP, AnimationsGiveTheirFirstFrame) {
  const auto first = rgba_pattern(8, 6, 3, 255), second = rgba_pattern(8, 6, 77, 255);
  const auto bytes = animated_webp(first, second, 8, 6);
  ASSERT_FALSE(bytes.empty());
  const Image img = image_decode_on_white(bytes.data(), bytes.size(), "a.webp", 1 << 20);
  EXPECT_EQ(img.width, 8);
  EXPECT_EQ(img.pixels, rgb_of(first));
}

TEST(WebP, BrokenFilesAreClearErrors) {
  auto bytes = lossless_webp(rgba_pattern(16, 16, 4, 255), 16, 16);
  bytes.resize(bytes.size() / 2);
  try {
    image_decode(bytes.data(), bytes.size(), "cut.webp");
    FAIL() << "a truncated WebP decoded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.webp"), std::string::npos) << e.what();
  }
}

TEST(WebP, TheStreamingLoaderReadsWebPFolders) {
  const auto dir = test::scratch_dir("webp_folder");
  for (int i = 0; i < 6; ++i) {
    const auto bytes = lossless_webp(rgba_pattern(20, 20, i, 255), 20, 20);
    std::ofstream((dir / ("img" + std::to_string(i) + ".webp")).string(), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    std::ofstream((dir / ("img" + std::to_string(i) + ".txt")).string()) << "a pattern number " << i << "\n";
  }
  LoaderOptions o;
  o.data = dir.string();
  o.image_size = 16;
  o.batch_size = 6;
  o.augment = AugmentKind::centre;
  Loader loader(o);
  const LoaderBatch b = loader.next();
  EXPECT_EQ(b.images.size(0), 6);
  EXPECT_EQ(loader.stats().skipped, 0);
  EXPECT_EQ(b.captions.size(), 6u);
}

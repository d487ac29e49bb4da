#include <gtest/gtest.h>
#include "dalle/util/torch_api.h"

#include <algorithm>
#include <filesystem>

#include "dalle/io/image.h"
#include "dalle/util/error.h"

using namespace dalle;

namespace {

Image gradient_image(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = static_cast<uint8_t>(x * 7);
      p[1] = static_cast<uint8_t>(y * 5);
      p[2] = static_cast<uint8_t>(x * y);
    }
  return img;
}

void put_u32be(std::vector<uint8_t>& v, size_t at, uint32_t x) {
  v[at] = x >> 24;
  v[at + 1] = x >> 16;
  v[at + 2] = x >> 8;
  v[at + 3] = x;
}

}  // namespace

TEST(Image, PngRoundTripIsLosslessAndKeepsTextMetadata) {
  const Image img = gradient_image(37, 21);
  const PngText text = {{"prompt", "a red circle, très rouge"}, {"seed", "42"}};
  const std::vector<uint8_t> png = image_encode_png(img, text);
  const Image back = image_decode(png.data(), png.size(), "mem.png");
  EXPECT_EQ(back.width, 37);
  EXPECT_EQ(back.height, 21);
  EXPECT_EQ(back.pixels, img.pixels);
  EXPECT_EQ(png_read_text(png.data(), png.size()), text);
}

TEST(Image, ZeroByteAndTruncatedFilesAreClearErrors) {
  const std::vector<uint8_t> png = image_encode_png(gradient_image(16, 16));
  EXPECT_THROW(image_decode(png.data(), 0, "empty.png"), Error);
  try {
    image_decode(png.data(), png.size() / 2, "half.png");
    FAIL() << "truncated PNG decoded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("half.png"), std::string::npos);
  }
  const std::vector<uint8_t> junk = {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'};
  EXPECT_THROW(image_decode(junk.data(), junk.size(), "junk.jpg"), Error);
}

TEST(Image, HugeDeclaredSizeIsRefusedBeforeDecoding) {
  std::vector<uint8_t> png = image_encode_png(gradient_image(8, 8));
  // IHDR width/height live at bytes 16..23; claim 100000 x 100000 (the CRC is not checked by
  // the header probe, and decoding must never be attempted).
  put_u32be(png, 16, 100000);
  put_u32be(png, 20, 100000);
  const ImageHeader h = image_probe(png.data(), png.size(), "bomb.png");
  EXPECT_EQ(h.width, 100000);
  try {
    image_decode(png.data(), png.size(), "bomb.png");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pixel limit"), std::string::npos) << e.what();
  }
}

TEST(Image, GridHasMarginsAndKeepsTiles) {
  std::vector<Image> tiles(5, gradient_image(10, 6));
  const Image grid = image_grid(tiles, 3, 2, 255);
  EXPECT_EQ(grid.width, 3 * 10 + 4 * 2);
  EXPECT_EQ(grid.height, 2 * 6 + 3 * 2);
  EXPECT_EQ(grid.at(0, 0)[0], 255);
  EXPECT_EQ(grid.at(2, 2)[1], tiles[0].at(0, 0)[1]);
  EXPECT_EQ(grid.at(2 + 12 + 3, 2 + 8 + 1)[2], tiles[4].at(3, 1)[2]);
}

TEST(Image, TensorConversionsRoundTrip) {
  const Image img = gradient_image(9, 7);
  const torch::Tensor t = image_to_tensor(img);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{7, 9, 3}));
  EXPECT_EQ(image_from_tensor(t).pixels, img.pixels);
  const torch::Tensor f = t.permute({2, 0, 1}).to(torch::kFloat32) / 255;
  EXPECT_EQ(image_from_tensor(f).pixels, img.pixels);
}

TEST(Image, SquareCropsTheCentre) {
  Image wide = gradient_image(30, 10);
  const Image sq = image_square(wide, 10);
  EXPECT_EQ(sq.width, 10);
  EXPECT_EQ(sq.height, 10);
  EXPECT_EQ(sq.at(0, 0)[0], wide.at(10, 0)[0]);
}

namespace {

// A GIF of 2-bit frames (4 palette colours), LZW-coded with a clear code before every pixel so
// the code size stays 3 bits: simple to write, valid for any decoder.
std::vector<uint8_t> gif_bytes(int w, int h, const std::vector<std::vector<uint8_t>>& frames,
                               const uint8_t palette[4][3]) {
  std::vector<uint8_t> out = {'G', 'I', 'F', '8', '9', 'a', uint8_t(w), uint8_t(w >> 8), uint8_t(h), uint8_t(h >> 8),
                              0xf1, 0, 0};  // global colour table of 4 entries
  for (int i = 0; i < 4; ++i) out.insert(out.end(), palette[i], palette[i] + 3);
  for (const auto& frame : frames) {
    const uint8_t descriptor[] = {0x2c, 0, 0, 0, 0, uint8_t(w), uint8_t(w >> 8), uint8_t(h), uint8_t(h >> 8), 0, 2};
    out.insert(out.end(), descriptor, descriptor + sizeof(descriptor));  // ends with the LZW minimum code size 2
    std::vector<uint8_t> bits;
    uint32_t acc = 0;
    int nbits = 0;
    auto put = [&](uint32_t code) {
      acc |= code << nbits;
      nbits += 3;
      while (nbits >= 8) {
        bits.push_back(uint8_t(acc));
        acc >>= 8;
        nbits -= 8;
      }
    };
    for (uint8_t p : frame) {
      put(4);  // clear
      put(p);
    }
    put(5);  // end of information
    if (nbits > 0) bits.push_back(uint8_t(acc));
    for (size_t i = 0; i < bits.size(); i += 255) {
      const size_t n = std::min<size_t>(255, bits.size() - i);
      out.push_back(uint8_t(n));
      out.insert(out.end(), bits.begin() + static_cast<std::ptrdiff_t>(i), bits.begin() + static_cast<std::ptrdiff_t>(i + n));
    }
    out.push_back(0);  // block terminator
  }
  out.push_back(0x3b);  // trailer
  return out;
}

}  // namespace

TEST(ImageDecode, AnimatedGifGivesItsFirstFrame) {
  const uint8_t palette[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
  const int w = 5, h = 3;
  std::vector<uint8_t> first(w * h), second(w * h);
  for (int i = 0; i < w * h; ++i) {
    first[static_cast<size_t>(i)] = static_cast<uint8_t>(i % 4);
    second[static_cast<size_t>(i)] = static_cast<uint8_t>((i + 1) % 4);
  }
  const std::vector<uint8_t> gif = gif_bytes(w, h, {first, second}, palette);
  const Image img = image_decode(gif.data(), gif.size(), "anim.gif");
  ASSERT_EQ(img.width, w);
  ASSERT_EQ(img.height, h);
  for (int i = 0; i < w * h; ++i)
    for (int c = 0; c < 3; ++c)
      EXPECT_EQ(img.pixels[static_cast<size_t>(i * 3 + c)], palette[first[static_cast<size_t>(i)]][c]) << "pixel " << i;
}

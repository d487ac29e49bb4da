// Images as users see them: decode PNG/JPEG/BMP (stb), encode PNG with tEXt metadata (prompt,
// seed, settings — as stable-diffusion.cpp does), resize, tile into grids, and convert to and
// from tensors.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dalle {

// 8-bit RGB, row-major, HWC.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3

  uint8_t* at(int x, int y) { return &pixels[(static_cast<size_t>(y) * width + x) * 3]; }
  const uint8_t* at(int x, int y) const {
    return &pixels[(static_cast<size_t>(y) * width + x) * 3];
  }
};

using PngText = std::vector<std::pair<std::string, std::string>>;

struct ImageHeader {
  int width = 0;
  int height = 0;
};

// Reads only the header (no pixel allocation), so huge "decompression bomb" images are refused
// before decoding. Throws an Error naming `source` if the format is unknown.
ImageHeader image_probe(const uint8_t* data, size_t size, const std::string& source);
// The same, refusing images with more than `max_pixels` pixels (a clear error naming `source`).
ImageHeader image_probe_within(const uint8_t* data, size_t size, const std::string& source, int64_t max_pixels);

// Decodes to RGB. Refuses images with more than `max_pixels` pixels before decoding.
Image image_decode(const uint8_t* data, size_t size, const std::string& source,
                   int64_t max_pixels = int64_t(1) << 26);
Image image_load(const std::string& path, int64_t max_pixels = int64_t(1) << 26);

std::vector<uint8_t> image_encode_png(const Image& image, const PngText& text = {});
void image_save_png(const std::string& path, const Image& image, const PngText& text = {});
// The tEXt chunks of a PNG file, in file order.
PngText png_read_text(const uint8_t* data, size_t size);

Image image_resize(const Image& image, int width, int height);
// Center-crops to a square and resizes to side x side.
Image image_square(const Image& image, int side);
// Tiles images (all the same size) in rows of `columns`, with `margin` pixels of `background`.
Image image_grid(const std::vector<Image>& images, int columns, int margin = 2,
                 uint8_t background = 255);

// uint8 [H, W, 3] tensor that shares nothing with `image`.
torch::Tensor image_to_tensor(const Image& image);
// Accepts uint8 [H, W, 3] or float [3, H, W] in [0, 1].
Image image_from_tensor(const torch::Tensor& tensor);

}  // namespace dalle

#include "dalle/io/image.h"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>
#include "dalle/util/torch_api.h"

#include <array>
#include <cstring>

#include "dalle/io/webp.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

namespace {

uint32_t crc32_update(uint32_t crc, const uint8_t* data, size_t size) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

void put_u32be(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

uint32_t get_u32be(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

// A PNG tEXt chunk: keyword (Latin-1, 1–79 bytes), NUL, text. We store UTF-8 text as
// stable-diffusion.cpp and most viewers do.
std::vector<uint8_t> text_chunk(const std::string& key, const std::string& value) {
  std::string k = key.substr(0, 79);
  std::vector<uint8_t> body;
  body.insert(body.end(), {'t', 'E', 'X', 't'});
  body.insert(body.end(), k.begin(), k.end());
  body.push_back(0);
  body.insert(body.end(), value.begin(), value.end());
  std::vector<uint8_t> chunk;
  put_u32be(chunk, static_cast<uint32_t>(body.size() - 4));
  chunk.insert(chunk.end(), body.begin(), body.end());
  put_u32be(chunk, crc32_update(0, body.data(), body.size()));
  return chunk;
}

void collect_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}

}  // namespace

namespace {

// Dimensions straight from the file header, so a file that claims a huge size is measured
// without stb refusing it for a different reason (or anything being allocated).
bool probe_png(const uint8_t* d, size_t n, ImageHeader& h) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n < 24 || std::memcmp(d, sig, 8) != 0 || std::memcmp(d + 12, "IHDR", 4) != 0) return false;
  h.width = static_cast<int>(std::min<uint32_t>(get_u32be(d + 16), INT32_MAX));
  h.height = static_cast<int>(std::min<uint32_t>(get_u32be(d + 20), INT32_MAX));
  return true;
}

bool probe_jpeg(const uint8_t* d, size_t n, ImageHeader& h) {
  if (n < 4 || d[0] != 0xff || d[1] != 0xd8) return false;
  size_t pos = 2;
  while (pos + 4 <= n) {
    if (d[pos] != 0xff) return false;
    const uint8_t marker = d[pos + 1];
    if (marker == 0xff) { ++pos; continue; }
    const size_t len = (size_t(d[pos + 2]) << 8) | d[pos + 3];
    const bool sof = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (sof) {
      if (pos + 9 > n) return false;
      h.height = (d[pos + 5] << 8) | d[pos + 6];
      h.width = (d[pos + 7] << 8) | d[pos + 8];
      return true;
    }
    if (len < 2) return false;
    pos += 2 + len;
  }
  return false;
}

}  // namespace

ImageHeader image_probe(const uint8_t* data, size_t size, const std::string& source) {
  if (size == 0) throw file_error(source, "empty image file");
  if (size > static_cast<size_t>(INT32_MAX)) throw file_error(source, "image file too large");
  ImageHeader h;
  const bool webp = webp_signature(data, size);
  if (webp) webp_size(data, size, source, &h.width, &h.height);
  if (webp || probe_png(data, size, h) || probe_jpeg(data, size, h)) {
    if (h.width <= 0 || h.height <= 0) throw file_error(source, "image header declares a zero size");
    return h;
  }
  int w = 0, hh = 0, c = 0;
  if (!stbi_info_from_memory(data, static_cast<int>(size), &w, &hh, &c))
    throw file_error(source, std::string("not a decodable image (") + stbi_failure_reason() + ")");
  return {w, hh};
}

ImageHeader image_probe_within(const uint8_t* data, size_t size, const std::string& source,
                               int64_t max_pixels) {
  const ImageHeader header = image_probe(data, size, source);
  if (static_cast<int64_t>(header.width) * header.height > max_pixels)
    throw file_error(source, "image is " + std::to_string(header.width) + "x" +
                                 std::to_string(header.height) + ", over the pixel limit of " +
                                 std::to_string(max_pixels));
  return header;
}

Image image_decode(const uint8_t* data, size_t size, const std::string& source,
                   int64_t max_pixels) {
  image_probe_within(data, size, source, max_pixels);
  int w = 0, h = 0, c = 0;
  if (webp_signature(data, size)) {  // RGB: the alpha channel is dropped, as stb does below
    const std::vector<uint8_t> rgba = webp_decode_rgba(data, size, source, &w, &h);
    Image image;
    image.width = w;
    image.height = h;
    image.pixels.resize(static_cast<size_t>(w) * h * 3);
    for (size_t i = 0; i < static_cast<size_t>(w) * h; ++i) std::memcpy(&image.pixels[i * 3], &rgba[i * 4], 3);
    return image;
  }
  uint8_t* pixels = stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &c, 3);
  if (!pixels)
    throw file_error(source, std::string("cannot decode image (") + stbi_failure_reason() + ")");
  Image image;
  image.width = w;
  image.height = h;
  image.pixels.assign(pixels, pixels + static_cast<size_t>(w) * h * 3);
  stbi_image_free(pixels);
  return image;
}

Image image_load(const std::string& path, int64_t max_pixels) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return image_decode(bytes.data(), bytes.size(), path, max_pixels);
}

std::vector<uint8_t> image_encode_png(const Image& image, const PngText& text) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3)
    throw Error("image_encode_png: image has inconsistent size");
  std::vector<uint8_t> png;
  if (!stbi_write_png_to_func(collect_bytes, &png, image.width, image.height, 3,
                              image.pixels.data(), image.width * 3))
    throw Error("PNG encoding failed");
  // Insert tEXt chunks right after the 8-byte signature and the 25-byte IHDR chunk.
  const size_t after_ihdr = 8 + 4 + 4 + 13 + 4;
  std::vector<uint8_t> chunks;
  for (const auto& [key, value] : text) {
    std::vector<uint8_t> c = text_chunk(key, value);
    chunks.insert(chunks.end(), c.begin(), c.end());
  }
  png.insert(png.begin() + static_cast<std::ptrdiff_t>(after_ihdr), chunks.begin(), chunks.end());
  return png;
}

void image_save_png(const std::string& path, const Image& image, const PngText& text) {
  const std::vector<uint8_t> png = image_encode_png(image, text);
  write_file_atomic(path, png.data(), png.size());
}

PngText png_read_text(const uint8_t* data, size_t size) {
  PngText text;
  static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size < 8 || std::memcmp(data, signature, 8) != 0) return text;
  size_t pos = 8;
  while (pos + 12 <= size) {
    const uint32_t length = get_u32be(data + pos);
    if (length > size - pos - 12) break;
    const uint8_t* type = data + pos + 4;
    const uint8_t* body = data + pos + 8;
    if (std::memcmp(type, "tEXt", 4) == 0) {
      const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(body, 0, length));
      if (nul) {
        text.emplace_back(std::string(reinterpret_cast<const char*>(body), nul - body),
                          std::string(reinterpret_cast<const char*>(nul + 1),
                                      body + length - nul - 1));
      }
    }
    if (std::memcmp(type, "IEND", 4) == 0) break;
    pos += 12 + length;
  }
  return text;
}

Image image_resize(const Image& image, int width, int height) {
  if (image.width == width && image.height == height) return image;
  Image out;
  out.width = width;
  out.height = height;
  out.pixels.resize(static_cast<size_t>(width) * height * 3);
  if (!stbir_resize_uint8(image.pixels.data(), image.width, image.height, 0, out.pixels.data(),
                          width, height, 0, 3))
    throw Error("image resize failed");
  return out;
}

Image image_square(const Image& image, int side) {
  const int s = std::min(image.width, image.height);
  const int x0 = (image.width - s) / 2;
  const int y0 = (image.height - s) / 2;
  Image crop;
  crop.width = s;
  crop.height = s;
  crop.pixels.resize(static_cast<size_t>(s) * s * 3);
  for (int y = 0; y < s; ++y)
    std::memcpy(crop.at(0, y), image.at(x0, y0 + y), static_cast<size_t>(s) * 3);
  return image_resize(crop, side, side);
}

Image image_grid(const std::vector<Image>& images, int columns, int margin, uint8_t background) {
  if (images.empty()) throw Error("image_grid: no images");
  const int w = images[0].width;
  const int h = images[0].height;
  columns = std::max(1, std::min<int>(columns, static_cast<int>(images.size())));
  const int rows = (static_cast<int>(images.size()) + columns - 1) / columns;
  Image grid;
  grid.width = columns * w + (columns + 1) * margin;
  grid.height = rows * h + (rows + 1) * margin;
  grid.pixels.assign(static_cast<size_t>(grid.width) * grid.height * 3, background);
  for (size_t i = 0; i < images.size(); ++i) {
    if (images[i].width != w || images[i].height != h)
      throw Error("image_grid: images differ in size");
    const int gx = margin + static_cast<int>(i % columns) * (w + margin);
    const int gy = margin + static_cast<int>(i / columns) * (h + margin);
    for (int y = 0; y < h; ++y)
      std::memcpy(grid.at(gx, gy + y), images[i].at(0, y), static_cast<size_t>(w) * 3);
  }
  return grid;
}

torch::Tensor image_to_tensor(const Image& image) {
  return torch::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                          {image.height, image.width, 3}, torch::kUInt8)
      .clone();
}

Image image_from_tensor(const torch::Tensor& tensor) {
  torch::Tensor t = tensor.detach().to(torch::kCPU);
  if (t.scalar_type() != torch::kUInt8) {
    TORCH_CHECK(t.dim() == 3 && t.size(0) == 3, "image_from_tensor: expected [3, H, W]");
    t = (t.to(torch::kFloat32).clamp(0, 1) * 255.0f).round().to(torch::kUInt8).permute({1, 2, 0});
  }
  TORCH_CHECK(t.dim() == 3 && t.size(2) == 3, "image_from_tensor: expected [H, W, 3]");
  t = t.contiguous();
  Image image;
  image.height = static_cast<int>(t.size(0));
  image.width = static_cast<int>(t.size(1));
  image.pixels.assign(t.data_ptr<uint8_t>(), t.data_ptr<uint8_t>() + t.numel());
  return image;
}

}  // namespace dalle

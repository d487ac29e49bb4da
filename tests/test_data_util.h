// Crafted inputs for the data pipeline tests: images (good, truncated, lying about their size),
// caption files, and tar shards with arbitrary member names.
#pragma once
#include <stb/stb_image_write.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "dalle/data/tar_shards.h"
#include "dalle/io/image.h"
#include "test_util.h"

namespace dalle::test {

// A w x h image with a pattern that depends on `seed` (so no two seeds give the same bytes).
inline Image pattern_image(int w, int h, int seed) {
  Image img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = static_cast<uint8_t>(x * 3 + seed * 37);
      p[1] = static_cast<uint8_t>(y * 5 + seed * 11);
      p[2] = static_cast<uint8_t>((x ^ y) + seed);
    }
  return img;
}

inline std::vector<uint8_t> png_bytes(int w, int h, int seed) { return image_encode_png(pattern_image(w, h, seed)); }

inline std::vector<uint8_t> jpeg_bytes(int w, int h, int seed) {
  const Image img = pattern_image(w, h, seed);
  std::vector<uint8_t> out;
  stbi_write_jpg_to_func(
      [](void* ctx, void* data, int size) {
        auto* o = static_cast<std::vector<uint8_t>*>(ctx);
        o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &out, w, h, 3, img.pixels.data(), 90);
  return out;
}

inline uint32_t crc32_of(const uint8_t* data, size_t size) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
  }
  return ~crc;
}

// A well-formed PNG header (valid CRC) claiming width x height, followed by a tiny IDAT and
// IEND: a decoder that trusts the header would try to allocate width * height * 3 bytes.
inline std::vector<uint8_t> png_claiming(uint32_t width, uint32_t height) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto u32 = [](std::vector<uint8_t>& v, uint32_t x) {
    for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
  };
  auto chunk = [&](const char* type, const std::vector<uint8_t>& body) {
    u32(out, static_cast<uint32_t>(body.size()));
    std::vector<uint8_t> tb(type, type + 4);
    tb.insert(tb.end(), body.begin(), body.end());
    out.insert(out.end(), tb.begin(), tb.end());
    u32(out, crc32_of(tb.data(), tb.size()));
  };
  std::vector<uint8_t> ihdr;
  u32(ihdr, width);
  u32(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  chunk("IHDR", ihdr);
  chunk("IDAT", {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01});
  chunk("IEND", {});
  return out;
}

inline void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::vector<uint8_t> truncated(std::vector<uint8_t> bytes, double keep) {
  bytes.resize(static_cast<size_t>(bytes.size() * keep));
  return bytes;
}

// Members in order, names used verbatim (unsafe ones included).
inline void write_tar(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, std::vector<uint8_t>>>& members) {
  TarShardWriter w(path.string());
  for (const auto& [name, bytes] : members) w.add(name, bytes.data(), bytes.size());
  w.close();
}

inline std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace dalle::test

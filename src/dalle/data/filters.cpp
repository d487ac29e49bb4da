#include "dalle/data/filters.h"

#include <stb/stb_image.h>
#include <xxhash.h>

#include <cstring>

#include "dalle/data/caption_filters.h"
#include "dalle/io/webp.h"
#include "dalle/util/error.h"

namespace dalle {

namespace {

uint32_t u32be(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

std::vector<std::string> caption_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace

ContentHash content_hash(const uint8_t* data, size_t size) {
  const XXH128_hash_t h = XXH3_128bits(data, size);
  return {h.low64, h.high64};
}

std::string image_format_of(const uint8_t* d, size_t n) {
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return "png";
  if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff) return "jpg";
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return "bmp";
  if (n >= 6 && (std::memcmp(d, "GIF87a", 6) == 0 || std::memcmp(d, "GIF89a", 6) == 0)) return "gif";
  if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0) return "webp";
  return "";
}

std::string image_truncation_problem(const uint8_t* d, size_t n) {
  const std::string format = image_format_of(d, n);
  if (format == "png") {
    size_t pos = 8;
    while (pos + 12 <= n) {
      const uint32_t length = u32be(d + pos);
      if (length > n - pos - 12) return "truncated PNG (chunk runs past the end of the file)";
      if (std::memcmp(d + pos + 4, "IEND", 4) == 0) return "";
      pos += 12 + length;
    }
    return "truncated PNG (no IEND chunk)";
  }
  if (format == "jpg") {
    // Walk the marker segments to the first start-of-scan, then look for end-of-image in the
    // entropy-coded data: 0xFF there is always followed by 0x00 or a restart/scan marker, so
    // FF D9 can only be the real end (an EXIF thumbnail's FF D9 lies before the scan).
    size_t pos = 2;
    while (pos + 4 <= n) {
      if (d[pos] != 0xff) return "corrupt JPEG (bad marker before the image data)";
      const uint8_t marker = d[pos + 1];
      if (marker == 0xff) { ++pos; continue; }
      const size_t len = (size_t(d[pos + 2]) << 8) | d[pos + 3];
      if (marker == 0xda) {
        for (size_t i = pos + 2 + len; i + 1 < n; ++i)
          if (d[i] == 0xff && d[i + 1] == 0xd9) return "";
        return "truncated JPEG (no end-of-image marker)";
      }
      if (len < 2) return "corrupt JPEG (bad segment length)";
      pos += 2 + len;
    }
    return "truncated JPEG (ends before the image data)";
  }
  if (format == "webp") {
    // The RIFF header states the size of everything after its first 8 bytes.
    const uint64_t riff = uint64_t(d[4]) | uint64_t(d[5]) << 8 | uint64_t(d[6]) << 16 | uint64_t(d[7]) << 24;
    if (riff + 8 > n) return "truncated WebP (the RIFF chunk runs past the end of the file)";
  }
  return "";
}

Image image_decode_on_white(const uint8_t* data, size_t size, const std::string& source,
                            int64_t max_pixels) {
  image_probe_within(data, size, source, max_pixels);
  int w = 0, h = 0, channels = 0;
  std::vector<uint8_t> webp;
  bool alpha = true;
  uint8_t* pixels = nullptr;
  if (webp_signature(data, size)) {
    webp = webp_decode_rgba(data, size, source, &w, &h);
    pixels = webp.data();
  } else {
    if (!stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &channels))
      throw file_error(source, std::string("not a decodable image (") + stbi_failure_reason() + ")");
    alpha = channels == 2 || channels == 4;
    pixels = stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &channels, alpha ? 4 : 3);
    if (!pixels) throw file_error(source, std::string("cannot decode image (") + stbi_failure_reason() + ")");
  }
  Image image;
  image.width = w;
  image.height = h;
  const size_t count = static_cast<size_t>(w) * h;
  image.pixels.resize(count * 3);
  if (alpha) {
    for (size_t i = 0; i < count; ++i) {
      const unsigned a = pixels[i * 4 + 3];
      for (int c = 0; c < 3; ++c)
        image.pixels[i * 3 + c] = static_cast<uint8_t>((pixels[i * 4 + c] * a + 255u * (255u - a) + 127u) / 255u);
    }
  } else {
    std::memcpy(image.pixels.data(), pixels, count * 3);
  }
  if (webp.empty()) stbi_image_free(pixels);
  return image;
}

FilterResult filter_sample(const RawSample& s, const FilterOptions& o) {
  FilterResult r;
  auto drop = [&r](const char* why, std::string detail) -> FilterResult& {
    r.reason = why;
    r.detail = std::move(detail);
    return r;
  };
  if (!s.reason.empty()) {
    r.reason = s.reason;
    r.detail = s.detail;
    return r;
  }
  if (!s.has_image) return drop(reason::missing_image, s.key + ": caption without an image");
  if (!s.has_caption) return drop(reason::missing_caption, s.image_name + ": image without a caption");

  // Captions: each line on its own; blank lines are not captions.
  std::string first_reason;
  for (std::string line : caption_lines(s.captions_text)) {
    if (caption_normalize(line).empty() && utf8_valid(line)) continue;
    ++r.captions_seen;
    const char* why = nullptr;
    if (o.max_caption_bytes > 0 && static_cast<int64_t>(line.size()) > o.max_caption_bytes) {
      why = reason::caption_too_long;
    } else if (!utf8_valid(line)) {
      if (o.utf8 == Utf8Policy::drop) why = reason::caption_invalid_utf8;
      else { line = utf8_repair(line); ++r.utf8_repaired; }
    }
    std::string text;
    if (!why) {
      text = caption_normalize(line);
      if (text.empty()) why = reason::caption_empty;
      else if (o.min_words > 0 && caption_word_count(text) < o.min_words) why = reason::caption_too_short;
      else if (o.boilerplate && caption_boilerplate_fraction(text) > o.max_boilerplate_fraction)
        why = reason::caption_boilerplate;
      else if (o.english && caption_language(text) == CaptionLanguage::other)
        why = reason::caption_not_english;
    }
    if (why) {
      ++r.caption_drops[why];
      if (first_reason.empty()) first_reason = why;
      continue;
    }
    r.captions.push_back(std::move(text));
  }
  if (r.captions.empty()) {
    if (first_reason.empty()) return drop(reason::caption_empty, s.key + ": caption file has no text");
    r.reason = first_reason;
    r.detail = s.key + ": no caption passed the filters (first: " + first_reason + ")";
    return r;
  }

  // Image: everything up to the decode reads only the header.
  const uint8_t* data = s.image.data();
  const size_t size = s.image.size();
  if (size == 0) return drop(reason::image_empty, s.image_name + ": empty image file");
  r.image_format = image_format_of(data, size);
  ImageHeader header;
  try {
    header = image_probe(data, size, s.image_name);
  } catch (const Error& e) {
    return drop(reason::image_undecodable, e.what());
  }
  const int64_t pixels = static_cast<int64_t>(header.width) * header.height;
  if (o.max_pixels > 0 && pixels > o.max_pixels)
    return drop(reason::image_too_many_pixels,
                s.image_name + ": header says " + std::to_string(header.width) + "x" +
                    std::to_string(header.height) + ", over " + std::to_string(o.max_pixels) + " pixels");
  if (o.min_side > 0 && std::min(header.width, header.height) < o.min_side)
    return drop(reason::image_too_small, s.image_name + ": " + std::to_string(header.width) + "x" +
                                             std::to_string(header.height) + " is under the minimum side " +
                                             std::to_string(o.min_side));
  const double aspect = static_cast<double>(header.width) / header.height;
  if ((o.min_aspect > 0 && aspect < o.min_aspect) || (o.max_aspect > 0 && aspect > o.max_aspect))
    return drop(reason::aspect_ratio, s.image_name + ": aspect ratio " + std::to_string(aspect) +
                                          " outside [" + std::to_string(o.min_aspect) + ", " +
                                          std::to_string(o.max_aspect) + "]");
  const std::string truncated = image_truncation_problem(data, size);
  if (!truncated.empty()) return drop(reason::image_truncated, s.image_name + ": " + truncated);
  r.hash = content_hash(data, size);
  if (o.decode) {
    try {
      r.image = image_decode_on_white(data, size, s.image_name, o.max_pixels > 0 ? o.max_pixels : INT64_MAX);
    } catch (const Error& e) {
      return drop(reason::image_undecodable, e.what());
    }
    if (r.image.width != header.width || r.image.height != header.height)
      return drop(reason::image_undecodable, s.image_name + ": decoded size differs from the header");
  }
  return r;
}

}  // namespace dalle

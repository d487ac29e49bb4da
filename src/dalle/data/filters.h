// The collection filters of SPEC §4 applied to one raw sample, each switchable, each with its
// own reason string in the report. Order: what the reader found (missing member, unsafe name,
// oversized file), then captions (cheap), then the image header (pixel bound, aspect ratio,
// minimum side: all before any pixel is decoded), then the decode itself (undecodable,
// truncated). Exact duplicates are judged by the caller, in input order, so the result does not
// depend on the number of threads.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dalle/data/sample_source.h"
#include "dalle/io/image.h"

namespace dalle {

// Reasons as they appear in report.json.
namespace reason {
inline constexpr const char* missing_image = "missing_image";
inline constexpr const char* missing_caption = "missing_caption";
inline constexpr const char* unsafe_member_name = "unsafe_member_name";
inline constexpr const char* tar_corrupt = "tar_corrupt";
inline constexpr const char* tsv_malformed = "tsv_malformed_line";
inline constexpr const char* caption_empty = "caption_empty";
inline constexpr const char* caption_invalid_utf8 = "caption_invalid_utf8";
inline constexpr const char* caption_too_long = "caption_too_long";
inline constexpr const char* caption_too_short = "caption_too_short";
inline constexpr const char* caption_not_english = "caption_not_english";
inline constexpr const char* caption_boilerplate = "caption_boilerplate";
inline constexpr const char* image_file_too_large = "image_file_too_large";
inline constexpr const char* image_empty = "image_empty";
inline constexpr const char* image_undecodable = "image_undecodable";
inline constexpr const char* image_truncated = "image_truncated";
inline constexpr const char* image_too_many_pixels = "image_too_many_pixels";
inline constexpr const char* image_too_small = "image_too_small";
inline constexpr const char* aspect_ratio = "aspect_ratio";
inline constexpr const char* duplicate_image = "duplicate_image";
}  // namespace reason

enum class Utf8Policy { drop, repair };

struct FilterOptions {
  // Captions. A caption file may hold several captions (lines); each is checked on its own and
  // an image is dropped when none survives, under the reason of its first caption.
  int min_words = 3;                 // 0 disables
  int64_t max_caption_bytes = 1000;  // 0 disables
  bool english = true;
  bool boilerplate = true;
  double max_boilerplate_fraction = 0.5;  // drop when more than this fraction is boilerplate
  Utf8Policy utf8 = Utf8Policy::drop;
  // Images.
  double min_aspect = 0.5;  // width / height; 0 disables
  double max_aspect = 2.0;  // 0 disables
  int min_side = 64;        // shorter side, 0 disables
  int64_t max_pixels = int64_t(1) << 26;  // checked from the header, before decoding
  bool dedup = true;        // exact duplicates by content hash (applied by the caller)
  bool decode = true;       // false: header checks only (no pixels in the result)
};

struct ContentHash {
  uint64_t a = 0, b = 0;
  bool operator==(const ContentHash& o) const { return a == o.a && b == o.b; }
};
struct ContentHashHasher {
  size_t operator()(const ContentHash& h) const { return static_cast<size_t>(h.a); }  // already uniform
};
// XXH3-128 of the bytes (a = low, b = high 64 bits): exact duplicates, not near ones.
ContentHash content_hash(const uint8_t* data, size_t size);

struct FilterResult {
  std::string reason;  // empty: kept (subject to the caller's duplicate check)
  std::string detail;
  Image image;         // decoded RGB (alpha composited on white) when kept and decoding is on
  std::string image_format;  // "png", "jpg", "bmp", "gif", "webp", "" (from the magic bytes)
  std::vector<std::string> captions;               // the surviving captions, normalised
  std::map<std::string, int64_t> caption_drops;    // per-caption reasons, kept images included
  int64_t captions_seen = 0;
  int64_t utf8_repaired = 0;
  ContentHash hash;
};

FilterResult filter_sample(const RawSample& sample, const FilterOptions& options);

// Image format from the first bytes ("png", "jpg", ...; "" when unknown).
std::string image_format_of(const uint8_t* data, size_t size);
// A reason string when the file is cut short (a PNG without IEND, a JPEG whose entropy-coded
// data has no end-of-image marker), else "". stb decodes some truncated files without complaint,
// filling the rest with grey, so this is checked separately.
std::string image_truncation_problem(const uint8_t* data, size_t size);
// Decodes to RGB, compositing any alpha channel on white (emoji, logos), after the pixel bound
// check on the header. Throws an Error naming `source`.
Image image_decode_on_white(const uint8_t* data, size_t size, const std::string& source,
                            int64_t max_pixels);

}  // namespace dalle

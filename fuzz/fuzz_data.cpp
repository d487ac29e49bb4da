// libFuzzer target over the data path a downloaded dataset reaches: tar shard parsing
// (libarchive + our WebDataset grouping), image header probing, truncation checks and decoding,
// and every caption filter. The first byte picks the path; the rest is the input.
// Build and run: scripts/fuzz.sh [seconds]   (clang, -fsanitize=fuzzer,address,undefined)
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "dalle/data/caption_filters.h"
#include "dalle/data/filters.h"
#include "dalle/data/sample_source.h"
#include "dalle/data/tar_shards.h"
#include "dalle/io/image.h"
#include "dalle/util/error.h"

using namespace dalle;

namespace {

FilterOptions fuzz_filters() {
  FilterOptions f;
  f.max_pixels = int64_t(1) << 20;  // keep each decode small: the fuzzer looks for crashes, not OOMs
  f.min_side = 1;
  return f;
}

const std::vector<uint8_t>& tiny_png() {
  static const std::vector<uint8_t> png = [] {
    Image img;
    img.width = img.height = 2;
    img.pixels.assign(12, 200);
    return image_encode_png(img);
  }();
  return png;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 3;
  const uint8_t* body = data + 1;
  const size_t n = size - 1;
  const FilterOptions filters = fuzz_filters();
  if (mode == 0) {  // a tar shard
    static const std::string path = [] {
      static std::string p = "/tmp/dalle_fuzz_" + std::to_string(::getpid()) + ".tar";
      std::atexit([] { std::remove(p.c_str()); });  // one scratch file per fuzzing process
      return p;
    }();
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(body, 1, n, f);
    std::fclose(f);
    SourceOptions so;
    so.max_image_bytes = 1 << 20;
    so.max_caption_bytes = 1 << 16;
    TarShardSource source({path}, so);
    RawSample s;
    for (int i = 0; i < 64 && source.next(s); ++i) filter_sample(s, filters);
  } else if (mode == 1) {  // an image with a good caption
    RawSample s;
    s.key = "fuzz";
    s.image_name = "fuzz.img";
    s.has_image = s.has_caption = true;
    s.image.assign(body, body + n);
    s.captions_text = "a small red square on a white background";
    filter_sample(s, filters);
  } else {  // captions
    RawSample s;
    s.key = "fuzz";
    s.image_name = "fuzz.png";
    s.has_image = s.has_caption = true;
    s.image = tiny_png();
    s.captions_text.assign(reinterpret_cast<const char*>(body), n);
    filter_sample(s, filters);
    const std::string text(reinterpret_cast<const char*>(body), n);
    caption_boilerplate_fraction(text);
    utf8_repair(text);
    if (std::count(text.begin(), text.end(), '{') <= 3) {
      try {
        expand_braces(text.substr(0, 64));
      } catch (const Error&) {
      }
    }
  }
  return 0;
}

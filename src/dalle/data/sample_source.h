// Readers of image–caption pairs, one interface for three layouts (issue 4):
//   - a folder of images with same-stem .txt captions (one caption per line),
//   - WebDataset tar shards (`key.jpg|png|webp` beside `key.txt`), with brace expansion of
//     shard lists (`data/{000000..000099}.tar`),
//   - a TSV of `path<TAB>caption` (paths relative to the TSV's folder).
// Readers only read bytes: nothing is decoded and nothing is written to disk, so a tar member
// named `../../etc/passwd` can never escape anywhere. Problems with one sample (a member
// without its caption, an unsafe name, an oversized file) travel with the sample as a reason,
// so the caller counts them; only problems with a whole source (no such file) throw.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dalle {

struct RawSample {
  std::string key;         // where it came from, for messages: "shard.tar:000123", "dir/cat"
  std::string image_name;  // file or member name of the image ("" when missing)
  std::vector<uint8_t> image;
  std::string captions_text;  // raw bytes of the caption file or TSV cells, lines = captions
  bool has_image = false;
  bool has_caption = false;
  std::string reason;  // set by the reader when the sample is unusable as read (see filters.h)
  std::string detail;  // a human sentence for `reason`
};

enum class SourceFormat { folder, tar, tsv };

struct SourceOptions {
  // Files larger than these are not read into memory; the sample carries a reason instead.
  int64_t max_image_bytes = int64_t(64) << 20;
  int64_t max_caption_bytes = int64_t(1) << 20;
};

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // Fills `out` with the next sample; false at the end.
  virtual bool next(RawSample& out) = 0;
  // Number of samples if known without reading everything (folders, TSV), else -1.
  virtual int64_t size_hint() const { return -1; }
};

// `data/{000000..000099}.tar` → 100 paths; `{a,b}` lists; several groups multiply. Zero
// padding follows the width of the first bound. Throws on unbalanced or reversed ranges.
std::vector<std::string> expand_braces(const std::string& pattern);

// Folder → folder (or tar when it holds .tar shards and no images), `.tar` or a brace pattern
// → tar shards, `.tsv` → TSV. Throws naming `spec` when none applies.
SourceFormat detect_source_format(const std::string& spec);
const char* source_format_name(SourceFormat f);

// The shard files of a tar source: a brace pattern expanded, a single file, or the .tar files of a
// folder in name order. Throws when there are none.
std::vector<std::string> tar_shard_list(const std::string& spec);

std::unique_ptr<SampleSource> open_sample_source(const std::string& spec,
                                                 const SourceOptions& options = {});

// True for extensions we read as images (lowercase, with the dot): .png .jpg .jpeg .bmp .webp .gif
bool is_sample_image_extension(const std::string& ext);

}  // namespace dalle

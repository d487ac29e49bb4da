// Reader for a folder of images with same-stem .txt captions (one caption per line). Bad files
// are skipped and counted, never fatal: one corrupt image must not stop a training run.
// image_set_load also reads every other source of data/sample_source.h (WebDataset shards from
// `dalle data prepare`, a brace pattern of shards, a TSV); data/loader.h streams them instead.
#pragma once
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

namespace dalle {

struct ImageCaptionPaths {
  std::string image;
  std::string captions;  // same-stem .txt, or empty if there is none
};

// Sorted by file name. Throws if `dir` is not a folder.
std::vector<ImageCaptionPaths> image_folder_list(const std::string& dir);

// Captions of one .txt file: trimmed non-empty lines.
std::vector<std::string> read_caption_lines(const std::string& path);

struct ImageSet {
  torch::Tensor images;  // uint8 [N, size, size, 3]
  std::vector<std::vector<std::string>> captions;
  std::vector<std::string> paths;
  int64_t skipped = 0;
};

// Decodes, center-crops and resizes every image to size x size on `threads` threads. `dir` may
// also be tar shards or a TSV (see sample_source.h); images with alpha are put on white.
// Images without captions are skipped when `require_captions`.
ImageSet image_set_load(const std::string& dir, int size, bool require_captions, int threads,
                        int64_t limit = -1, const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace dalle

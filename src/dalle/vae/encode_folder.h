// `dalle vae encode` as a library call: captioned images (streamed from any source the loader
// reads) -> a token folder written shard by shard that carries the dVAE which made it
// (config.json + vae.safetensors), ready for `dalle train`.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace dalle {

struct EncodeFolderOptions {
  int batch = 64;
  int workers = 2;          // image decoding threads
  int64_t max_images = -1;  // only the first N images (name order), -1 = all
  // 1: each image's centre crop. K > 1: K crops per image with the prior's augmentation (SPEC
  // §3: near-centre crop, random resize, no flip), each a sample of its own with the image's
  // captions: new crops for the prior without encoding on the fly.
  int crops = 1;
  uint64_t seed = 0;  // of the crops
  std::string device = "cpu";  // where the dVAE runs (util/device.h)
  // Called with (stage, done, total) as images are encoded; stage is "encoding", total 0 when
  // the source's size is not known in advance (tar shards).
  std::function<void(const char*, int64_t, int64_t)> progress;
};

struct EncodeFolderResult {
  int64_t encoded = 0;
  int64_t skipped = 0;
  int grid = 0;
};

EncodeFolderResult vae_encode_folder(const std::string& vae_dir, const std::string& images_dir,
                                     const std::string& out_dir, const EncodeFolderOptions& options = {});

}  // namespace dalle

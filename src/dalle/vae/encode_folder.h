// `dalle vae encode` as a library call: a folder of captioned images -> a token folder that
// carries the dVAE which made it (config.json + vae.safetensors), ready for `dalle train`.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace dalle {

struct EncodeFolderOptions {
  int batch = 64;
  int threads = 0;
  int64_t max_images = -1;
  // Called with (stage, done, total); stage is "loading" or "encoding".
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

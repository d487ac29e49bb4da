#include "dalle/vae/encode_folder.h"

#include <filesystem>

#include "dalle/bundle/bundle.h"
#include "dalle/data/image_folder.h"
#include "dalle/data/token_set.h"
#include "dalle/util/fs.h"
#include "dalle/util/torch_api.h"

namespace dalle {

EncodeFolderResult vae_encode_folder(const std::string& vae_dir, const std::string& images_dir,
                                     const std::string& out_dir, const EncodeFolderOptions& o) {
  ModelConfig config;
  Dvae vae = vae_load(vae_dir, &config);
  ImageSet set = image_set_load(images_dir, config.vae.image_size, /*require_captions=*/false, o.threads,
                                o.max_images, [&](int64_t done, int64_t total) {
                                  if (o.progress) o.progress("loading", done, total);
                                });
  torch::InferenceMode inference;
  const int64_t n = set.images.size(0);
  const int grid = config.vae.grid();
  TokenSet tokens;
  tokens.tokens = torch::empty({n, grid, grid}, torch::kLong);
  tokens.captions = std::move(set.captions);
  for (int64_t i = 0; i < n; i += o.batch) {
    const int64_t b = std::min<int64_t>(o.batch, n - i);
    tokens.tokens.narrow(0, i, b).copy_(vae->encode_images(set.images.narrow(0, i, b)));
    if (o.progress) o.progress("encoding", i + b, n);
  }
  token_set_write(out_dir, tokens);
  // The tokens travel with the VAE that made them.
  config_save(path_join(out_dir, kConfigFile), config);
  std::filesystem::copy_file(path_join(vae_dir, kVaeWeightsFile), path_join(out_dir, kVaeWeightsFile),
                             std::filesystem::copy_options::overwrite_existing);
  return {n, set.skipped, grid};
}

}  // namespace dalle

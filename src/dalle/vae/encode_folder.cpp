#include "dalle/vae/encode_folder.h"

#include <filesystem>

#include "dalle/bundle/bundle.h"
#include "dalle/data/loader.h"
#include "dalle/data/token_set.h"
#include "dalle/util/device.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/util/torch_api.h"

namespace dalle {

EncodeFolderResult vae_encode_folder(const std::string& vae_dir, const std::string& images_dir,
                                     const std::string& out_dir, const EncodeFolderOptions& o) {
  if (o.crops < 1) throw Error("vae encode: --crops must be at least 1");
  detect_source_format(images_dir);  // a missing source fails before anything is written
  ModelConfig config;
  Dvae vae = vae_load(vae_dir, &config);
  vae->to(device_from_name(o.device));
  // The images stream in source order, one epoch per crop: a centre crop each (crops = 1), or
  // K crops of SPEC §3's augmentation (near-centre crop, random resize, no flip) per image. The
  // loader's batches wrap around epochs, so each image's position says which crop it is.
  LoaderOptions lo;
  lo.data = images_dir;
  lo.image_size = config.vae.image_size;
  lo.augment = o.crops > 1 ? AugmentKind::prior : AugmentKind::centre;
  lo.batch_size = o.batch;
  lo.workers = o.workers;
  lo.shuffle_buffer = 1;
  lo.seed = o.seed;
  lo.max_samples = o.max_images;
  lo.all_captions = true;
  Loader loader(lo);
  const int grid = config.vae.grid();
  EncodeFolderResult result;
  result.grid = grid;
  // Known for folders and TSVs (0 for shards, whose size shows only once read).
  int64_t total = std::max<int64_t>(0, open_sample_source(images_dir)->size_hint());
  if (o.max_images >= 0) total = std::min(total, o.max_images);
  total *= o.crops;
  std::unique_ptr<TokenSetWriter> writer;
  torch::InferenceMode inference;
  for (bool done = false; !done;) {
    LoaderBatch b = loader.next();  // an empty or unreadable source fails here, before the output exists
    // The batch may run into the epoch of a crop too many: those samples are not encoded.
    int64_t keep = 0;
    while (keep < static_cast<int64_t>(b.positions.size()) && b.positions[static_cast<size_t>(keep)].epoch < o.crops) ++keep;
    done = keep < static_cast<int64_t>(b.positions.size());
    if (keep == 0) break;
    b.caption_lists.resize(static_cast<size_t>(keep));
    if (!writer) writer = std::make_unique<TokenSetWriter>(out_dir);
    writer->add(vae->encode_images(b.images.narrow(0, 0, keep)).cpu(), b.caption_lists);
    result.encoded += keep;
    if (o.progress) o.progress("encoding", result.encoded, total);
  }
  writer->close();
  result.skipped = loader.stats().skipped / o.crops;  // each unreadable image was met once per crop
  // The tokens travel with the VAE that made them.
  config_save(path_join(out_dir, kConfigFile), config);
  std::filesystem::copy_file(path_join(vae_dir, kVaeWeightsFile), path_join(out_dir, kVaeWeightsFile),
                             std::filesystem::copy_options::overwrite_existing);
  return result;
}

}  // namespace dalle

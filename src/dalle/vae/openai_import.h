// OpenAI's released dVAE (encoder.pkl and decoder.pkl: the whole modules, saved with torch.save)
// as one of our dVAEs. Their parameter names are ours ("blocks.group_1.block_1.res_path.conv_1.w"),
// so importing is reading the pickles safely (io/torch_checkpoint.h), inferring the layout from
// the tensor shapes, and checking every tensor against the network that layout builds.
#pragma once
#include <string>
#include <vector>

#include "dalle/bundle/config.h"
#include "dalle/vae/dvae.h"

namespace dalle {

struct OpenaiDvae {
  VaeConfig config;  // inferred: channels, n_hid, groups, blocks per group, vocab, n_init
  Dvae vae{nullptr};
  // What the user should know: the source dtypes and how they were stored, and how the layout
  // compares with `reference` (the paper preset's dVAE).
  std::vector<std::string> notes;
};

// Reads both files; throws dalle::Error naming the file for anything that does not fit (a
// missing or extra tensor, a shape that disagrees, encoder and decoder that do not match).
// `image_size` is what the imported model's config records (the networks are convolutional;
// OpenAI's was trained at 256).
OpenaiDvae openai_dvae_import(const std::string& encoder_path, const std::string& decoder_path, int image_size,
                              const VaeConfig& reference);

}  // namespace dalle

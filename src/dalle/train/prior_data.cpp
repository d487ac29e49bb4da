#include "dalle/train/prior_data.h"

#include "dalle/util/torch_api.h"

#include "dalle/data/token_set.h"

namespace dalle {

namespace {

TokenLoaderOptions token_options(const PriorDataOptions& o) {
  TokenLoaderOptions t;
  t.dir = o.data;
  t.batch_size = o.batch_size;
  t.shuffle_buffer = o.shuffle_buffer;
  t.seed = o.seed;
  t.holdout = o.holdout;
  t.rank = o.rank;
  t.world = o.world;
  return t;
}

LoaderOptions image_options(const PriorDataOptions& o, const VaeConfig& vae) {
  LoaderOptions l;
  l.data = o.data;
  l.image_size = vae.image_size;
  l.augment = o.augment ? AugmentKind::prior : AugmentKind::centre;
  l.batch_size = o.batch_size;
  l.workers = o.workers;
  l.shuffle_buffer = std::min<int64_t>(o.shuffle_buffer, 1000);  // raw images are larger than tokens
  l.seed = o.seed;
  l.holdout = o.holdout;
  l.rank = o.rank;
  l.world = o.world;
  l.all_captions = true;
  return l;
}

class TokenFolderData : public PriorData {
 public:
  TokenFolderData(const PriorDataOptions& o, LoaderPosition start) : loader_(token_options(o), start) {}
  TokenBatch next() override { return loader_.next(); }

 private:
  TokenLoader loader_;
};

// Images through the loader (decoding and augmentation on its threads), then the dVAE's argmax
// tokens of the batch, in fp32 as `dalle vae encode` computes them.
class EncodingData : public PriorData {
 public:
  EncodingData(const PriorDataOptions& o, Dvae vae, LoaderPosition start)
      : loader_(image_options(o, vae->config()), start), vae_(std::move(vae)) {}
  TokenBatch next() override {
    LoaderBatch images = loader_.next();
    TokenBatch batch;
    {
      torch::InferenceMode inference;
      batch.tokens = vae_->encode_images(images.images).to(torch::kLong);
    }
    batch.tokens = batch.tokens.clone();  // a normal tensor: the trainer indexes it with autograd on
    batch.captions = std::move(images.caption_lists);
    batch.position = images.position;
    return batch;
  }
  double wait_seconds() const override { return loader_.wait_seconds(); }

 private:
  Loader loader_;
  Dvae vae_;
};

}  // namespace

void prior_data_check(const PriorDataOptions& o) {
  if (o.vae.empty())
    token_shard_stems(o.data);
  else
    detect_source_format(o.data);
}

Dvae prior_data_vae(const PriorDataOptions& o, ModelConfig* config) {
  // A token folder carries the dVAE that made it.
  return vae_load(o.vae.empty() ? o.data : o.vae, config);
}

std::unique_ptr<PriorData> prior_data_open(const PriorDataOptions& o, Dvae vae, LoaderPosition start) {
  if (o.vae.empty()) return std::make_unique<TokenFolderData>(o, start);
  return std::make_unique<EncodingData>(o, std::move(vae), start);
}

TokenBatch prior_data_holdout(const PriorDataOptions& o, Dvae vae, int64_t max_samples) {
  if (o.vae.empty()) return token_loader_read_holdout(token_options(o), max_samples);
  const HeldOutSet held = loader_read_holdout(image_options(o, vae->config()), max_samples);
  TokenBatch out;
  if (held.images.size(0) == 0) return out;
  std::vector<torch::Tensor> parts;
  {
    torch::InferenceMode inference;
    for (int64_t i = 0; i < held.images.size(0); i += 64)
      parts.push_back(vae->encode_images(held.images.narrow(0, i, std::min<int64_t>(64, held.images.size(0) - i))));
  }
  out.tokens = torch::cat(parts).to(torch::kLong).clone();
  for (const auto& c : held.captions) out.captions.push_back({c});
  return out;
}

std::vector<std::vector<std::string>> prior_data_captions(const PriorDataOptions& o, int64_t max_samples) {
  return o.vae.empty() ? token_set_read_captions(o.data, max_samples) : loader_read_captions(o.data, max_samples);
}

}  // namespace dalle

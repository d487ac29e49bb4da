// The contrastive text-image model that ranks sampled candidates (SPEC §5): both encoders, a
// learned temperature, and rerank.safetensors, which carries its own config and text
// vocabulary in its metadata so it loads without the bundle's config.json and survives
// retraining of the dVAE or prior.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

#include "dalle/bundle/config.h"
#include "dalle/rerank/image_encoder.h"
#include "dalle/rerank/text_encoder.h"
#include "dalle/text/tokenizer.h"

namespace dalle {

constexpr const char* kRerankWeightsFile = "rerank.safetensors";

class RerankerImpl : public torch::nn::Module {
 public:
  RerankerImpl(const RerankConfig& config, int text_vocab);
  // ids [B, text_len] (see rerank_encode_captions) -> L2-normalised [B, E].
  torch::Tensor embed_text(const torch::Tensor& ids);
  // float [B, 3, H, W] in [0, 1], resized to config.image_size if needed -> L2-normalised [B, E].
  torch::Tensor embed_images(const torch::Tensor& images);
  const RerankConfig& config() const { return config_; }
  int text_vocab() const { return text->vocab(); }

  TextEncoder text{nullptr};
  ImageEncoder image{nullptr};
  torch::Tensor log_scale;  // CLIP: starts at log(1/0.07), clamped to log(100)

 private:
  RerankConfig config_;
};
TORCH_MODULE(Reranker);

// Tokenised, truncated to config.text_len and padded with the id `text_vocab`: [captions, text_len].
torch::Tensor rerank_encode_captions(const Tokenizer& tokenizer, const std::vector<std::string>& captions,
                                     const RerankConfig& config, int text_vocab);

// `tokenizer_fingerprint`: Tokenizer::fingerprint() of the tokenizer it was trained with.
void reranker_save(const std::string& path, const Reranker& model, int64_t step,
                   const std::string& tokenizer_fingerprint);
// `tokenizer_fingerprint` (out, optional): the recorded one, empty for rerankers saved before
// fingerprints were recorded.
Reranker reranker_load(const std::string& path, std::string* tokenizer_fingerprint = nullptr);
// Throws naming `path` unless `model` (loaded from it, with its recorded fingerprint) reads the
// ids of `tokenizer`: the same vocabulary size and, when recorded, the same fingerprint.
void reranker_check_tokenizer(const Reranker& model, const std::string& recorded_fingerprint,
                              const Tokenizer& tokenizer, const std::string& path);

// Cosine similarity of `caption` to each image (float [N, 3, H, W] in [0, 1]): [N].
torch::Tensor rerank_scores(Reranker& model, const Tokenizer& tokenizer, const std::string& caption,
                            const torch::Tensor& images);

}  // namespace dalle

#include "dalle/rerank/reranker.h"

#include "dalle/util/torch_api.h"

#include <torch/nn/functional/normalization.h>
#include <torch/nn/functional/upsampling.h>

#include <cmath>

#include "dalle/io/weights.h"
#include "dalle/util/error.h"

namespace dalle {

RerankerImpl::RerankerImpl(const RerankConfig& config, int text_vocab) : config_(config) {
  text = register_module("text", TextEncoder(config, text_vocab));
  image = register_module("image", ImageEncoder(config));
  log_scale = register_parameter("log_scale", torch::full({}, std::log(1 / 0.07)));
}

// Inputs on any device; outputs on the model's.
torch::Tensor RerankerImpl::embed_text(const torch::Tensor& ids) {
  return torch::nn::functional::normalize(text(ids.to(log_scale.device())),
                                          torch::nn::functional::NormalizeFuncOptions().dim(1));
}

torch::Tensor RerankerImpl::embed_images(const torch::Tensor& images) {
  torch::Tensor x = images.to(log_scale.device());
  if (x.size(2) != config_.image_size || x.size(3) != config_.image_size)
    x = torch::nn::functional::interpolate(
        x, torch::nn::functional::InterpolateFuncOptions()
               .size(std::vector<int64_t>{config_.image_size, config_.image_size})
               .mode(torch::kBilinear).align_corners(false));
  return torch::nn::functional::normalize(image(x), torch::nn::functional::NormalizeFuncOptions().dim(1));
}

torch::Tensor rerank_encode_captions(const Tokenizer& tokenizer, const std::vector<std::string>& captions,
                                     const RerankConfig& config, int text_vocab) {
  torch::Tensor ids = torch::full({static_cast<int64_t>(captions.size()), config.text_len}, text_vocab, torch::kLong);
  auto a = ids.accessor<int64_t, 2>();
  for (size_t i = 0; i < captions.size(); ++i) {
    const std::vector<int> t = tokenizer.encode(captions[i]);
    for (size_t j = 0; j < t.size() && j < static_cast<size_t>(config.text_len); ++j) a[i][j] = t[j];
  }
  return ids;
}

void reranker_save(const std::string& path, const Reranker& model, int64_t step,
                   const std::string& tokenizer_fingerprint) {
  SafeTensors st;
  module_weights_into(*model, st);
  ModelConfig holder;
  holder.rerank = model->config();
  st.metadata["rerank_config"] = config_to_json(holder)["rerank"].dump();
  st.metadata["text_vocab"] = std::to_string(model->text_vocab());
  st.metadata["tokenizer_fingerprint"] = tokenizer_fingerprint;
  st.metadata["step"] = std::to_string(step);
  safetensors_save(path, st);
}

Reranker reranker_load(const std::string& path, std::string* tokenizer_fingerprint) {
  const SafeTensors st = safetensors_load(path);
  auto config = st.metadata.find("rerank_config");
  auto vocab = st.metadata.find("text_vocab");
  if (config == st.metadata.end() || vocab == st.metadata.end())
    throw file_error(path, "no rerank_config/text_vocab metadata (not a reranker written by dalle rerank train)");
  ModelConfig holder;
  try {
    holder = config_from_json({{"rerank", nlohmann::json::parse(config->second)}}, path);
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path, std::string("invalid rerank_config metadata: ") + e.what());
  }
  Reranker model(holder.rerank, std::stoi(vocab->second));
  module_load_weights(*model, st, path);
  model->eval();
  if (tokenizer_fingerprint) {
    auto fp = st.metadata.find("tokenizer_fingerprint");
    *tokenizer_fingerprint = fp == st.metadata.end() ? "" : fp->second;
  }
  return model;
}

void reranker_check_tokenizer(const Reranker& model, const std::string& recorded_fingerprint,
                              const Tokenizer& tokenizer, const std::string& path) {
  if (model->text_vocab() != tokenizer.vocab_size())
    throw file_error(path, "reranker was trained for a tokenizer of " + std::to_string(model->text_vocab()) +
                               " ids; this one has " + std::to_string(tokenizer.vocab_size()));
  if (!recorded_fingerprint.empty() && recorded_fingerprint != tokenizer.fingerprint())
    throw file_error(path, "reranker was trained with another tokenizer of the same size (fingerprint " +
                               recorded_fingerprint + ", this one " + tokenizer.fingerprint() +
                               "): its caption ids would be wrong; retrain it with --tokenizer pointing at "
                               "this bundle's tokenizer");
}

torch::Tensor rerank_scores(Reranker& model, const Tokenizer& tokenizer, const std::string& caption,
                            const torch::Tensor& images) {
  torch::InferenceMode inference;
  const torch::Tensor ids = rerank_encode_captions(tokenizer, {caption}, model->config(), model->text_vocab());
  return torch::matmul(model->embed_images(images), model->embed_text(ids).squeeze(0));
}

}  // namespace dalle

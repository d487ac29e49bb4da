#include "dalle/bundle/bundle.h"

#include "dalle/util/torch_api.h"

#include <cstdlib>

#include "dalle/io/weights.h"
#include "dalle/prior/quantized_weights.h"
#include "dalle/util/block_weights.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

namespace {

void require_folder(const std::string& dir, const std::string& what) {
  if (!is_directory(dir)) throw file_error(dir, "not a folder (expected " + what + ")");
  if (!path_exists(path_join(dir, kConfigFile)))
    throw file_error(dir, std::string("no ") + kConfigFile + " in this folder (expected " + what + ")");
}

}  // namespace

Dvae vae_load(const std::string& dir, ModelConfig* config_out) {
  require_folder(dir, "a VAE run or model bundle");
  ModelConfig config = config_load(path_join(dir, kConfigFile));
  Dvae vae(config.vae);
  const std::string weights = path_join(dir, kVaeWeightsFile);
  module_load_weights(*vae, safetensors_load(weights), weights);
  vae->eval();
  vae->to_channels_last();  // inference: NHWC convolutions run faster here (bench_vae)
  if (config_out) *config_out = config;
  return vae;
}

Prior prior_create(const ModelConfig& config) {
  return Prior(config.prior, config.vae.grid(), config.vae.grid(), config.vae.vocab);
}

Bundle bundle_load(const std::string& dir, std::optional<WeightFormat> weights, const c10::Device& device) {
  require_folder(dir, "a model bundle");
  Bundle b;
  b.path = dir;
  b.vae = vae_load(dir, &b.config);
  b.tokenizer = Tokenizer::load(path_join(dir, b.config.tokenizer_file));
  if (b.tokenizer.vocab_size() > b.config.prior.text_vocab)
    throw file_error(path_join(dir, b.config.tokenizer_file),
                     "tokenizer has " + std::to_string(b.tokenizer.vocab_size()) +
                         " ids but prior.text_vocab is " + std::to_string(b.config.prior.text_vocab));
  b.prior = prior_create(b.config);
  const std::string prior_file = path_join(dir, kPriorWeightsFile);
  SafeTensors st = safetensors_load(prior_file);
  const WeightFormat stored = prior_weights_format(st, prior_file);
  const Int8Weights int8 = prior_weights_unpack(st, prior_file);
  module_load_weights(*b.prior, st, prior_file);
  b.prior->eval();
  b.weights = weights.value_or(stored);
  if (device.is_cpu())
    b.decoder = std::make_shared<PriorDecoder>(b.prior, b.weights, b.weights == WeightFormat::int8 ? int8 : Int8Weights{});
  if (b.weights != WeightFormat::fp32) b.vae->decoder->to(torch::kBFloat16);
  const std::string rerank = path_join(dir, kRerankWeightsFile);
  if (path_exists(rerank)) {
    std::string fingerprint;
    b.reranker = reranker_load(rerank, &fingerprint);
    reranker_check_tokenizer(b.reranker, fingerprint, b.tokenizer, rerank);
  }
  if (!device.is_cpu()) bundle_to_device(b, device);
  return b;
}

void bundle_to_device(Bundle& bundle, const c10::Device& device) {
  bundle.device = device;
  if (bundle.prior) {
    bundle.prior->to(device);
    // A GPU samples bf16 and int8 bundles from block matrices stored in bf16 once: under autocast
    // alone every step would cast the fp32 matrices anew. (Back to fp32 for an fp32 bundle: after
    // bf16 the values stay rounded.)
    const bool bf16 = !device.is_cpu() && bundle.weights != WeightFormat::fp32;
    store_block_weights(bundle.prior->resblock_parameters(), bf16 ? torch::kBFloat16 : torch::kFloat32);
  }
  if (bundle.vae) bundle.vae->to(device);
  if (bundle.reranker) bundle.reranker->to(device);
  bundle.decoder.reset();
}

ImageTokenDecoder& bundle_decoder(Bundle& bundle) {
  if (!bundle.decoder) {
    if (bundle.device.is_cpu()) {
      bundle.decoder = std::make_shared<PriorDecoder>(bundle.prior, bundle.weights);
    } else {
      const bool bf16 = bundle.weights != WeightFormat::fp32;
      // DALLE_CUDA_GRAPHS=0 runs every step's kernels one by one (to compare, or to debug).
      const char* graphs = std::getenv("DALLE_CUDA_GRAPHS");
      bundle.decoder = std::make_shared<GraphDecoder>(bundle.prior, bf16, !(graphs && std::string(graphs) == "0"));
    }
  }
  return *bundle.decoder;
}

}  // namespace dalle

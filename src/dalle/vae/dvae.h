// The paper's discrete VAE (SPEC §1): no normalisation layers, no explicit codebook (the
// decoder's first 1x1 conv is it), resblocks with a small post-gain, max-pool down and
// nearest-neighbour up. Module names follow OpenAI's released dVAE ("blocks.input.w",
// "blocks.group_1.block_1.res_path.conv_1.w", "id_path", "blocks.output.conv"), so those
// weights load by name.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "dalle/bundle/config.h"
#include "dalle/util/resblock_hook.h"

namespace dalle {

// A stride-1 "same" convolution with parameters named w and b, initialised N(0, 1/(n_in k^2)).
class DvaeConvImpl : public torch::nn::Module {
 public:
  DvaeConvImpl(int n_in, int n_out, int kernel);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor w, b;

 private:
  int padding_;
};
TORCH_MODULE(DvaeConv);

// out = id_path(x) + post_gain * res_path(x). The encoder's res_path is 3x3,3x3,3x3,1x1; the
// decoder's is 1x1,3x3,3x3,3x3 (each preceded by ReLU). Bottleneck width n_out / 4.
class DvaeBlockImpl : public torch::nn::Module {
 public:
  DvaeBlockImpl(int n_in, int n_out, int n_layers, bool decoder);
  torch::Tensor forward(const torch::Tensor& x);
  // The residual branch's parameters (the id_path conv is on the fp32 identity path).
  std::vector<torch::Tensor> branch_parameters() const;
  // Training's wrapper for this block (see util/resblock_hook.h); null = run the branch plainly.
  ResblockRunner runner;
  int64_t index = 0;  // this block's number in the runner's order

 private:
  DvaeConv id_path_{nullptr};
  std::vector<DvaeConv> res_path_;
  double post_gain_;
};
TORCH_MODULE(DvaeBlock);

class DvaeEncoderImpl : public torch::nn::Module {
 public:
  explicit DvaeEncoderImpl(const VaeConfig& config);
  // x: mapped pixels [B, 3, H, W] -> logits [B, vocab, H/d, W/d].
  torch::Tensor forward(const torch::Tensor& x);
  bool channels_last = false;  // convert inputs to NHWC (see DvaeImpl::to_channels_last)
  std::vector<std::vector<DvaeBlock>> groups;

 private:
  VaeConfig config_;
  DvaeConv input_{nullptr}, output_{nullptr};
};
TORCH_MODULE(DvaeEncoder);

class DvaeDecoderImpl : public torch::nn::Module {
 public:
  explicit DvaeDecoderImpl(const VaeConfig& config);
  // z: a (relaxed) one-hot map [B, vocab, h, w] -> stats [B, 6, H, W] (mu, ln b per channel).
  torch::Tensor forward(const torch::Tensor& z);
  // Same result for hard tokens [B, h, w] (int64), without materialising the one-hot map:
  // the first 1x1 conv of a one-hot input is a column lookup.
  torch::Tensor forward_tokens(const torch::Tensor& tokens);
  bool channels_last = false;
  std::vector<std::vector<DvaeBlock>> groups;

 private:
  torch::Tensor forward_hidden(torch::Tensor x);
  VaeConfig config_;
  DvaeConv input_{nullptr}, output_{nullptr};
};
TORCH_MODULE(DvaeDecoder);

// The two halves, registered as "encoder" and "decoder".
class DvaeImpl : public torch::nn::Module {
 public:
  explicit DvaeImpl(const VaeConfig& config);
  const VaeConfig& config() const { return config_; }
  DvaeEncoder encoder{nullptr};
  DvaeDecoder decoder{nullptr};

  // uint8 [B, H, W, 3] images -> int64 tokens [B, h, w] (argmax, no Gumbel noise). Inputs on
  // any device; outputs on the model's.
  torch::Tensor encode_images(const torch::Tensor& images_u8);
  // int64 tokens [B, h, w] -> float images [B, 3, H, W] in [0, 1] (unmap(sigmoid(mu))).
  torch::Tensor decode_tokens(const torch::Tensor& tokens);
  c10::Device device() const;
  // Stores the conv weights channels-last (NHWC), which oneDNN's bf16 convolutions prefer;
  // inputs are converted on entry, and every layer keeps the format.
  void to_channels_last();

  // Resblocks in order (encoder groups, then decoder groups) and their branch parameters, for
  // per-resblock gradient scaling; set_resblock_runner installs training's wrapper in each.
  std::vector<DvaeBlock> resblocks() const;
  std::vector<std::vector<torch::Tensor>> resblock_parameters() const;
  void set_resblock_runner(const ResblockRunner& runner);

 private:
  VaeConfig config_;
};
TORCH_MODULE(Dvae);

// Parameter counts computed from the config alone (no allocation), for `dalle info`.
int64_t dvae_encoder_param_count(const VaeConfig& config);
int64_t dvae_decoder_param_count(const VaeConfig& config);

}  // namespace dalle

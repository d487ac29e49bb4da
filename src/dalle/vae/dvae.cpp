#include "dalle/vae/dvae.h"

#include "dalle/util/torch_api.h"

#include <cmath>

#include "dalle/vae/pixels.h"

namespace dalle {

namespace {

// A parameterless module used only to nest names ("blocks", "group_1", "output").
struct Scope : torch::nn::Module {};

int group_width(const VaeConfig& c, int g, bool decoder) {
  // Encoder groups widen 1,2,4,8 x n_hid; the decoder mirrors it 8,4,2,1 x n_hid.
  const int exponent = decoder ? c.groups - 1 - g : g;
  return c.n_hid << exponent;
}

int64_t conv_params(int64_t n_in, int64_t n_out, int64_t k) { return n_in * n_out * k * k + n_out; }

int64_t block_params(int64_t n_in, int64_t n_out, bool decoder) {
  const int64_t h = n_out / 4;
  int64_t n = n_in != n_out ? conv_params(n_in, n_out, 1) : 0;
  if (decoder)
    n += conv_params(n_in, h, 1) + 2 * conv_params(h, h, 3) + conv_params(h, n_out, 3);
  else
    n += conv_params(n_in, h, 3) + 2 * conv_params(h, h, 3) + conv_params(h, n_out, 1);
  return n;
}

}  // namespace

DvaeConvImpl::DvaeConvImpl(int n_in, int n_out, int kernel) : padding_((kernel - 1) / 2) {
  const double std = 1.0 / std::sqrt(static_cast<double>(n_in) * kernel * kernel);
  w = register_parameter("w", torch::randn({n_out, n_in, kernel, kernel}) * std);
  b = register_parameter("b", torch::zeros({n_out}));
}

torch::Tensor DvaeConvImpl::forward(const torch::Tensor& x) {
  return torch::conv2d(x, w, b, /*stride=*/1, /*padding=*/padding_);
}

DvaeBlockImpl::DvaeBlockImpl(int n_in, int n_out, int n_layers, bool decoder)
    : post_gain_(1.0 / (static_cast<double>(n_layers) * n_layers)) {
  const int h = n_out / 4;
  if (n_in != n_out) id_path_ = register_module("id_path", DvaeConv(n_in, n_out, 1));
  auto res = std::make_shared<Scope>();
  if (decoder)
    res_path_ = {DvaeConv(n_in, h, 1), DvaeConv(h, h, 3), DvaeConv(h, h, 3), DvaeConv(h, n_out, 3)};
  else
    res_path_ = {DvaeConv(n_in, h, 3), DvaeConv(h, h, 3), DvaeConv(h, h, 3), DvaeConv(h, n_out, 1)};
  for (size_t i = 0; i < res_path_.size(); ++i)
    res->register_module("conv_" + std::to_string(i + 1), res_path_[i]);
  register_module("res_path", res);
}

torch::Tensor DvaeBlockImpl::forward(const torch::Tensor& x) {
  // Copies, not `this`: a checkpointing runner calls the branch again during backward.
  std::vector<DvaeConv> convs = res_path_;
  const double gain = post_gain_;
  ResidualBranch branch = [convs, gain](const torch::Tensor& h) mutable {
    torch::Tensor r = h;
    for (auto& conv : convs) r = conv->forward(torch::relu(r));
    return gain * r;
  };
  const torch::Tensor id = id_path_ ? id_path_(x) : x;
  return id + (runner ? runner(index, x, branch) : branch(x));
}

std::vector<torch::Tensor> DvaeBlockImpl::branch_parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& conv : res_path_) out.insert(out.end(), {conv->w, conv->b});
  return out;
}

// Builds "blocks.group_g.block_b" for both halves; returns the blocks by group.
static std::vector<std::vector<DvaeBlock>> build_groups(Scope& blocks, const VaeConfig& c,
                                                        int first_width, bool decoder) {
  std::vector<std::vector<DvaeBlock>> groups;
  const int n_layers = c.groups * c.blocks_per_group;
  int n_in = first_width;
  for (int g = 0; g < c.groups; ++g) {
    auto group = std::make_shared<Scope>();
    const int width = group_width(c, g, decoder);
    std::vector<DvaeBlock> list;
    for (int b = 0; b < c.blocks_per_group; ++b) {
      DvaeBlock block(b == 0 ? n_in : width, width, n_layers, decoder);
      group->register_module("block_" + std::to_string(b + 1), block);
      list.push_back(block);
    }
    blocks.register_module("group_" + std::to_string(g + 1), group);
    groups.push_back(list);
    n_in = width;
  }
  return groups;
}

DvaeEncoderImpl::DvaeEncoderImpl(const VaeConfig& config) : config_(config) {
  auto blocks = std::make_shared<Scope>();
  input_ = blocks->register_module("input", DvaeConv(config.channels, config.n_hid, 7));
  groups = build_groups(*blocks, config, config.n_hid, /*decoder=*/false);
  auto output = std::make_shared<Scope>();
  output_ = output->register_module(
      "conv", DvaeConv(group_width(config, config.groups - 1, false), config.vocab, 1));
  blocks->register_module("output", output);
  register_module("blocks", blocks);
}

torch::Tensor DvaeEncoderImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = input_(channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x);
  for (size_t g = 0; g < groups.size(); ++g) {
    for (auto& block : groups[g]) h = block(h);
    if (g + 1 < groups.size()) h = torch::max_pool2d(h, 2);
  }
  torch::Tensor logits = output_(torch::relu(h));
  return config_.logit_gain == 1.0 ? logits : logits * config_.logit_gain;
}

DvaeDecoderImpl::DvaeDecoderImpl(const VaeConfig& config) : config_(config) {
  auto blocks = std::make_shared<Scope>();
  input_ = blocks->register_module("input", DvaeConv(config.vocab, config.n_init, 1));
  groups = build_groups(*blocks, config, config.n_init, /*decoder=*/true);
  auto output = std::make_shared<Scope>();
  output_ = output->register_module("conv", DvaeConv(config.n_hid, 2 * config.channels, 1));
  blocks->register_module("output", output);
  register_module("blocks", blocks);
}

torch::Tensor DvaeDecoderImpl::forward_hidden(torch::Tensor h) {
  for (size_t g = 0; g < groups.size(); ++g) {
    for (auto& block : groups[g]) h = block(h);
    if (g + 1 < groups.size()) h = torch::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2});
  }
  return output_(torch::relu(h));
}

torch::Tensor DvaeDecoderImpl::forward(const torch::Tensor& z) {
  const torch::Tensor codes = config_.codebook_gain == 1.0 ? z : z * config_.codebook_gain;
  return forward_hidden(input_(channels_last ? codes.contiguous(at::MemoryFormat::ChannelsLast) : codes));
}

torch::Tensor DvaeDecoderImpl::forward_tokens(const torch::Tensor& tokens) {
  // w: [n_init, vocab, 1, 1]; a one-hot input selects column `token` of it.
  torch::Tensor table = input_->w.view({config_.n_init, config_.vocab}).t() * config_.codebook_gain;  // [vocab, n_init]
  torch::Tensor h = table.index_select(0, tokens.reshape({-1}))
                        .view({tokens.size(0), tokens.size(1), tokens.size(2), config_.n_init})
                        .permute({0, 3, 1, 2}) +
                    input_->b.view({1, -1, 1, 1});
  return forward_hidden(h.contiguous(channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
}

DvaeImpl::DvaeImpl(const VaeConfig& config) : config_(config) {
  encoder = register_module("encoder", DvaeEncoder(config));
  decoder = register_module("decoder", DvaeDecoder(config));
}

torch::Tensor DvaeImpl::encode_images(const torch::Tensor& images_u8) {
  torch::Tensor x = images_u8.to(device()).permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0);
  return encoder(map_pixels(x, config_.eps)).argmax(1);
}

torch::Tensor DvaeImpl::decode_tokens(const torch::Tensor& tokens) {
  // On a CPU without autograd, a few images at a time: large batches of large images spill the
  // caches (bench_generate: the paper's 256x256 decoder took 2.1 s per image at batch 2, 0.9 s at 1).
  const int64_t pixels = int64_t(config_.image_size) * config_.image_size;
  const bool whole = torch::GradMode::is_enabled() || device().is_cuda();
  const int64_t chunk = whole ? tokens.size(0) : std::max<int64_t>(1, 65536 / pixels);
  std::vector<torch::Tensor> parts;
  for (int64_t b = 0; b < tokens.size(0); b += chunk) {
    const torch::Tensor part = tokens.narrow(0, b, std::min(chunk, tokens.size(0) - b));
    // fp32 from here on, also when the decoder's weights are bf16.
    torch::Tensor stats = decoder->forward_tokens(part.to(device())).to(torch::kFloat32);
    parts.push_back(unmap_pixels(torch::sigmoid(stats.slice(1, 0, config_.channels)), config_.eps));
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 0);
}

c10::Device DvaeImpl::device() const { return parameters().front().device(); }

std::vector<DvaeBlock> DvaeImpl::resblocks() const {
  std::vector<DvaeBlock> out;
  for (const auto* half : {&encoder->groups, &decoder->groups})
    for (const auto& group : *half) out.insert(out.end(), group.begin(), group.end());
  return out;
}

std::vector<std::vector<torch::Tensor>> DvaeImpl::resblock_parameters() const {
  std::vector<std::vector<torch::Tensor>> out;
  for (const DvaeBlock& block : resblocks()) out.push_back(block->branch_parameters());
  return out;
}

void DvaeImpl::set_resblock_runner(const ResblockRunner& runner) {
  int64_t index = 0;
  for (DvaeBlock& block : resblocks()) {
    block->runner = runner;
    block->index = index++;
  }
}

void DvaeImpl::to_channels_last() {
  torch::NoGradGuard no_grad;
  for (auto& p : parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  encoder->channels_last = decoder->channels_last = true;
}

// Parameters of all resblock groups of one half, starting from `first_width` channels.
static int64_t groupsparam_count(const VaeConfig& c, int64_t first_width, bool decoder) {
  int64_t n = 0, n_in = first_width;
  for (int g = 0; g < c.groups; ++g) {
    const int64_t width = group_width(c, g, decoder);
    for (int b = 0; b < c.blocks_per_group; ++b) n += block_params(b == 0 ? n_in : width, width, decoder);
    n_in = width;
  }
  return n;
}

int64_t dvae_encoder_param_count(const VaeConfig& c) {
  return conv_params(c.channels, c.n_hid, 7) + groupsparam_count(c, c.n_hid, false) +
         conv_params(group_width(c, c.groups - 1, false), c.vocab, 1);
}

int64_t dvae_decoder_param_count(const VaeConfig& c) {
  return conv_params(c.vocab, c.n_init, 1) + groupsparam_count(c, c.n_init, true) +
         conv_params(c.n_hid, 2 * c.channels, 1);
}

}  // namespace dalle

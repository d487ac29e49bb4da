// Every hyperparameter of every part, as plain structs with defaults, loaded from JSON and
// written back in full beside every checkpoint and bundle. Unknown keys are errors, so a typo
// in a config never silently falls back to a default.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "dalle/sample/sampler_settings.h"

namespace dalle {

// Stage 1: the discrete VAE (SPEC §1). Defaults are the `tiny` preset.
struct VaeConfig {
  int image_size = 64;
  int channels = 3;
  int n_hid = 32;            // width of the first group; group g has n_hid * 2^(g-1)
  int groups = 4;            // each group but the last halves (encoder) / doubles (decoder)
  int blocks_per_group = 2;
  int vocab = 512;           // image token vocabulary (paper: 8192)
  int n_init = 128;          // decoder width right after the 1x1 "codebook" conv
  double eps = 0.1;          // pixel map x' = (1 - 2 eps) x + eps
  // Fixed multipliers at the bottleneck (1 = the paper's network). At a few thousand updates the
  // relaxation stalls unless the encoder's logits stand above the Gumbel noise and the one-hot
  // codes (per-channel variance 1/vocab) reach the decoder at unit scale; a gain, unlike a larger
  // init, also speeds up AdamW's relative steps on those weights (BENCHMARKS.md, dVAE quality).
  double logit_gain = 1.0;     // encoder logits = gain * output conv
  double codebook_gain = 1.0;  // the decoder's first 1x1 conv sees gain * one-hot codes

  int downsample() const { return 1 << (groups - 1); }
  int grid() const { return image_size / downsample(); }
};

// Stage 2: the transformer prior (SPEC §2).
struct PriorConfig {
  int layers = 4;
  int d_model = 128;
  int heads = 4;
  int text_len = 24;         // caption positions (paper: 256); each has its own pad id
  int text_vocab = 512;      // BPE ids; pad ids follow at text_vocab + position
  int conv_kernel = 11;      // side of the convolutional mask's causal neighbourhood
  // The image grid side and vocabulary come from the VAE config.
};

// dVAE optimisation (SPEC §1 schedules; the paper's lengths are the `paper` preset's).
struct VaeTrainConfig {
  int batch = 32;
  int64_t steps = 3000000;
  double lr = 1e-4;
  double lr_end = 1.25e-6;
  int64_t lr_steps = 1200000;
  double kl_weight = 6.6;
  int64_t kl_steps = 5000;
  double tau_start = 1.0;
  double tau_end = 1.0 / 16;
  int64_t tau_steps = 150000;
  double weight_decay = 1e-4;
  double ema_decay = 0.999;
  // The last N of `steps` train the decoder alone on the argmax tokens of the frozen (EMA)
  // encoder: the tokens the prior sees. 0 (the paper) trains both halves to the end.
  int64_t decoder_finetune_steps = 0;
  // What the fine-tuning phase fits: "nll", the likelihood (as in joint training), or "mse",
  // the squared error of the decoded image for mu with the likelihood only for ln b
  // (vae/loss.h, reconstruction_loss).
  std::string decoder_finetune_loss = "nll";
  // A non-finite loss skips its update (SPEC §3); this many in a row end the run with a
  // checkpoint that --resume continues.
  int nonfinite_loss_limit = 10;
  // SPEC §1's augmentation (random crop, resize, crop, flip); false = centre crops.
  bool augment = true;
  double val_fraction = 0.02;  // images held out by a hash of their name (data/loader.h)
};

// Prior optimisation (SPEC §3).
struct PriorTrainConfig {
  int batch = 32;
  int64_t steps = 430000;
  double lr = 4.5e-4;
  int64_t warmup_steps = 5000;
  double beta1 = 0.9;
  double beta2 = 0.96;
  double adam_eps = 1e-8;
  double weight_decay = 4.5e-2;
  double grad_clip = 4.0;
  double ema_decay = 0.99;
  // Updates between EMA updates; each applies ema_decay once (paper: 25 at decay 0.99). 1 = every update.
  int ema_every = 1;
  double text_loss_weight = 1.0 / 8;  // image gets 1 - this
  int64_t plateau_window = 1000;      // steps per loss average when checking for a plateau
  int max_halvings = 5;
  double val_fraction = 0.02;
  double caption_drop = 0.0;  // (ours) replace a caption by all pads with this probability (guidance)
  double bpe_dropout = 0.1;   // skip each applicable BPE merge with this probability when training
  int nonfinite_loss_limit = 10;  // as VaeTrainConfig's
  // With --encode-on-the-fly: SPEC §3's near-centre crop and random resize, no flip (false:
  // centre crops). Pre-encoded tokens carry whatever crops `dalle vae encode --crops` made.
  bool augment = true;
  // Data-parallel runs (SPEC §3): PowerSGD's rank for the resblocks' weight matrices, 0 = all
  // gradients all-reduced uncompressed (the paper: 896 at 12B, 640 at 5.6B, 512 at 2.8B).
  int powersgd_rank = 0;
};

// The contrastive reranker (SPEC §5): a small text transformer over the bundle's BPE ids and a
// small CNN on pixels, projected to a shared embedding; trained with symmetric InfoNCE.
// Independent of the dVAE and prior, so either can be retrained without touching it.
struct RerankConfig {
  int text_len = 24;       // BPE ids per caption (truncated; one shared pad id)
  int text_layers = 2;
  int text_width = 128;
  int text_heads = 4;
  int image_size = 64;     // pixels; candidates are resized to this
  int image_width = 32;    // channels of the first conv; each of 3 stride-2 convs doubles (capped at 4x)
  int embed_dim = 128;     // shared embedding
  int batch = 128;
  int64_t steps = 3000;
  double lr = 1e-3;
  int64_t warmup_steps = 100;
  double weight_decay = 0.01;
  double ema_decay = 0.99;
  int val_pairs = 500;     // held out for the retrieval accuracy (pools of 100), at most
  double val_fraction = 0.1;  // share of pairs held out, by a hash of their name (data/loader.h)
  bool augment = true;     // SPEC §3's near-centre crop and random resize; false = centre crops
};

struct ModelConfig {
  std::string name = "tiny";
  std::string trained_on;  // what the bundle's models learned from, in words (serve's /v1/models)
  VaeConfig vae;
  PriorConfig prior;
  std::string tokenizer_file = "tokenizer.json";
  VaeTrainConfig vae_train;
  PriorTrainConfig prior_train;
  RerankConfig rerank;
  // The bundle's recommended sampling settings: what generate, serve and eval use for any setting
  // a user does not give (a prior trained with caption drop draws better with guidance).
  SamplerSettings sample;
};

nlohmann::json config_to_json(const ModelConfig& config);
// `source` names the config in error messages.
ModelConfig config_from_json(const nlohmann::json& json, const std::string& source);
ModelConfig config_load(const std::string& path);
void config_save(const std::string& path, const ModelConfig& config);
// Checks sizes that must agree (divisibility, grid, heads); throws naming the field.
void config_validate(const ModelConfig& config, const std::string& source);

}  // namespace dalle

#include "dalle/bundle/config.h"

#include <functional>
#include <set>

#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

namespace {

constexpr int kFormatVersion = 1;

// One table per struct maps JSON keys to fields, so reading and writing cannot drift apart.
template <typename T>
struct Field {
  const char* key;
  std::function<nlohmann::json(const T&)> get;
  std::function<void(T&, const nlohmann::json&)> set;
};

#define DALLE_FIELD(Struct, member)                                                    \
  Field<Struct> {                                                                      \
    #member, [](const Struct& s) { return nlohmann::json(s.member); },                 \
        [](Struct& s, const nlohmann::json& j) { s.member = j.get<decltype(s.member)>(); } \
  }

const std::vector<Field<VaeConfig>>& vae_fields() {
  static const std::vector<Field<VaeConfig>> f = {
      DALLE_FIELD(VaeConfig, image_size), DALLE_FIELD(VaeConfig, channels),
      DALLE_FIELD(VaeConfig, n_hid),      DALLE_FIELD(VaeConfig, groups),
      DALLE_FIELD(VaeConfig, blocks_per_group), DALLE_FIELD(VaeConfig, vocab),
      DALLE_FIELD(VaeConfig, n_init),     DALLE_FIELD(VaeConfig, eps),
      DALLE_FIELD(VaeConfig, logit_gain), DALLE_FIELD(VaeConfig, codebook_gain)};
  return f;
}

const std::vector<Field<PriorConfig>>& prior_fields() {
  static const std::vector<Field<PriorConfig>> f = {
      DALLE_FIELD(PriorConfig, layers),   DALLE_FIELD(PriorConfig, d_model),
      DALLE_FIELD(PriorConfig, heads),    DALLE_FIELD(PriorConfig, text_len),
      DALLE_FIELD(PriorConfig, text_vocab), DALLE_FIELD(PriorConfig, conv_kernel)};
  return f;
}

const std::vector<Field<VaeTrainConfig>>& vae_train_fields() {
  static const std::vector<Field<VaeTrainConfig>> f = {
      DALLE_FIELD(VaeTrainConfig, batch),     DALLE_FIELD(VaeTrainConfig, steps),
      DALLE_FIELD(VaeTrainConfig, lr),        DALLE_FIELD(VaeTrainConfig, lr_end),
      DALLE_FIELD(VaeTrainConfig, lr_steps),  DALLE_FIELD(VaeTrainConfig, kl_weight),
      DALLE_FIELD(VaeTrainConfig, kl_steps),  DALLE_FIELD(VaeTrainConfig, tau_start),
      DALLE_FIELD(VaeTrainConfig, tau_end),   DALLE_FIELD(VaeTrainConfig, tau_steps),
      DALLE_FIELD(VaeTrainConfig, weight_decay), DALLE_FIELD(VaeTrainConfig, ema_decay),
      DALLE_FIELD(VaeTrainConfig, decoder_finetune_steps),
      DALLE_FIELD(VaeTrainConfig, decoder_finetune_loss),
      DALLE_FIELD(VaeTrainConfig, nonfinite_loss_limit), DALLE_FIELD(VaeTrainConfig, augment),
      DALLE_FIELD(VaeTrainConfig, val_fraction)};
  return f;
}

const std::vector<Field<PriorTrainConfig>>& prior_train_fields() {
  static const std::vector<Field<PriorTrainConfig>> f = {
      DALLE_FIELD(PriorTrainConfig, batch),        DALLE_FIELD(PriorTrainConfig, steps),
      DALLE_FIELD(PriorTrainConfig, lr),           DALLE_FIELD(PriorTrainConfig, warmup_steps),
      DALLE_FIELD(PriorTrainConfig, beta1),        DALLE_FIELD(PriorTrainConfig, beta2),
      DALLE_FIELD(PriorTrainConfig, adam_eps),     DALLE_FIELD(PriorTrainConfig, weight_decay),
      DALLE_FIELD(PriorTrainConfig, grad_clip),    DALLE_FIELD(PriorTrainConfig, ema_decay),
      DALLE_FIELD(PriorTrainConfig, text_loss_weight),
      DALLE_FIELD(PriorTrainConfig, plateau_window),
      DALLE_FIELD(PriorTrainConfig, max_halvings), DALLE_FIELD(PriorTrainConfig, val_fraction),
      DALLE_FIELD(PriorTrainConfig, caption_drop), DALLE_FIELD(PriorTrainConfig, bpe_dropout),
      DALLE_FIELD(PriorTrainConfig, ema_every),    DALLE_FIELD(PriorTrainConfig, nonfinite_loss_limit),
      DALLE_FIELD(PriorTrainConfig, augment),      DALLE_FIELD(PriorTrainConfig, powersgd_rank)};
  return f;
}

const std::vector<Field<RerankConfig>>& rerank_fields() {
  static const std::vector<Field<RerankConfig>> f = {
      DALLE_FIELD(RerankConfig, text_len),    DALLE_FIELD(RerankConfig, text_layers),
      DALLE_FIELD(RerankConfig, text_width),  DALLE_FIELD(RerankConfig, text_heads),
      DALLE_FIELD(RerankConfig, image_size),  DALLE_FIELD(RerankConfig, image_width),
      DALLE_FIELD(RerankConfig, embed_dim),   DALLE_FIELD(RerankConfig, batch),
      DALLE_FIELD(RerankConfig, steps),       DALLE_FIELD(RerankConfig, lr),
      DALLE_FIELD(RerankConfig, warmup_steps), DALLE_FIELD(RerankConfig, weight_decay),
      DALLE_FIELD(RerankConfig, ema_decay),   DALLE_FIELD(RerankConfig, val_pairs),
      DALLE_FIELD(RerankConfig, val_fraction), DALLE_FIELD(RerankConfig, augment)};
  return f;
}

const std::vector<Field<SamplerSettings>>& sample_fields() {
  static const std::vector<Field<SamplerSettings>> f = {
      DALLE_FIELD(SamplerSettings, temperature), DALLE_FIELD(SamplerSettings, top_k),
      DALLE_FIELD(SamplerSettings, top_p),       DALLE_FIELD(SamplerSettings, cfg_scale)};
  return f;
}

#undef DALLE_FIELD

template <typename T>
nlohmann::json fields_to_json(const T& s, const std::vector<Field<T>>& fields) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : fields) j[f.key] = f.get(s);
  return j;
}

template <typename T>
void fields_from_json(T& s, const std::vector<Field<T>>& fields, const nlohmann::json& j,
                      const std::string& source, const std::string& section) {
  if (!j.is_object()) throw file_error(source, "'" + section + "' must be an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    auto f = std::find_if(fields.begin(), fields.end(),
                          [&](const Field<T>& x) { return it.key() == x.key; });
    if (f == fields.end()) throw file_error(source, "unknown key '" + section + "." + it.key() + "'");
    try {
      f->set(s, it.value());
    } catch (const nlohmann::json::exception&) {
      throw file_error(source, "'" + section + "." + it.key() + "' has the wrong type");
    }
  }
}

}  // namespace

nlohmann::json config_to_json(const ModelConfig& c) {
  nlohmann::json j = {{"format_version", kFormatVersion},
          {"dalle_version", DALLE_VERSION},
          {"name", c.name},
          {"vae", fields_to_json(c.vae, vae_fields())},
          {"prior", fields_to_json(c.prior, prior_fields())},
          {"tokenizer", {{"file", c.tokenizer_file}}},
          {"vae_train", fields_to_json(c.vae_train, vae_train_fields())},
          {"prior_train", fields_to_json(c.prior_train, prior_train_fields())},
          {"rerank", fields_to_json(c.rerank, rerank_fields())},
          {"sample", fields_to_json(c.sample, sample_fields())}};
  if (!c.trained_on.empty()) j["trained_on"] = c.trained_on;
  return j;
}

ModelConfig config_from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw file_error(source, "config must be a JSON object");
  ModelConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& v = it.value();
    if (key == "format_version") {
      if (!v.is_number_integer() || v.get<int>() > kFormatVersion)
        throw file_error(source, "format_version " + v.dump() + " is newer than this dalle (" +
                                     std::to_string(kFormatVersion) + ")");
    } else if (key == "dalle_version" || key == "comment") {
      // informational
    } else if (key == "name") {
      if (!v.is_string()) throw file_error(source, "'name' must be a string");
      c.name = v.get<std::string>();
    } else if (key == "trained_on") {
      if (!v.is_string()) throw file_error(source, "'trained_on' must be a string");
      c.trained_on = v.get<std::string>();
    } else if (key == "vae") {
      fields_from_json(c.vae, vae_fields(), v, source, key);
    } else if (key == "prior") {
      fields_from_json(c.prior, prior_fields(), v, source, key);
    } else if (key == "tokenizer") {
      if (!v.is_object() || !v.contains("file") || !v["file"].is_string())
        throw file_error(source, "'tokenizer' must be {\"file\": \"NAME\"}");
      c.tokenizer_file = v["file"].get<std::string>();
    } else if (key == "vae_train") {
      fields_from_json(c.vae_train, vae_train_fields(), v, source, key);
    } else if (key == "prior_train") {
      fields_from_json(c.prior_train, prior_train_fields(), v, source, key);
    } else if (key == "rerank") {
      fields_from_json(c.rerank, rerank_fields(), v, source, key);
    } else if (key == "sample") {
      fields_from_json(c.sample, sample_fields(), v, source, key);
    } else {
      throw file_error(source, "unknown key '" + key + "'");
    }
  }
  config_validate(c, source);
  return c;
}

ModelConfig config_load(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file_text(path));
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path, std::string("invalid JSON: ") + e.what());
  }
  return config_from_json(j, path);
}

void config_save(const std::string& path, const ModelConfig& config) {
  write_file_atomic(path, config_to_json(config).dump(2) + "\n");
}

void config_validate(const ModelConfig& c, const std::string& source) {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw file_error(source, what);
  };
  const VaeConfig& v = c.vae;
  need(v.groups >= 1 && v.groups <= 8, "vae.groups must be in 1..8");
  need(v.blocks_per_group >= 1, "vae.blocks_per_group must be >= 1");
  need(v.n_hid >= 4 && v.n_hid % 4 == 0, "vae.n_hid must be a positive multiple of 4");
  need(v.channels == 3, "vae.channels must be 3 (RGB)");
  need(v.vocab >= 2 && v.vocab <= 65536, "vae.vocab must be in 2..65536");
  need(v.n_init >= 4 && v.n_init % 4 == 0, "vae.n_init must be a positive multiple of 4");
  need(v.image_size > 0 && v.image_size % v.downsample() == 0,
       "vae.image_size must be divisible by 2^(groups-1) = " + std::to_string(v.downsample()));
  need(v.eps > 0 && v.eps < 0.5, "vae.eps must be in (0, 0.5)");
  need(v.logit_gain > 0 && v.codebook_gain > 0, "vae.logit_gain and vae.codebook_gain must be > 0");
  const PriorConfig& p = c.prior;
  need(p.layers >= 1, "prior.layers must be >= 1");
  need(p.heads >= 1 && p.d_model % p.heads == 0, "prior.d_model must be divisible by prior.heads");
  need(p.text_len >= 2, "prior.text_len must be >= 2");
  need(p.text_vocab >= 2, "prior.text_vocab must be >= 2");
  need(p.conv_kernel >= 1 && p.conv_kernel % 2 == 1, "prior.conv_kernel must be odd");
  need(c.vae_train.batch >= 1 && c.prior_train.batch >= 1, "batch sizes must be >= 1");
  need(c.vae_train.decoder_finetune_steps >= 0 && c.vae_train.decoder_finetune_steps < c.vae_train.steps,
       "vae_train.decoder_finetune_steps must be in [0, vae_train.steps)");
  need(c.vae_train.decoder_finetune_loss == "nll" || c.vae_train.decoder_finetune_loss == "mse",
       "vae_train.decoder_finetune_loss must be \"nll\" or \"mse\", not \"" + c.vae_train.decoder_finetune_loss + "\"");
  need(c.prior_train.caption_drop >= 0 && c.prior_train.caption_drop < 1, "prior_train.caption_drop must be in [0, 1)");
  const RerankConfig& r = c.rerank;
  need(r.text_len >= 1 && r.text_layers >= 1, "rerank.text_len and rerank.text_layers must be >= 1");
  need(r.text_heads >= 1 && r.text_width % r.text_heads == 0, "rerank.text_width must be divisible by rerank.text_heads");
  need(r.image_size >= 8 && r.image_size % 8 == 0, "rerank.image_size must be a positive multiple of 8");
  need(r.image_width >= 1 && r.embed_dim >= 1 && r.batch >= 2, "rerank sizes must be >= 1 (batch >= 2)");
  need(r.val_pairs >= 0, "rerank.val_pairs must be >= 0");
  need(r.val_fraction >= 0 && r.val_fraction < 1, "rerank.val_fraction must be in [0, 1)");
  need(c.prior_train.bpe_dropout >= 0 && c.prior_train.bpe_dropout < 1, "prior_train.bpe_dropout must be in [0, 1)");
  const SamplerSettings& s = c.sample;
  need(s.temperature >= 0 && s.temperature <= 10, "sample.temperature must be in [0, 10] (0 = argmax)");
  need(s.top_k >= 0 && s.top_k <= v.vocab, "sample.top_k must be in 0..vae.vocab (0 = off)");
  need(s.top_p > 0 && s.top_p <= 1, "sample.top_p must be in (0, 1] (1 = off)");
  need(s.cfg_scale >= 0 && s.cfg_scale <= 50, "sample.cfg_scale must be in [0, 50] (1 = off)");
  need(c.prior_train.ema_every >= 1, "prior_train.ema_every must be >= 1");
  need(c.vae_train.val_fraction >= 0 && c.vae_train.val_fraction < 1, "vae_train.val_fraction must be in [0, 1)");
  need(c.prior_train.nonfinite_loss_limit >= 1 && c.vae_train.nonfinite_loss_limit >= 1,
       "prior_train.nonfinite_loss_limit and vae_train.nonfinite_loss_limit must be >= 1");
}

}  // namespace dalle

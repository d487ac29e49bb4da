#include "dalle/prior/decoder.h"

#include "dalle/util/torch_api.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "dalle/prior/vector_math.h"
#include "dalle/util/cuda_graph.h"
#include "dalle/util/error.h"
#include "dalle/util/simd.h"

namespace dalle {

torch::Tensor ReferenceDecoder::start(const torch::Tensor& text, const torch::Tensor& init) {
  const c10::Device device = prior_->text_pos.device();
  AutocastGuard autocast(bf16_, device.type());
  cache_ = prior_->make_cache(text.size(0));
  return prior_->prefill(text.to(device), cache_, init.defined() ? init.to(device) : init);
}

torch::Tensor ReferenceDecoder::step(const torch::Tensor& tokens, int64_t index) {
  const c10::Device device = prior_->text_pos.device();
  AutocastGuard autocast(bf16_, device.type());
  return prior_->step(tokens.to(device), index, cache_);
}

GraphDecoder::GraphDecoder(Prior prior, bool bf16, bool graphs)
    : prior_(std::move(prior)), bf16_(bf16), graphs_(graphs) {
  const bool gpu = prior_->text_pos.device().is_cuda();
  status_ = !graphs_                ? "CUDA graphs turned off"
            : !gpu                  ? "no CUDA graphs on a CPU"
            : !cuda_graphs_built()  ? "this build has no CUDA graphs"
                                    : "not captured yet";
  graphs_ = graphs_ && gpu && cuda_graphs_built();
}

torch::Tensor GraphDecoder::start(const torch::Tensor& text, const torch::Tensor& init) {
  const c10::Device device = prior_->text_pos.device();
  // A new cache and new inputs: a graph recorded on the last ones would replay on stale memory.
  // Released first, so the old and the new cache are never held at once.
  replay_ = nullptr;
  cache_ = KvCache();
  eager_steps_ = 0;
  if (graphs_) status_ = "not captured yet";
  AutocastGuard autocast(bf16_, device.type());
  cache_ = prior_->make_cache(text.size(0));
  slot_ = cache_.slot_index();
  token_ = torch::zeros({text.size(0)}, torch::TensorOptions().dtype(torch::kLong).device(device));
  const torch::Tensor first = prior_->prefill(text.to(device), cache_, init.defined() ? init.to(device) : init);
  logits_ = torch::empty_like(first);  // where every step writes, at one address for the graph
  return first;
}

void GraphDecoder::run_step() {
  AutocastGuard autocast(bf16_, prior_->text_pos.device().type());
  // No cached casts: a graph must not read tensors that the cache frees between replays.
  const bool caching = at::autocast::is_autocast_cache_enabled();
  at::autocast::set_autocast_cache_enabled(false);
  logits_.copy_(prior_->step_indexed(token_, slot_, cache_));
  at::autocast::set_autocast_cache_enabled(caching);
}

torch::Tensor GraphDecoder::step(const torch::Tensor& tokens, int64_t index) {
  const int64_t slot = index + 1;  // image token `index` sits in slot index + 1
  TORCH_CHECK(cache_.length == prior_->config().text_len + slot, "step: image token ", index, " fed out of order");
  token_.copy_(tokens);
  cache_.set_slot_index(slot_, slot);
  if (replay_) {
    replay_();
  } else {
    run_step();
    // Captured at the second step, once the first has initialised what the step uses lazily.
    if (graphs_ && ++eager_steps_ == 2) {
      std::string why;
      replay_ = capture_cuda_graph(prior_->text_pos.device(), [this] { run_step(); }, &why);
      status_ = replay_ ? "replaying a CUDA graph" : "CUDA graph capture failed: " + why;
      graphs_ = static_cast<bool>(replay_);
    }
  }
  cache_.length += 1;
  return logits_;
}

namespace {

std::vector<float> floats_of(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();  // a prior on any device
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

const Int8Weight* find_int8(const Int8Weights& int8, const std::string& name) {
  auto it = int8.find(name);
  return it == int8.end() ? nullptr : &it->second;
}

// A resblock's linear weights in Layer's order (qkv, attn_proj, fc, mlp_proj), by parameter name.
constexpr const char* kLinearWeights[4] = {".attn.qkv.weight", ".attn.proj.weight", ".mlp.fc.weight",
                                           ".mlp.proj.weight"};

// Rows of one caption whose attention runs as one block (decoder.h): enough to share each text
// key's row while it is in L1, few enough that the blocks still spread over the threads.
constexpr int64_t kQueryBlock = 4;

std::string block_name(size_t layer, const char* rest) { return "blocks." + std::to_string(layer) + rest; }

}  // namespace

std::vector<std::string> prior_quantizable_weights(const Prior& prior) {
  std::vector<std::string> names;
  for (size_t i = 0; i < prior->attn.size(); ++i)
    for (const char* rest : kLinearWeights) names.push_back(block_name(i, rest));
  return names;
}

PriorDecoder::PriorDecoder(const Prior& prior, WeightFormat format, const Int8Weights& int8)
    : text_len_(prior->text_len()),
      grid_h_(static_cast<int>(prior->row_emb.size(0))),
      grid_w_(static_cast<int>(prior->col_emb.size(0))),
      d_(prior->config().d_model),
      heads_(prior->config().heads),
      image_vocab_(prior->image_vocab()),
      bf16_cache_(format != WeightFormat::fp32) {
  torch::NoGradGuard no_grad;
  text_emb_ = floats_of(prior->text_emb->weight);
  image_emb_ = floats_of(prior->image_emb->weight);
  text_pos_ = floats_of(prior->text_pos);
  row_emb_ = floats_of(prior->row_emb);
  col_emb_ = floats_of(prior->col_emb);
  auto norm = [](const torch::nn::LayerNorm& ln) {
    return Norm{floats_of(ln->weight), floats_of(ln->bias), static_cast<float>(ln->options.eps())};
  };
  for (size_t i = 0; i < prior->attn.size(); ++i) {
    const auto& a = prior->attn[i];
    const auto& m = prior->mlp[i];
    auto packed = [&](const torch::nn::Linear& linear, int which) {
      return PackedLinear(linear->weight, linear->bias, format, find_int8(int8, block_name(i, kLinearWeights[which])));
    };
    layers_.push_back({norm(a->ln), norm(m->ln), packed(a->qkv, 0), packed(a->proj, 1), packed(m->fc, 2),
                       packed(m->proj, 3), prior->masks()[i]});
  }
  ln_f_ = norm(prior->ln_f);
  image_head_ = PackedLinear(prior->image_head->weight, prior->image_head->bias,
                            format == WeightFormat::fp32 ? WeightFormat::fp32 : WeightFormat::bf16);

  // Which cached positions each image slot attends, from the same predicate the dense reference
  // mask uses; ring layers keep the last W slots (kv_cache.h), column layers every slot.
  const MaskShape shape{text_len_, grid_h_, grid_w_, prior->config().conv_kernel};
  const int64_t n = image_tokens();
  for (MaskType type : {MaskType::row, MaskType::column, MaskType::conv}) {
    const size_t m = static_cast<size_t>(type);
    const int64_t ring = type == MaskType::column ? n : KvCache::ring_size(type, shape);
    capacity_[m] = text_len_ + ring;
    image_keys_[m].resize(static_cast<size_t>(n));
    for (int64_t q = 0; q < n; ++q)
      for (int64_t k = 0; k <= q; ++k)
        if (image_mask_allows(type, shape, static_cast<int>(q), static_cast<int>(k))) {
          TORCH_CHECK(q - k < ring, "decoder: mask reaches past its ring buffer");
          image_keys_[m][static_cast<size_t>(q)].push_back(static_cast<int32_t>(storage_of(type, text_len_ + k)));
        }
  }
}

int64_t PriorDecoder::storage_of(MaskType mask, int64_t position) const {
  if (position < text_len_) return position;
  const int64_t slot = position - text_len_;
  const size_t m = static_cast<size_t>(mask);
  return text_len_ + (mask == MaskType::column ? slot : slot % (capacity_[m] - text_len_));
}

int64_t PriorDecoder::step_weight_bytes() const {
  int64_t bytes = image_head_.weight_bytes();
  for (const Layer& l : layers_)
    bytes += l.qkv.weight_bytes() + l.attn_proj.weight_bytes() + l.fc.weight_bytes() + l.mlp_proj.weight_bytes();
  return bytes;
}

void PriorDecoder::reserve(int64_t rows, int64_t chunk) {
  const size_t m = static_cast<size_t>(rows * chunk), d = static_cast<size_t>(d_);
  if (x_.size() < m * d) {
    x_.resize(m * d);
    h_.resize(m * d);
    qkv_.resize(3 * m * d);
    att_.resize(m * d);
    mlp_.resize(4 * m * d);
  }
  if (rows != rows_) {
    keys_.assign(layers_.size(), {});
    values_.assign(layers_.size(), {});
    keys16_.assign(layers_.size(), {});
    values16_.assign(layers_.size(), {});
    for (size_t l = 0; l < layers_.size(); ++l) {
      const size_t size = static_cast<size_t>(rows * capacity_[static_cast<size_t>(layers_[l].mask)]) * d;
      if (bf16_cache_) {
        keys16_[l].resize(size);
        values16_[l].resize(size);
      } else {
        keys_[l].resize(size);
        values_[l].resize(size);
      }
    }
    int64_t most_keys = 0;
    for (const auto& lists : image_keys_)
      for (const auto& keys : lists) most_keys = std::max<int64_t>(most_keys, static_cast<int64_t>(keys.size()));
    scores_.resize(static_cast<size_t>(rows * heads_ * (text_len_ + most_keys + 1)));
    last_.resize(static_cast<size_t>(rows) * d);
    logits_.resize(static_cast<size_t>(rows * image_vocab_));
    rows_ = rows;
  }
}

torch::Tensor PriorDecoder::start(const torch::Tensor& text, const torch::Tensor& init) {
  const int64_t rows = text.size(0), given = init.defined() ? init.size(1) : 0;
  if (rows < 1) throw Error("decoder: need at least one caption");
  if (text.size(1) != text_len_) throw Error("decoder: caption has " + std::to_string(text.size(1)) +
                                             " tokens, the prior takes " + std::to_string(text_len_));
  if (init.defined() && (init.size(0) != rows || given >= image_tokens()))
    throw Error("decoder: init tokens must be [" + std::to_string(rows) + ", P < " + std::to_string(image_tokens()) + "]");
  const int64_t chunk = text_len_ + 1 + given;
  reserve(rows, chunk);
  const torch::Tensor t = text.to(torch::kLong).contiguous();
  const int64_t* ids = t.data_ptr<int64_t>();
  group_rows(ids, rows);
  const int64_t captions = static_cast<int64_t>(captions_.size());
  text_kt_stride_ = (text_len_ + 63) / 64 * 64;
  text_kt_.resize(layers_.size());
  for (auto& kt : text_kt_) kt.assign(static_cast<size_t>(captions * d_ * text_kt_stride_), 0.0f);
  const torch::Tensor g = given > 0 ? init.to(torch::kLong).contiguous() : torch::Tensor();
  // Rows that repeat an earlier row's caption and image prompt (a pool of candidates) start
  // identically: the prefill runs once per caption, and its cache entries and logits are copied.
  bool shared_start = captions < rows;
  for (int64_t r = 0; r < rows && shared_start && given > 0; ++r) {
    const int64_t* own = g.data_ptr<int64_t>() + r * given;
    const int64_t* first = g.data_ptr<int64_t>() + text_owner_[static_cast<size_t>(r)] * given;
    shared_start = std::equal(own, own + given, first);
  }
  std::vector<int64_t> prefill_rows = captions_;
  if (!shared_start) {
    prefill_rows.resize(static_cast<size_t>(rows));
    std::iota(prefill_rows.begin(), prefill_rows.end(), int64_t(0));
  }
  const int64_t text_ids = static_cast<int64_t>(text_emb_.size()) / d_;
  for (size_t k = 0; k < prefill_rows.size(); ++k)
    for (int64_t c = 0; c < chunk; ++c) {
      const int64_t r = prefill_rows[k];
      float* x = &x_[static_cast<size_t>((static_cast<int64_t>(k) * chunk + c) * d_)];
      const float *emb, *pos_a, *pos_b = nullptr;
      if (c < text_len_) {
        const int64_t id = ids[r * text_len_ + c];
        if (id < 0 || id >= text_ids) throw Error("decoder: caption token id " + std::to_string(id) + " out of range");
        emb = &text_emb_[static_cast<size_t>(id * d_)];
        pos_a = &text_pos_[static_cast<size_t>(c * d_)];
      } else {
        const int64_t slot = c - text_len_;
        const int64_t id = slot == 0 ? image_vocab_ : g.data_ptr<int64_t>()[r * given + slot - 1];
        if (id < 0 || id > image_vocab_) throw Error("decoder: image token " + std::to_string(id) + " out of range");
        emb = &image_emb_[static_cast<size_t>(id * d_)];
        pos_a = &row_emb_[static_cast<size_t>(slot / grid_w_ * d_)];
        pos_b = &col_emb_[static_cast<size_t>(slot % grid_w_ * d_)];
      }
      for (int64_t i = 0; i < d_; ++i) x[i] = emb[i] + pos_a[i] + (pos_b ? pos_b[i] : 0.0f);
    }
  length_ = 0;
  if (!shared_start) return run(0, chunk);
  // Row k of the prefill is caption k; rows copy from their caption's row, last row first (a
  // caption's row index is never above its rows').
  std::vector<int64_t> caption_ids;
  for (int64_t r : captions_) caption_ids.insert(caption_ids.end(), ids + r * text_len_, ids + (r + 1) * text_len_);
  group_rows(caption_ids.data(), captions);
  rows_ = captions;
  run(0, chunk);
  rows_ = rows;
  group_rows(ids, rows);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const MaskType mask = layers_[l].mask;
    const int64_t cap = capacity_[static_cast<size_t>(mask)];
    for (int64_t r = rows - 1; r >= 0; --r) {
      const int64_t from = owner_slot_[static_cast<size_t>(r)];
      if (from == r) continue;
      // Text positions only to a caption's first row: the others read their text keys there.
      for (int64_t c = text_owner_[static_cast<size_t>(r)] == r ? 0 : text_len_; c < chunk; ++c) {
        const size_t dst = static_cast<size_t>((r * cap + storage_of(mask, c)) * d_);
        const size_t src = static_cast<size_t>((from * cap + storage_of(mask, c)) * d_);
        if (bf16_cache_) {
          std::copy_n(&keys16_[l][src], d_, &keys16_[l][dst]);
          std::copy_n(&values16_[l][src], d_, &values16_[l][dst]);
        } else {
          std::copy_n(&keys_[l][src], d_, &keys_[l][dst]);
          std::copy_n(&values_[l][src], d_, &values_[l][dst]);
        }
      }
    }
  }
  for (int64_t r = rows - 1; r >= 0; --r) {
    const int64_t from = owner_slot_[static_cast<size_t>(r)];
    if (from != r)
      std::copy_n(&logits_[static_cast<size_t>(from * image_vocab_)], image_vocab_,
                  &logits_[static_cast<size_t>(r * image_vocab_)]);
  }
  return torch::from_blob(logits_.data(), {rows_, int64_t(image_vocab_)}, torch::kFloat32);
}

// Rows with the same caption (a pool of candidates, the unconditioned half under guidance) have
// the same text keys and values: their attention reads the first such row's, which stays in
// cache for the rest instead of every row streaming its own copy from memory.
void PriorDecoder::group_rows(const int64_t* ids, int64_t rows) {
  text_owner_.assign(static_cast<size_t>(rows), 0);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t owner = r;
    for (int64_t o = 0; o < r && owner == r; ++o)
      if (text_owner_[static_cast<size_t>(o)] == o &&
          std::equal(ids + o * text_len_, ids + (o + 1) * text_len_, ids + r * text_len_))
        owner = o;
    text_owner_[static_cast<size_t>(r)] = owner;
  }
  owner_slot_.assign(static_cast<size_t>(rows), 0);
  captions_.clear();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t owner = text_owner_[static_cast<size_t>(r)];
    if (owner == r) captions_.push_back(r);
    owner_slot_[static_cast<size_t>(r)] = owner == r ? static_cast<int64_t>(captions_.size()) - 1
                                                     : owner_slot_[static_cast<size_t>(owner)];
  }
  query_blocks_.clear();
  for (int64_t r = 0; r < rows; ++r) {
    auto& last = query_blocks_.empty() ? query_blocks_.emplace_back(r, 0) : query_blocks_.back();
    if (last.second == kQueryBlock || text_owner_[static_cast<size_t>(last.first)] != text_owner_[static_cast<size_t>(r)])
      query_blocks_.emplace_back(r, 1);
    else
      ++last.second;
  }
}

torch::Tensor PriorDecoder::step(const torch::Tensor& tokens, int64_t index) {
  const int64_t slot = index + 1;
  if (length_ != text_len_ + slot) throw Error("decoder: image token " + std::to_string(index) + " fed out of order");
  if (tokens.numel() != rows_) throw Error("decoder: step needs one token per row");
  const torch::Tensor t = tokens.to(torch::kLong).contiguous();
  for (int64_t r = 0; r < rows_; ++r) {
    const int64_t id = t.data_ptr<int64_t>()[r];
    if (id < 0 || id >= image_vocab_) throw Error("decoder: image token " + std::to_string(id) + " out of range");
    const float* emb = &image_emb_[static_cast<size_t>(id * d_)];
    const float* row = &row_emb_[static_cast<size_t>(slot / grid_w_ * d_)];
    const float* col = &col_emb_[static_cast<size_t>(slot % grid_w_ * d_)];
    float* x = &x_[static_cast<size_t>(r * d_)];
    for (int64_t i = 0; i < d_; ++i) x[i] = emb[i] + row[i] + col[i];
  }
  return run(text_len_ + slot, 1);
}

// Stores position `position` (chunk entry c) of every row in layer `layer`'s cache, then computes
// its attention output. Positions go in order, so a ring entry is overwritten only after every
// query that can see it has run.
void PriorDecoder::attend(size_t layer, int64_t position, int64_t chunk, int64_t c) {
  if (bf16_cache_)
    attend(keys16_[layer].data(), values16_[layer].data(), layer, position, chunk, c);
  else
    attend(keys_[layer].data(), values_[layer].data(), layer, position, chunk, c);
}

namespace {
void store_row(const float* x, float* y, int64_t n) { std::memcpy(y, x, sizeof(float) * static_cast<size_t>(n)); }
void store_row(const float* x, uint16_t* y, int64_t n) { vec_to_bf16(x, y, n); }
float as_float(float x) { return x; }
float as_float(uint16_t bits) { return simd::bf16_to_float(bits); }
}  // namespace

template <class T>
void PriorDecoder::attend(T* keys, T* values, size_t layer, int64_t position, int64_t chunk, int64_t c) {
  const MaskType mask = layers_[layer].mask;
  const size_t m = static_cast<size_t>(mask);
  const int64_t d = d_, hd = d_ / heads_, cap = capacity_[m];
  const int64_t stored = storage_of(mask, position);
  const bool image = position >= text_len_;
  for (int64_t r = 0; r < rows_; ++r) {
    const float* qkv = &qkv_[static_cast<size_t>((r * chunk + c) * 3 * d)];
    T* key = keys + (r * cap + stored) * d;
    store_row(qkv + d, key, d);
    store_row(qkv + 2 * d, values + (r * cap + stored) * d, d);
    if (!image && text_owner_[static_cast<size_t>(r)] == r) {  // the caption's transposed copy, as cached
      float* kt = &text_kt_[layer][static_cast<size_t>(owner_slot_[static_cast<size_t>(r)] * d * text_kt_stride_ + position)];
      for (int64_t i = 0; i < d; ++i) kt[i * text_kt_stride_] = as_float(key[i]);
    }
  }
  const int64_t text_keys = image ? text_len_ : position + 1;
  static const std::vector<int32_t> none;
  const std::vector<int32_t>& image_keys = image ? image_keys_[m][static_cast<size_t>(position - text_len_)] : none;
  const int64_t n_keys = text_keys + static_cast<int64_t>(image_keys.size());
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Work units: blocks of rows with one caption (every head; each text key read once for the
  // block) when there are rows enough for the threads, else single heads of the few rows. A text
  // position attends only text, the same for every row of a caption: computed for the first such
  // row (single heads) and copied to the rest.
  const bool by_rows = image && rows_ >= at::get_num_threads();
  const int64_t units = by_rows ? static_cast<int64_t>(query_blocks_.size())
                                : (image ? rows_ : static_cast<int64_t>(captions_.size())) * heads_;
  const int64_t per_query_head = static_cast<int64_t>(scores_.size()) / (rows_ * heads_);  // scratch
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n_keys * hd * (by_rows ? heads_ : 1)));
  at::parallel_for(0, units, grain, [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) {
      const int64_t r = by_rows ? query_blocks_[static_cast<size_t>(u)].first
                        : image   ? u / heads_
                                  : captions_[static_cast<size_t>(u / heads_)];
      const int64_t h = by_rows ? 0 : u % heads_;
      const int64_t owner = text_owner_[static_cast<size_t>(r)];
      QueryBlock<T> block;
      block.queries = by_rows ? query_blocks_[static_cast<size_t>(u)].second : 1;
      block.q = &qkv_[static_cast<size_t>((r * chunk + c) * 3 * d + h * hd)];
      block.q_stride = chunk * 3 * d;
      block.text_k = keys + owner * cap * d + h * hd;
      block.text_v = values + owner * cap * d + h * hd;
      block.text_kt = &text_kt_[layer][static_cast<size_t>((owner_slot_[static_cast<size_t>(r)] * d + h * hd) * text_kt_stride_)];
      block.text_kt_stride = text_kt_stride_;
      block.text = text_keys;
      block.k = keys + r * cap * d + h * hd;
      block.v = values + r * cap * d + h * hd;
      block.kv_stride = cap * d;
      block.list = image_keys.data();
      block.listed = static_cast<int64_t>(image_keys.size());
      block.stride = d;
      block.hd = hd;
      block.heads = by_rows ? heads_ : 1;
      block.scale = scale;
      block.scores = &scores_[static_cast<size_t>((r * heads_ + h) * per_query_head)];
      block.out = &att_[static_cast<size_t>((r * chunk + c) * d + h * hd)];
      block.out_stride = chunk * d;
      vec_attend(block);
    }
  });
  if (!image)
    for (int64_t r = 0; r < rows_; ++r)
      if (text_owner_[static_cast<size_t>(r)] != r)
        std::memcpy(&att_[static_cast<size_t>((r * chunk + c) * d)],
                    &att_[static_cast<size_t>((text_owner_[static_cast<size_t>(r)] * chunk + c) * d)], sizeof(float) * d);
}

torch::Tensor PriorDecoder::run(int64_t first, int64_t chunk) {
  const int64_t m = rows_ * chunk, d = d_;
  // Row-wise work split across threads once there are rows enough (a batch, a prefill).
  auto rows_parallel = [m](const auto& f) {
    at::parallel_for(0, m, 8, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) f(i);
    });
  };
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    rows_parallel([&](int64_t i) {
      vec_layer_norm(&x_[i * d], layer.ln1.weight.data(), layer.ln1.bias.data(), layer.ln1.eps, d, &h_[i * d]);
    });
    layer.qkv.apply(h_.data(), m, qkv_.data());
    for (int64_t c = 0; c < chunk; ++c) attend(l, first + c, chunk, c);
    layer.attn_proj.apply(att_.data(), m, x_.data(), Epilogue::accumulate);
    rows_parallel([&](int64_t i) {
      vec_layer_norm(&x_[i * d], layer.ln2.weight.data(), layer.ln2.bias.data(), layer.ln2.eps, d, &h_[i * d]);
    });
    layer.fc.apply(h_.data(), m, mlp_.data(), Epilogue::gelu);
    layer.mlp_proj.apply(mlp_.data(), m, x_.data(), Epilogue::accumulate);
  }
  for (int64_t r = 0; r < rows_; ++r)
    vec_layer_norm(&x_[(r * chunk + chunk - 1) * d], ln_f_.weight.data(), ln_f_.bias.data(), ln_f_.eps, d, &last_[r * d]);
  image_head_.apply(last_.data(), rows_, logits_.data());
  length_ = first + chunk;
  return torch::from_blob(logits_.data(), {rows_, int64_t(image_vocab_)}, torch::kFloat32);
}

}  // namespace dalle

#include "dalle/prior/kv_cache.h"

#include "dalle/util/torch_api.h"

#include <cmath>

namespace dalle {

int64_t KvCache::ring_size(MaskType type, const MaskShape& s) {
  const int64_t n = int64_t(s.grid_h) * s.grid_w;
  const int64_t radius = s.conv_kernel / 2;
  const int64_t reach = type == MaskType::row ? s.grid_w : radius * s.grid_w + radius;
  return std::min(n, reach + 1);
}

KvCache::KvCache(const std::vector<MaskType>& masks, const MaskShape& s, int64_t batch, int heads, int64_t hd,
                 const c10::Device& device)
    : masks_(masks), shape_(s) {
  const int64_t t = s.text_len, n = int64_t(s.grid_h) * s.grid_w;
  for (MaskType type : {MaskType::row, MaskType::conv}) {
    const int64_t w = ring_size(type, s);
    const size_t m = static_cast<size_t>(type);
    ring_[m] = w;
    // Ring entry p holds slot q - ((q - p) mod W) when the query is slot q: masked when that slot
    // does not exist yet or the mask forbids it.
    torch::Tensor bias = torch::zeros({n, t + w});
    auto a = bias.accessor<float, 2>();
    for (int64_t q = 0; q < n; ++q)
      for (int64_t p = 0; p < w; ++p) {
        const int64_t key = q - ((q - p) % w + w) % w;
        if (key < 0 || !image_mask_allows(type, s, static_cast<int>(q), static_cast<int>(key))) a[q][t + p] = -INFINITY;
      }
    ring_bias_[m] = bias.to(device);
  }
  torch::Tensor column = torch::zeros({s.grid_h, t + s.grid_h});
  for (int64_t r = 0; r < s.grid_h; ++r) column[r].narrow(0, t + r + 1, s.grid_h - r - 1).fill_(-INFINITY);
  column_bias_ = column.to(device);
  for (MaskType type : masks) {
    const std::vector<int64_t> shape =
        type == MaskType::column ? std::vector<int64_t>{batch, heads, s.grid_w, t + s.grid_h, hd}
                                 : std::vector<int64_t>{batch, heads, t + ring_[static_cast<size_t>(type)], hd};
    keys_.push_back(torch::zeros(shape, torch::TensorOptions().device(device)));
    values_.push_back(torch::zeros(shape, torch::TensorOptions().device(device)));
  }
}

void KvCache::store_slot(int layer, int64_t slot, const torch::Tensor& k, const torch::Tensor& v) {
  const size_t l = static_cast<size_t>(layer);
  const int64_t t = shape_.text_len;
  if (masks_[l] == MaskType::column) {
    keys_[l].select(2, slot % shape_.grid_w).narrow(2, t + slot / shape_.grid_w, 1).copy_(k);
    values_[l].select(2, slot % shape_.grid_w).narrow(2, t + slot / shape_.grid_w, 1).copy_(v);
  } else {
    const int64_t p = t + slot % ring_[static_cast<size_t>(masks_[l])];
    keys_[l].narrow(2, p, 1).copy_(k);
    values_[l].narrow(2, p, 1).copy_(v);
  }
}

void KvCache::store_prefix(int layer, const torch::Tensor& k, const torch::Tensor& v) {
  const size_t l = static_cast<size_t>(layer);
  const int64_t t = shape_.text_len, slots = k.size(2) - t;
  if (masks_[l] == MaskType::column) {
    keys_[l].narrow(3, 0, t).copy_(k.narrow(2, 0, t).unsqueeze(2));
    values_[l].narrow(3, 0, t).copy_(v.narrow(2, 0, t).unsqueeze(2));
  } else {
    keys_[l].narrow(2, 0, t).copy_(k.narrow(2, 0, t));
    values_[l].narrow(2, 0, t).copy_(v.narrow(2, 0, t));
  }
  // Ring layers only need the last W slots; older ones would be overwritten anyway.
  const int64_t first = masks_[l] == MaskType::column ? 0 : std::max<int64_t>(0, slots - ring_[static_cast<size_t>(masks_[l])]);
  for (int64_t s = first; s < slots; ++s) store_slot(layer, s, k.narrow(2, t + s, 1), v.narrow(2, t + s, 1));
}

KvCache::Window KvCache::store_step(int layer, int64_t slot, const torch::Tensor& k, const torch::Tensor& v) {
  store_slot(layer, slot, k, v);
  const size_t l = static_cast<size_t>(layer);
  if (masks_[l] == MaskType::column) {
    const int64_t keys = shape_.text_len + slot / shape_.grid_w + 1;
    const int64_t c = slot % shape_.grid_w;
    return {keys_[l].select(2, c).narrow(2, 0, keys), values_[l].select(2, c).narrow(2, 0, keys), {}};
  }
  return {keys_[l], values_[l], ring_bias_[static_cast<size_t>(masks_[l])].narrow(0, slot, 1)};
}

KvCache::SlotIndex KvCache::slot_index() const {
  SlotIndex index;
  index.all = torch::zeros({6}, torch::TensorOptions().dtype(torch::kLong).device(column_bias_.device()));
  torch::Tensor* parts[6] = {&index.slot, &index.row, &index.col, &index.column_entry, &index.ring[0], &index.ring[1]};
  for (int64_t i = 0; i < 6; ++i) *parts[i] = index.all.narrow(0, i, 1);
  return index;
}

void KvCache::set_slot_index(SlotIndex& index, int64_t slot) const {
  const int64_t t = shape_.text_len, w = shape_.grid_w, row = slot / w, col = slot % w;
  const int64_t values[6] = {slot, row, col, col * (t + shape_.grid_h) + t + row, t + slot % ring_[0], t + slot % ring_[2]};
  index.all.copy_(torch::from_blob(const_cast<int64_t*>(values), {6}, torch::kLong));
}

KvCache::Window KvCache::store_step_indexed(int layer, const SlotIndex& index, const torch::Tensor& k,
                                            const torch::Tensor& v) {
  const size_t l = static_cast<size_t>(layer);
  torch::Tensor& keys = keys_[l];
  torch::Tensor& values = values_[l];
  // index_copy_ does not convert: 16-bit k/v from autocast go into the fp32 buffers as values.
  const torch::Tensor k32 = k.to(keys.scalar_type()), v32 = v.to(values.scalar_type());
  if (masks_[l] == MaskType::column) {
    const std::vector<int64_t> flat{keys.size(0), keys.size(1), keys.size(2) * keys.size(3), keys.size(4)};
    keys.view(flat).index_copy_(2, index.column_entry, k32);
    values.view(flat).index_copy_(2, index.column_entry, v32);
    return {keys.index_select(2, index.col).squeeze(2), values.index_select(2, index.col).squeeze(2),
            column_bias_.index_select(0, index.row)};
  }
  const size_t m = static_cast<size_t>(masks_[l]);
  const torch::Tensor& at = index.ring[masks_[l] == MaskType::row ? 0 : 1];
  keys.index_copy_(2, at, k32);
  values.index_copy_(2, at, v32);
  return {keys, values, ring_bias_[m].index_select(0, index.slot)};
}

int64_t KvCache::bytes() const {
  int64_t n = 0;
  for (size_t i = 0; i < keys_.size(); ++i) n += (keys_[i].numel() + values_[i].numel()) * keys_[i].element_size();
  return n;
}

}  // namespace dalle

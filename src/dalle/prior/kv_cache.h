// Key/value cache for incremental decoding that keeps only what each layer's mask can reach
// (SPEC §2 masks): every layer keeps all text keys; row and conv layers keep a ring buffer of
// the last W image slots (W = the largest raster offset their mask allows, + 1: w + 1 for the
// row mask, radius * w + radius + 1 for the conv mask); column layers keep, per column, the
// earlier rows of that column. Buffers are allocated once per sampling call and zeroed (a
// never-written entry is masked, and 0 * garbage could still be NaN); a step writes one slot
// with copy_ and attends through views, so decoding allocates nothing per token but results.
#pragma once
#include <torch/types.h>

#include <vector>

#include "dalle/prior/masks.h"

namespace dalle {

class KvCache {
 public:
  KvCache() = default;
  // Buffers on `device` (the model's).
  KvCache(const std::vector<MaskType>& masks, const MaskShape& shape, int64_t batch, int heads, int64_t head_dim,
          const c10::Device& device = c10::Device(c10::kCPU));

  // Keys/values [B, H, S, hd] of positions [0, S): the text, then image slots 0 .. S-T-1.
  void store_prefix(int layer, const torch::Tensor& k, const torch::Tensor& v);

  // What the query of one image slot may attend: keys/values [B, H, K, hd] and the additive
  // bias [1, K] (undefined when every key is allowed).
  struct Window {
    torch::Tensor keys, values, bias;
  };
  // Stores image slot `slot`'s k/v [B, H, 1, hd] for `layer`, then returns its window.
  Window store_step(int layer, int64_t slot, const torch::Tensor& k, const torch::Tensor& v);

  // A step's slot as int64 tensors [1] on the cache's device, for store_step_indexed(): a step
  // whose kernels and shapes do not depend on the slot, which a CUDA graph can replay.
  struct SlotIndex {
    torch::Tensor slot, row, col;
    torch::Tensor column_entry;  // col * (T + h) + T + row: the entry in a column layer's buffer
    torch::Tensor ring[2];       // T + slot % W, per ring mask type (row, conv)
    torch::Tensor all;           // the six values above, one tensor
  };
  SlotIndex slot_index() const;  // allocated, values unset
  // Writes `slot`'s values into `index` (one host-to-device copy).
  void set_slot_index(SlotIndex& index, int64_t slot) const;
  // store_step with the slot read from `index` on the device. Windows are whole buffers and the
  // bias masks what the slot may not see yet (column layers too): the same attention, with
  // exact zeros added for the masked entries.
  Window store_step_indexed(int layer, const SlotIndex& index, const torch::Tensor& k, const torch::Tensor& v);

  // Image slots of the ring buffer for a mask type (1 + the largest allowed raster offset).
  static int64_t ring_size(MaskType type, const MaskShape& shape);
  int64_t bytes() const;
  int64_t length = 0;  // positions filled (text + image slots)

 private:
  // slot -> (row, column) storage for column layers; slot % W for ring layers.
  void store_slot(int layer, int64_t slot, const torch::Tensor& k, const torch::Tensor& v);

  std::vector<MaskType> masks_;
  MaskShape shape_{};
  std::vector<torch::Tensor> keys_, values_;  // ring: [B, H, T + W, hd]; column: [B, H, w, T + h, hd]
  torch::Tensor ring_bias_[3];                // per mask type: [image slots, T + W], 0 or -inf
  torch::Tensor column_bias_;                 // [h, T + h]: row r sees the text and rows 0 .. r
  int64_t ring_[3] = {0, 0, 0};
};

}  // namespace dalle

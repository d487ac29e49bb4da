// Attention that computes only what the paper's masks allow (SPEC §2). Image slots are grouped
// into blocks of one grid row (row and conv masks, raster order) or one grid column (column
// mask, on the transposed grid); a query block attends its own key block and the few blocks
// before it that the mask can reach, plus every text key, in one softmax. Text queries are
// causal over text. The windows and their masks are derived from image_mask_allows, the same
// predicate the dense reference uses, so both compute the same function.
#pragma once
#include <torch/types.h>

#include "dalle/prior/masks.h"

namespace dalle {

struct BlockLayout {
  torch::Tensor order;    // [N] slot at each position of the blocked order; undefined = raster
  torch::Tensor inverse;  // [N] position of each slot in the blocked order
  int64_t block = 0;      // queries (and keys) per block
  int64_t prev_blocks = 0;  // key blocks before a query's own that the mask reaches
  torch::Tensor bias;     // [blocks, block, (prev_blocks + 1) * block]: 0 allowed, -inf not
  int64_t allowed_pairs = 0;  // image (query, key) pairs the mask allows
};

BlockLayout block_layout_make(MaskType type, const MaskShape& shape);

// q, k, v [B, heads, text_len + N, head_dim] -> [B, heads, text_len + N, head_dim].
// `text_bias` is the additive causal mask over text [text_len, text_len].
torch::Tensor sparse_masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const BlockLayout& layout, int64_t text_len, const torch::Tensor& text_bias);

}  // namespace dalle

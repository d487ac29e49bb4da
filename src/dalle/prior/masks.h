// The paper's attention masks (SPEC §2). Positions are [text_0 .. text_{T-1}, slot_0 ..
// slot_{N-1}]: image slot s holds the start-of-image token (s = 0) or image token s-1 and
// predicts image token s. Text is causal; every image slot sees all text; image->image uses
// one of three causal masks over the raster order of slots.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

namespace dalle {

enum class MaskType { row, column, conv };

std::string mask_type_name(MaskType type);

// Layer i (1-indexed) of L: conv for the last layer, column iff (i - 2) mod 4 == 0, else row.
std::vector<MaskType> layer_mask_types(int layers);

struct MaskShape {
  int text_len;
  int grid_h;
  int grid_w;
  int conv_kernel;  // odd side of the convolutional neighbourhood (paper 11)
};

// Whether image slot `query` may attend image slot `key` (raster indices).
bool image_mask_allows(MaskType type, const MaskShape& shape, int query, int key);

// The share of causal image pairs (key <= query) that the conv mask allows: about 0.06 for the
// paper's 11 on 32x32, near 1 when the kernel is as wide as the grid (nearly dense attention).
double conv_mask_coverage(const MaskShape& shape);
// A one-line warning when the conv kernel spans the whole grid width, so the last layer's
// "local" mask is a long causal window; empty when the mask is local.
std::string conv_mask_warning(const MaskShape& shape);

// The dense [L, L] boolean mask (true = may attend), L = text_len + grid_h * grid_w.
// This is the obviously-correct reference every faster path is tested against.
torch::Tensor dense_attention_mask(MaskType type, const MaskShape& shape);

}  // namespace dalle

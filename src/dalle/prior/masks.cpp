#include "dalle/prior/masks.h"

#include "dalle/util/torch_api.h"

namespace dalle {

std::string mask_type_name(MaskType type) {
  switch (type) {
    case MaskType::row: return "row";
    case MaskType::column: return "column";
    case MaskType::conv: return "conv";
  }
  return "?";
}

std::vector<MaskType> layer_mask_types(int layers) {
  std::vector<MaskType> types;
  for (int i = 1; i <= layers; ++i) {
    if (i == layers)
      types.push_back(MaskType::conv);
    else if ((i - 2) % 4 == 0)
      types.push_back(MaskType::column);
    else
      types.push_back(MaskType::row);
  }
  return types;
}

bool image_mask_allows(MaskType type, const MaskShape& shape, int query, int key) {
  if (key > query) return false;
  const int w = shape.grid_w;
  const int delta = query - key;
  switch (type) {
    case MaskType::row:
      // The previous w tokens in raster order: wraps into the row above.
      return delta <= w;
    case MaskType::column:
      return delta % w == 0;
    case MaskType::conv: {
      // Offsets on the raster index: r rows up (0..k/2) and c columns (-k/2..k/2), causal on
      // the current row. Wraps like the row mask.
      const int radius = shape.conv_kernel / 2;
      for (int r = 0; r <= radius; ++r) {
        const int c = delta - r * w;
        if (c <= radius && c >= (r == 0 ? 0 : -radius)) return true;
      }
      return false;
    }
  }
  return false;
}

torch::Tensor dense_attention_mask(MaskType type, const MaskShape& shape) {
  const int t = shape.text_len;
  const int n = shape.grid_h * shape.grid_w;
  const int l = t + n;
  torch::Tensor mask = torch::zeros({l, l}, torch::kBool);
  auto a = mask.accessor<bool, 2>();
  for (int q = 0; q < l; ++q) {
    for (int k = 0; k < l; ++k) {
      if (k < t) {
        a[q][k] = q >= t || k <= q;  // image sees all text; text is causal
      } else if (q >= t) {
        a[q][k] = image_mask_allows(type, shape, q - t, k - t);
      }
    }
  }
  return mask;
}

}  // namespace dalle

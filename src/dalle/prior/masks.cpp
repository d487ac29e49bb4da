#include "dalle/prior/masks.h"

#include "dalle/util/torch_api.h"

#include <cstdio>

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

double conv_mask_coverage(const MaskShape& shape) {
  const int n = shape.grid_h * shape.grid_w;
  int64_t allowed = 0, causal = 0;
  for (int q = 0; q < n; ++q) {
    causal += q + 1;
    for (int k = 0; k <= q; ++k) allowed += image_mask_allows(MaskType::conv, shape, q, k);
  }
  return static_cast<double>(allowed) / static_cast<double>(causal);
}

std::string conv_mask_warning(const MaskShape& shape) {
  if (shape.conv_kernel < shape.grid_w) return "";
  char line[320];
  std::snprintf(line, sizeof(line),
                "prior.conv_kernel %d spans the whole %d-wide image grid: the last layer's conv mask allows %.0f%% "
                "of the causal image pairs, close to dense attention (the paper uses 11 on 32x32, about a third of "
                "the width)",
                shape.conv_kernel, shape.grid_w, 100 * conv_mask_coverage(shape));
  return line;
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

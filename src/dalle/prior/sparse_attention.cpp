#include "dalle/prior/sparse_attention.h"

#include "dalle/util/torch_api.h"

#include <cmath>

namespace dalle {

BlockLayout block_layout_make(MaskType type, const MaskShape& shape) {
  const int h = shape.grid_h, w = shape.grid_w, n = h * w;
  // Column layers work on the transposed grid, where a column is one contiguous block.
  const bool transposed = type == MaskType::column;
  BlockLayout layout;
  layout.block = transposed ? h : w;
  std::vector<int64_t> order(static_cast<size_t>(n)), inverse(static_cast<size_t>(n));
  for (int p = 0; p < n; ++p) {
    const int slot = transposed ? (p % h) * w + p / h : p;
    order[static_cast<size_t>(p)] = slot;
    inverse[static_cast<size_t>(slot)] = p;
  }
  // How many blocks back the mask reaches, found from the predicate itself.
  int64_t prev = 0;
  for (int qp = 0; qp < n; ++qp)
    for (int kp = 0; kp < n; ++kp)
      if (image_mask_allows(type, shape, static_cast<int>(order[static_cast<size_t>(qp)]),
                            static_cast<int>(order[static_cast<size_t>(kp)]))) {
        ++layout.allowed_pairs;
        const int64_t distance = qp / layout.block - kp / layout.block;
        TORCH_CHECK(distance >= 0, "mask allows a key in a later block");
        prev = std::max(prev, distance);
      }
  layout.prev_blocks = prev;
  const int64_t blocks = n / layout.block, window = (prev + 1) * layout.block;
  layout.bias = torch::full({blocks, layout.block, window}, -INFINITY);
  auto bias = layout.bias.accessor<float, 3>();
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t i = 0; i < layout.block; ++i)
      for (int64_t j = 0; j < window; ++j) {
        const int64_t kp = (b - prev) * layout.block + j;  // key position in the blocked order
        if (kp < 0) continue;                             // zero padding before the first block
        const int64_t qp = b * layout.block + i;
        if (image_mask_allows(type, shape, static_cast<int>(order[static_cast<size_t>(qp)]),
                              static_cast<int>(order[static_cast<size_t>(kp)])))
          bias[b][i][j] = 0.0f;
      }
  if (transposed) {
    layout.order = torch::tensor(order, torch::kLong);
    layout.inverse = torch::tensor(inverse, torch::kLong);
  }
  return layout;
}

namespace {

// [B, H, blocks, block, D] -> [B, H, blocks, (prev + 1) * block, D]: each block with the
// `prev` blocks before it (zeros before the first).
torch::Tensor with_previous_blocks(const torch::Tensor& x, int64_t prev) {
  if (prev == 0) return x;
  const int64_t blocks = x.size(2);
  auto sizes = x.sizes().vec();
  sizes[2] = prev;
  const torch::Tensor padded = torch::cat({torch::zeros(sizes, x.options()), x}, 2);
  std::vector<torch::Tensor> parts;
  for (int64_t j = 0; j <= prev; ++j) parts.push_back(padded.narrow(2, j, blocks));
  return torch::cat(parts, 3);
}

}  // namespace

torch::Tensor sparse_masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const BlockLayout& layout, int64_t t, const torch::Tensor& text_bias) {
  const int64_t b = q.size(0), heads = q.size(1), len = q.size(2), hd = q.size(3);
  const int64_t n = len - t, blocks = n / layout.block;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  torch::Tensor qi = q.narrow(2, t, n), ki = k.narrow(2, t, n), vi = v.narrow(2, t, n);
  if (layout.order.defined()) {
    qi = qi.index_select(2, layout.order);
    ki = ki.index_select(2, layout.order);
    vi = vi.index_select(2, layout.order);
  }
  const torch::Tensor qb = qi.reshape({b, heads, blocks, layout.block, hd});
  const torch::Tensor kwin = with_previous_blocks(ki.reshape({b, heads, blocks, layout.block, hd}), layout.prev_blocks);
  const torch::Tensor vwin = with_previous_blocks(vi.reshape({b, heads, blocks, layout.block, hd}), layout.prev_blocks);
  torch::Tensor scores = torch::matmul(qb, kwin.transpose(-1, -2)) * scale + layout.bias.to(q.scalar_type());
  torch::Tensor out_text;
  if (t > 0) {
    const torch::Tensor qt = q.narrow(2, 0, t), kt = k.narrow(2, 0, t), vt = v.narrow(2, 0, t);
    const torch::Tensor text_scores = torch::matmul(qt, kt.transpose(-1, -2)) * scale + text_bias.to(q.scalar_type());
    out_text = torch::matmul(torch::softmax(text_scores, -1), vt);
    // Image queries see every text key: one softmax over [text keys, window keys].
    const torch::Tensor to_text = torch::matmul(qi, kt.transpose(-1, -2)) * scale;
    scores = torch::cat({to_text.reshape({b, heads, blocks, layout.block, t}), scores}, -1);
  }
  const torch::Tensor p = torch::softmax(scores, -1);
  torch::Tensor out_image = torch::matmul(p.narrow(-1, t, p.size(-1) - t), vwin).reshape({b, heads, n, hd});
  if (t > 0) out_image = out_image + torch::matmul(p.narrow(-1, 0, t).reshape({b, heads, n, t}), v.narrow(2, 0, t));
  if (layout.order.defined()) out_image = out_image.index_select(2, layout.inverse);
  return t > 0 ? torch::cat({out_text, out_image}, 2) : out_image;
}

}  // namespace dalle

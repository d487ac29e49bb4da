#include "dalle/prior/packed_linear.h"

#include "dalle/util/torch_api.h"

#include <ATen/Parallel.h>

#include <cstring>

#include "dalle/util/error.h"
#include "dalle/util/simd.h"


namespace dalle {

std::string weight_format_name(WeightFormat format) {
  switch (format) {
    case WeightFormat::fp32: return "fp32";
    case WeightFormat::bf16: return "bf16";
    case WeightFormat::int8: return "int8";
  }
  return "?";
}

WeightFormat parse_weight_format(const std::string& name) {
  if (name == "fp32") return WeightFormat::fp32;
  if (name == "bf16") return WeightFormat::bf16;
  if (name == "int8") return WeightFormat::int8;
  throw Error("unknown weight format '" + name + "' (expected fp32, bf16 or int8)");
}

Int8Weight quantize_int8(const torch::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2, "quantize_int8: weight must be [out, in]");
  const torch::Tensor w = weight.detach().to(torch::kFloat32);
  torch::Tensor scale = w.abs().amax(1) / 127.0;
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));
  const torch::Tensor q = torch::round(w / scale.unsqueeze(1)).clamp(-127, 127).to(torch::kInt8);
  return {q.contiguous(), scale.contiguous()};
}

torch::Tensor dequantize_int8(const Int8Weight& w) {
  return w.q.to(torch::kFloat32) * w.scale.to(torch::kFloat32).unsqueeze(1);
}

namespace {

using namespace simd;
constexpr int kOutBlock = 4;  // output channels per register block
constexpr int kRowBlock = 4;  // activation rows per register block

DALLE_SIMD_INLINE vf load_lanes(const float* p) { return load(p); }
DALLE_SIMD_INLINE vf load_lanes(const uint16_t* p) {  // bf16 -> fp32 is a 16-bit shift
  vu16 h;
  std::memcpy(&h, p, sizeof h);
  const vu32 bits = __builtin_convertvector(h, vu32) << 16;
  vf v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
DALLE_SIMD_INLINE vf load_lanes(const int8_t* p) {
  vi8 q;
  std::memcpy(&q, p, sizeof q);
  return __builtin_convertvector(q, vf);
}
DALLE_SIMD_INLINE float to_float(float w) { return w; }
DALLE_SIMD_INLINE float to_float(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
DALLE_SIMD_INLINE float to_float(int8_t q) { return float(q); }

// R rows x kOutBlock outputs: dot products of full length `in`, written to dot[r][o].
template <class W, int R>
DALLE_SIMD_INLINE void dot_block(const W* w, int64_t in, const float* x, float dot[kRowBlock][kOutBlock]) {
  vf acc[R][kOutBlock];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int o = 0; o < kOutBlock; ++o) acc[r][o] = vf{};
  const int64_t vec_end = in - in % kLanes;
  for (int64_t i = 0; i < vec_end; i += kLanes) {
    vf wv[kOutBlock];
#pragma GCC unroll 4
    for (int o = 0; o < kOutBlock; ++o) wv[o] = load_lanes(w + o * in + i);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const vf xv = load_lanes(x + r * in + i);
#pragma GCC unroll 4
      for (int o = 0; o < kOutBlock; ++o) acc[r][o] += wv[o] * xv;
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int o = 0; o < kOutBlock; ++o) {
      float s = lane_sum(acc[r][o]);
      for (int64_t i = vec_end; i < in; ++i) s += to_float(w[o * in + i]) * x[r * in + i];
      dot[r][o] = s;
    }
}

// Output channels [o_begin, o_end) (multiples of kOutBlock, except possibly o_end == out) for
// every row. Weight rows stay in cache while all row blocks use them.
template <class W>
DALLE_SIMD_INLINE void linear_range(const W* w, const float* scale, const float* bias, const float* x, int64_t rows,
                               int64_t in, int64_t out, float* y, int64_t o_begin, int64_t o_end) {
  float dot[kRowBlock][kOutBlock];
  for (int64_t o0 = o_begin; o0 < o_end; o0 += kOutBlock) {
    const int64_t no = std::min<int64_t>(kOutBlock, o_end - o0);
    if (no < kOutBlock) {  // the last partial block: plain dot products
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t o = o0; o < o_end; ++o) {
          float s = 0;
          for (int64_t i = 0; i < in; ++i) s += to_float(w[o * in + i]) * x[r * in + i];
          y[r * out + o] = s * (scale ? scale[o] : 1.0f) + bias[o];
        }
      continue;
    }
    const W* wb = w + o0 * in;
    for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
      const int64_t nr = std::min<int64_t>(kRowBlock, rows - r0);
      const float* xb = x + r0 * in;
      switch (nr) {
        case 4: dot_block<W, 4>(wb, in, xb, dot); break;
        case 3: dot_block<W, 3>(wb, in, xb, dot); break;
        case 2: dot_block<W, 2>(wb, in, xb, dot); break;
        default: dot_block<W, 1>(wb, in, xb, dot); break;
      }
      for (int64_t r = 0; r < nr; ++r)
        for (int o = 0; o < kOutBlock; ++o)
          y[(r0 + r) * out + o0 + o] = dot[r][o] * (scale ? scale[o0 + o] : 1.0f) + bias[o0 + o];
    }
  }
}

DALLE_SIMD_CLONES void linear_range_f32(const float* w, const float* bias, const float* x, int64_t rows, int64_t in,
                                          int64_t out, float* y, int64_t o_begin, int64_t o_end) {
  linear_range(w, nullptr, bias, x, rows, in, out, y, o_begin, o_end);
}
DALLE_SIMD_CLONES void linear_range_bf16(const uint16_t* w, const float* bias, const float* x, int64_t rows,
                                           int64_t in, int64_t out, float* y, int64_t o_begin, int64_t o_end) {
  linear_range(w, nullptr, bias, x, rows, in, out, y, o_begin, o_end);
}
DALLE_SIMD_CLONES void linear_range_int8(const int8_t* w, const float* scale, const float* bias, const float* x,
                                           int64_t rows, int64_t in, int64_t out, float* y, int64_t o_begin,
                                           int64_t o_end) {
  linear_range(w, scale, bias, x, rows, in, out, y, o_begin, o_end);
}

}  // namespace

PackedLinear::PackedLinear(const torch::Tensor& weight, const torch::Tensor& bias, WeightFormat format,
                           const Int8Weight* int8)
    : in_(weight.size(1)), out_(weight.size(0)), format_(format) {
  torch::NoGradGuard no_grad;
  const torch::Tensor w = weight.detach().to(torch::kFloat32).contiguous();
  bias_.assign(static_cast<size_t>(out_), 0.0f);
  if (bias.defined()) {
    const torch::Tensor b = bias.detach().to(torch::kFloat32).contiguous();
    std::memcpy(bias_.data(), b.data_ptr<float>(), sizeof(float) * bias_.size());
  }
  const size_t n = static_cast<size_t>(in_ * out_);
  switch (format) {
    case WeightFormat::fp32:
      w32_.assign(w.data_ptr<float>(), w.data_ptr<float>() + n);
      break;
    case WeightFormat::bf16: {
      const torch::Tensor h = w.to(torch::kBFloat16).contiguous();  // round to nearest even
      w16_.resize(n);
      std::memcpy(w16_.data(), h.data_ptr(), 2 * n);
      break;
    }
    case WeightFormat::int8: {
      const Int8Weight q = int8 ? *int8 : quantize_int8(w);
      TORCH_CHECK(q.q.sizes() == w.sizes() && q.scale.numel() == out_, "PackedLinear: int8 weight shape mismatch");
      const torch::Tensor qc = q.q.contiguous(), sc = q.scale.to(torch::kFloat32).contiguous();
      w8_.assign(qc.data_ptr<int8_t>(), qc.data_ptr<int8_t>() + n);
      scale_.assign(sc.data_ptr<float>(), sc.data_ptr<float>() + out_);
      break;
    }
  }
}

int64_t PackedLinear::weight_bytes() const {
  return static_cast<int64_t>(w32_.size() * 4 + w16_.size() * 2 + w8_.size() + scale_.size() * 4);
}

void PackedLinear::apply(const float* x, int64_t rows, float* y) const {
  const int64_t blocks = (out_ + kOutBlock - 1) / kOutBlock;
  // Enough multiply-adds per task that a thread hand-off (a few microseconds) stays small.
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, in_ * rows * kOutBlock));
  at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
    const int64_t o0 = b0 * kOutBlock, o1 = std::min(out_, b1 * kOutBlock);
    switch (format_) {
      case WeightFormat::fp32: linear_range_f32(w32_.data(), bias_.data(), x, rows, in_, out_, y, o0, o1); break;
      case WeightFormat::bf16: linear_range_bf16(w16_.data(), bias_.data(), x, rows, in_, out_, y, o0, o1); break;
      case WeightFormat::int8:
        linear_range_int8(w8_.data(), scale_.data(), bias_.data(), x, rows, in_, out_, y, o0, o1);
        break;
    }
  });
}

}  // namespace dalle

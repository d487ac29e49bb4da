#include "dalle/prior/packed_linear.h"

#include "dalle/util/torch_api.h"

#include <ATen/Parallel.h>

#include <cstring>
#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12 flags the intrinsics' own `_mm512_undefined` pass-through operands as uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "dalle/prior/amx_matmul.h"
#include "dalle/prior/onednn_matmul.h"
#include "dalle/prior/vector_math.h"
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
// Weights are stored in panels of kPanel output channels, input-major within a panel: for each
// input i, the kPanel weights W[o0 .. o0 + kPanel, i] are contiguous. A register block is R
// activation rows x kPanel outputs: each input broadcasts one activation per row and multiplies
// kGroups weight vectors, so there are no horizontal sums and every weight is read once per
// row block.
constexpr int kGroups = 4;
constexpr int kPanel = kGroups * kLanes;
constexpr int kRowBlock = 4;
// From this many rows on, bf16 layers use oneDNN's bf16 GEMM through libtorch (bench_generate,
// batch 32). Not fp32: OpenBLAS's own thread pool fights libtorch's OpenMP threads there, and
// the panel kernel measured faster in context.
constexpr int64_t kGemmRows = 16;

DALLE_SIMD_INLINE vf load_lanes(const float* p) { return load(p); }
DALLE_SIMD_INLINE vf load_lanes(const uint16_t* p) { return load_bf16(p); }
// int8 weights, tagged with the instruction set that widens them: GCC 12 turns a vector
// int8 -> int32 conversion into one insert per lane, so the x86 paths use the sign-extending
// loads directly. Those loads have a wider target than the kernel templates, so they are not
// always_inline; the kernels' entry points are `flatten`, which inlines them there.
template <int kIsa>
struct Q8 {
  int8_t q;
};
enum { kIsaBase = 0, kIsaAvx2 = 2, kIsaAvx512 = 5 };
DALLE_SIMD_INLINE vf load_lanes(const Q8<kIsaBase>* p) {
  vi8 q;
  std::memcpy(&q, p, sizeof q);
  return __builtin_convertvector(__builtin_convertvector(q, vi32), vf);
}
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target("avx512f"))) inline vf load_lanes(const Q8<kIsaAvx512>* p) {
  return (vf)_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
__attribute__((target("avx2,fma"))) inline vf load_lanes(const Q8<kIsaAvx2>* p) {
  const __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  const __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8))));
  vf v;
  std::memcpy(&v, &lo, sizeof lo);
  std::memcpy(reinterpret_cast<char*>(&v) + sizeof lo, &hi, sizeof hi);
  return v;
}
#endif

// acc[r][g] = sum_i x[r, i] * panel[i, g*kLanes .. (g+1)*kLanes) for R rows.
template <class W, int R>
DALLE_SIMD_INLINE void panel_block(const W* panel, int64_t in, const float* x, vf acc[kRowBlock][kGroups]) {
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int g = 0; g < kGroups; ++g) acc[r][g] = vf{};
  for (int64_t i = 0; i < in; ++i) {
    vf wv[kGroups];
#pragma GCC unroll 4
    for (int g = 0; g < kGroups; ++g) wv[g] = load_lanes(panel + i * kPanel + g * kLanes);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const vf xr = splat(x[r * in + i]);
#pragma GCC unroll 4
      for (int g = 0; g < kGroups; ++g) acc[r][g] += wv[g] * xr;
    }
  }
}

// Panels [p_begin, p_end) for every row: y = acc * scale + bias, or y += that when
// `accumulate` (scale and bias padded to whole panels). The panel stays in cache while all row
// blocks use it.
template <class W>
DALLE_SIMD_INLINE void linear_range(const W* w, const float* scale, const float* bias, const float* x, int64_t rows,
                                    int64_t in, int64_t out, float* y, bool accumulate, int64_t p_begin,
                                    int64_t p_end) {
  vf acc[kRowBlock][kGroups];
  for (int64_t p = p_begin; p < p_end; ++p) {
    const W* panel = w + p * in * kPanel;
    const int64_t o0 = p * kPanel, valid = std::min<int64_t>(kPanel, out - o0);
    for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
      const int64_t nr = std::min<int64_t>(kRowBlock, rows - r0);
      const float* xb = x + r0 * in;
      switch (nr) {
        case 4: panel_block<W, 4>(panel, in, xb, acc); break;
        case 3: panel_block<W, 3>(panel, in, xb, acc); break;
        case 2: panel_block<W, 2>(panel, in, xb, acc); break;
        default: panel_block<W, 1>(panel, in, xb, acc); break;
      }
      for (int64_t r = 0; r < nr; ++r)
        for (int g = 0; g < kGroups; ++g) {
          const int64_t o = o0 + g * kLanes;
          const vf v = acc[r][g] * load(scale + o) + load(bias + o);
          float* dst = y + (r0 + r) * out + o;
          if (valid == kPanel) {
            store(dst, accumulate ? load(dst) + v : v);
          } else if (g * kLanes < valid) {  // the last, partial panel
            float lanes[kLanes];
            store(lanes, v);
            const int64_t n = std::min<int64_t>(kLanes, valid - g * kLanes);
            for (int64_t i = 0; i < n; ++i) dst[i] = accumulate ? dst[i] + lanes[i] : lanes[i];
          }
        }
    }
  }
}

DALLE_SIMD_CLONES void linear_range_f32(const float* w, const float* scale, const float* bias, const float* x,
                                        int64_t rows, int64_t in, int64_t out, float* y, bool accumulate,
                                        int64_t p_begin, int64_t p_end) {
  linear_range(w, scale, bias, x, rows, in, out, y, accumulate, p_begin, p_end);
}
DALLE_SIMD_CLONES void linear_range_bf16(const uint16_t* w, const float* scale, const float* bias, const float* x,
                                         int64_t rows, int64_t in, int64_t out, float* y, bool accumulate,
                                         int64_t p_begin, int64_t p_end) {
  linear_range(w, scale, bias, x, rows, in, out, y, accumulate, p_begin, p_end);
}
void linear_range_int8_base(const int8_t* w, const float* scale, const float* bias, const float* x, int64_t rows,
                            int64_t in, int64_t out, float* y, bool accumulate, int64_t p_begin, int64_t p_end) {
  linear_range(reinterpret_cast<const Q8<kIsaBase>*>(w), scale, bias, x, rows, in, out, y, accumulate, p_begin, p_end);
}
using Int8Kernel = void (*)(const int8_t*, const float*, const float*, const float*, int64_t, int64_t, int64_t, float*,
                            bool, int64_t, int64_t);
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target("avx512f"), flatten)) void linear_range_int8_avx512(const int8_t* w, const float* scale,
                                                                          const float* bias, const float* x,
                                                                          int64_t rows, int64_t in, int64_t out,
                                                                          float* y, bool accumulate, int64_t p_begin,
                                                                          int64_t p_end) {
  linear_range(reinterpret_cast<const Q8<kIsaAvx512>*>(w), scale, bias, x, rows, in, out, y, accumulate, p_begin,
               p_end);
}
__attribute__((target("avx2,fma"), flatten)) void linear_range_int8_avx2(const int8_t* w, const float* scale,
                                                                         const float* bias, const float* x,
                                                                         int64_t rows, int64_t in, int64_t out,
                                                                         float* y, bool accumulate, int64_t p_begin,
                                                                         int64_t p_end) {
  linear_range(reinterpret_cast<const Q8<kIsaAvx2>*>(w), scale, bias, x, rows, in, out, y, accumulate, p_begin,
               p_end);
}
Int8Kernel pick_int8_kernel() {
  if (__builtin_cpu_supports("avx512f")) return linear_range_int8_avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return linear_range_int8_avx2;
  return linear_range_int8_base;
}
#else
Int8Kernel pick_int8_kernel() { return linear_range_int8_base; }
#endif
const Int8Kernel linear_range_int8 = pick_int8_kernel();

// [out, in] row-major -> panels (zeros past `out`).
template <class T>
std::vector<T> to_panels(const T* w, int64_t out, int64_t in) {
  const int64_t panels = (out + kPanel - 1) / kPanel;
  std::vector<T> packed(static_cast<size_t>(panels * in * kPanel), T(0));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) packed[static_cast<size_t>(((o / kPanel) * in + i) * kPanel + o % kPanel)] = w[o * in + i];
  return packed;
}

}  // namespace

PackedLinear::PackedLinear(const torch::Tensor& weight, const torch::Tensor& bias, WeightFormat format,
                           const Int8Weight* int8)
    : in_(weight.size(1)), out_(weight.size(0)), format_(format) {
  torch::NoGradGuard no_grad;
  // Packed for the CPU kernels, from a prior on any device.
  const torch::Tensor w = weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const size_t padded = static_cast<size_t>((out_ + kPanel - 1) / kPanel * kPanel);
  bias_.assign(padded, 0.0f);
  scale_.assign(padded, 1.0f);
  if (bias.defined()) {
    const torch::Tensor b = bias.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    std::memcpy(bias_.data(), b.data_ptr<float>(), sizeof(float) * static_cast<size_t>(out_));
  }
  switch (format) {
    case WeightFormat::fp32:
      w32_ = to_panels(w.data_ptr<float>(), out_, in_);
      break;
    case WeightFormat::bf16: {
      const torch::Tensor h = w.to(torch::kBFloat16).contiguous();  // round to nearest even
      if (AmxMatmul::available()) {  // every row count runs there
        amx_ = std::make_shared<AmxMatmul>(reinterpret_cast<const uint16_t*>(h.data_ptr()), bias_.data(), in_, out_);
        break;
      }
      w16_ = to_panels(reinterpret_cast<const uint16_t*>(h.data_ptr()), out_, in_);
      if (OnednnMatmul::available()) {
        onednn_ = std::make_shared<OnednnMatmul>(reinterpret_cast<const uint16_t*>(h.data_ptr()), bias_.data(), in_, out_);
      } else {
        gemm_weight_ = h;
        gemm_bias_ = torch::from_blob(bias_.data(), {out_}, torch::kFloat32).clone();
      }
      break;
    }
    case WeightFormat::int8: {
      const Int8Weight q = int8 ? *int8 : quantize_int8(w);
      TORCH_CHECK(q.q.sizes() == w.sizes() && q.scale.numel() == out_, "PackedLinear: int8 weight shape mismatch");
      const torch::Tensor qc = q.q.contiguous(), sc = q.scale.to(torch::kFloat32).contiguous();
      w8_ = to_panels(qc.data_ptr<int8_t>(), out_, in_);
      std::memcpy(scale_.data(), sc.data_ptr<float>(), sizeof(float) * static_cast<size_t>(out_));
      if (AmxMatmul::available())
        amx_ = std::make_shared<AmxMatmul>(qc.data_ptr<int8_t>(), scale_.data(), bias_.data(), in_, out_);
      break;
    }
  }
}

int64_t PackedLinear::weight_bytes() const {
  const int64_t n = in_ * out_;
  return format_ == WeightFormat::fp32 ? 4 * n : format_ == WeightFormat::bf16 ? 2 * n : n + 4 * out_;
}

void PackedLinear::apply(const float* x, int64_t rows, float* y, Epilogue epilogue) const {
  // AMX tiles take 16 rows at once. bf16 reads its weights faster there than through the panel
  // kernel even for one row; int8 widens each tile first, which pays once the panel kernel would
  // read every weight a second time (bench_linear).
  if (amx_ && (format_ == WeightFormat::bf16 || rows > kRowBlock)) return amx_->run(x, rows, y, epilogue);
  if (rows >= kGemmRows && onednn_) return onednn_->run(x, rows, y, epilogue);
  if (rows >= kGemmRows && gemm_weight_.defined()) {
    const torch::Tensor xt = torch::from_blob(const_cast<float*>(x), {rows, in_}, torch::kFloat32);
    torch::Tensor yt = torch::from_blob(y, {rows, out_}, torch::kFloat32);
    torch::Tensor r = torch::nn::functional::linear(xt.to(gemm_weight_.scalar_type()), gemm_weight_).to(torch::kFloat32);
    r.add_(gemm_bias_);
    if (epilogue == Epilogue::accumulate) yt.add_(r);
    else yt.copy_(epilogue == Epilogue::gelu ? torch::gelu(r) : r);
    return;
  }
  const int64_t panels = (out_ + kPanel - 1) / kPanel;
  const bool accumulate = epilogue == Epilogue::accumulate;
  // Enough multiply-adds per task that a thread hand-off (a few microseconds) stays small.
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, in_ * rows * kPanel));
  at::parallel_for(0, panels, grain, [&](int64_t p0, int64_t p1) {
    switch (format_) {
      case WeightFormat::fp32:
        linear_range_f32(w32_.data(), scale_.data(), bias_.data(), x, rows, in_, out_, y, accumulate, p0, p1);
        break;
      case WeightFormat::bf16:
        linear_range_bf16(w16_.data(), scale_.data(), bias_.data(), x, rows, in_, out_, y, accumulate, p0, p1);
        break;
      case WeightFormat::int8:
        linear_range_int8(w8_.data(), scale_.data(), bias_.data(), x, rows, in_, out_, y, accumulate, p0, p1);
        break;
    }
    if (epilogue == Epilogue::gelu) {  // this task's columns of every row
      const int64_t o0 = p0 * kPanel, n = std::min(out_, p1 * kPanel) - o0;
      for (int64_t r = 0; r < rows; ++r) vec_gelu(y + r * out_ + o0, n);
    }
  });
}

}  // namespace dalle

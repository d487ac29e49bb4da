#include "dalle/prior/amx_matmul.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "dalle/prior/vector_math.h"
#include "dalle/util/error.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define DALLE_HAVE_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
// GCC 12 flags the intrinsics' own `_mm512_undefined` pass-through operands as uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace dalle {

namespace {
constexpr int64_t kTileRows = 16;   // rows of an activation tile, outputs of a weight tile
constexpr int64_t kTileK = 32;      // inputs per tile: 16 rows of bf16 pairs (64 bytes)
constexpr int64_t kTileSize = 512;  // weights per tile
}  // namespace

#if DALLE_HAVE_AMX

namespace {

bool cpu_has_amx_bf16() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool avx512 = (b & (1u << 16)) && (b & (1u << 30));  // AVX512F, AVX512BW
  const bool amx = (d & (1u << 22)) && (d & (1u << 24));      // AMX-BF16, AMX-TILE
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  return avx512 && amx && (a & (1u << 5));  // AVX512-BF16
}

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

#define DALLE_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16")))

// One int8 tile to bf16, exactly.
DALLE_AMX_TARGET inline void widen_tile(const int8_t* src, uint16_t* dst) {
  for (int i = 0; i < kTileSize; i += 32) {
    const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    const __m512 hi =
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 16))));
    _mm512_storeu_si512(dst + i, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
  }
}

struct StripJob {
  const int8_t* tiles8;     // int8 weights, widened here
  const uint16_t* tiles16;  // or bf16 weights, read as they are
  int64_t k_blocks, n_blocks;
  const uint16_t* a;  // [m_pad, k_blocks * 32] bf16
  int64_t m_pad, rows, out;
  const float *scale, *bias;
  float* y;
  Epilogue epilogue;
};

// Result tile `c` (16 x 16 fp32) of rows m0.. and outputs o0.. into y.
DALLE_AMX_TARGET void finish_tile(const StripJob& j, const float* c, int64_t m0, int64_t o0) {
  const int64_t valid = std::min<int64_t>(kTileRows, j.out - o0);
  if (valid <= 0) return;
  const __m512 scale = _mm512_loadu_ps(j.scale + o0), bias = _mm512_loadu_ps(j.bias + o0);
  const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
  for (int64_t r = 0; r < kTileRows && m0 + r < j.rows; ++r) {
    float* dst = j.y + (m0 + r) * j.out + o0;
    __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(c + r * kTileRows), scale, bias);
    if (j.epilogue == Epilogue::accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, dst));
    _mm512_mask_storeu_ps(dst, mask, v);
    if (j.epilogue == Epilogue::gelu) vec_gelu(dst, valid);
  }
}

// Strips [s0, s1) of two output blocks (32 outputs) each, every block of 32 rows with four
// accumulator tiles (0-3), two activation tiles (4, 5) and two weight tiles (6, 7). int8 weight
// tiles are widened to bf16 into a thread's buffer (L2-sized) while the first block of rows runs,
// next to the tile products, which run beside the vector units; later blocks (a prefill's) reuse them.
DALLE_AMX_TARGET void run_strips(const StripJob& j, int64_t s0, int64_t s1) {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = kTileRows;
    config.colsb[t] = 64;
  }
  _tile_loadconfig(&config);
  thread_local std::vector<uint16_t> wide;
  const int64_t kb_n = j.k_blocks, lda = kb_n * kTileK * 2;  // bytes per activation row
  if (j.tiles8) wide.resize(static_cast<size_t>(2 * kb_n * kTileSize));
  alignas(64) float c[4][kTileRows * kTileRows];
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t nb = 2 * s;
    const bool second_n = nb + 1 < j.n_blocks;
    const uint16_t* w0 = j.tiles8 ? wide.data() : j.tiles16 + nb * kb_n * kTileSize;
    const uint16_t* w1 = w0 + kb_n * kTileSize;
    for (int64_t m0 = 0; m0 < j.m_pad; m0 += 2 * kTileRows) {
      const bool second_m = m0 + kTileRows < j.m_pad;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      const uint16_t* a0 = j.a + m0 * kb_n * kTileK;
      const uint16_t* a1 = a0 + kTileRows * kb_n * kTileK;
      for (int64_t kb = 0; kb < kb_n; ++kb) {
        if (j.tiles8 && m0 == 0) {
          widen_tile(j.tiles8 + (nb * kb_n + kb) * kTileSize, wide.data() + kb * kTileSize);
          if (second_n) widen_tile(j.tiles8 + ((nb + 1) * kb_n + kb) * kTileSize, wide.data() + (kb_n + kb) * kTileSize);
        }
        _tile_loadd(4, a0 + kb * kTileK, lda);
        _tile_loadd(6, w0 + kb * kTileSize, 64);
        _tile_dpbf16ps(0, 4, 6);
        if (second_n) {
          _tile_loadd(7, w1 + kb * kTileSize, 64);
          _tile_dpbf16ps(1, 4, 7);
        }
        if (second_m) {
          _tile_loadd(5, a1 + kb * kTileK, lda);
          _tile_dpbf16ps(2, 5, 6);
          if (second_n) _tile_dpbf16ps(3, 5, 7);
        }
      }
      _tile_stored(0, c[0], 64);
      _tile_stored(1, c[1], 64);
      _tile_stored(2, c[2], 64);
      _tile_stored(3, c[3], 64);
      const int64_t o0 = nb * kTileRows, o1 = o0 + kTileRows;
      finish_tile(j, c[0], m0, o0);
      if (second_n) finish_tile(j, c[1], m0, o1);
      if (second_m) {
        finish_tile(j, c[2], m0 + kTileRows, o0);
        if (second_n) finish_tile(j, c[3], m0 + kTileRows, o1);
      }
    }
  }
  _tile_release();
}

}  // namespace

bool AmxMatmul::available() {
  // Linux grants the 8 KB tile state only on request (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
  static const bool ok = cpu_has_amx_bf16() && syscall(SYS_arch_prctl, 0x1023, 18) == 0;
  return ok;
}

#else

bool AmxMatmul::available() { return false; }

#endif

AmxMatmul::AmxMatmul(int64_t in, int64_t out, const float* scale, const float* bias)
    : in_(in), out_(out), k_blocks_((in + kTileK - 1) / kTileK), n_blocks_((out + kTileRows - 1) / kTileRows) {
  if (!available()) throw Error("AMX matmul: this CPU or build has no AMX-BF16");
  scale_.assign(static_cast<size_t>(n_blocks_ * kTileRows), 1.0f);
  bias_.assign(scale_.size(), 0.0f);
  if (scale) std::copy(scale, scale + out, scale_.begin());
  std::copy(bias, bias + out, bias_.begin());
}

AmxMatmul::AmxMatmul(const int8_t* q, const float* scale, const float* bias, int64_t in, int64_t out)
    : AmxMatmul(in, out, scale, bias) {
  tiles8_ = to_tiles(q);
}

AmxMatmul::AmxMatmul(const uint16_t* weight, const float* bias, int64_t in, int64_t out)
    : AmxMatmul(in, out, nullptr, bias) {
  tiles16_ = to_tiles(weight);
}

template <class T>
std::vector<T> AmxMatmul::to_tiles(const T* w) const {
  std::vector<T> tiles(static_cast<size_t>(n_blocks_ * k_blocks_ * kTileSize), T(0));
  for (int64_t o = 0; o < out_; ++o)
    for (int64_t i = 0; i < in_; ++i) {
      const int64_t tile = (o / kTileRows) * k_blocks_ + i / kTileK, k = i % kTileK;
      tiles[static_cast<size_t>(tile * kTileSize + (k / 2) * 2 * kTileRows + (o % kTileRows) * 2 + k % 2)] = w[o * in_ + i];
    }
  return tiles;
}

void AmxMatmul::run(const float* x, int64_t rows, float* y, Epilogue epilogue) const {
#if DALLE_HAVE_AMX
  const int64_t k_pad = k_blocks_ * kTileK, m_pad = (rows + kTileRows - 1) / kTileRows * kTileRows;
  // Growing fills zeros, and the inputs' padding (in_ .. k_pad) is never written, so it stays
  // zero. Rows from `rows` to m_pad keep what an earlier call left: their products land only in
  // their own output rows, which are not stored.
  if (static_cast<int64_t>(x16_.size()) < m_pad * k_pad) x16_.resize(static_cast<size_t>(m_pad * k_pad));
  at::parallel_for(0, rows, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) vec_to_bf16(x + r * in_, x16_.data() + r * k_pad, in_);
  });
  const StripJob job{tiles8_.empty() ? nullptr : tiles8_.data(),
                     tiles16_.empty() ? nullptr : tiles16_.data(),
                     k_blocks_,
                     n_blocks_,
                     x16_.data(),
                     m_pad,
                     rows,
                     out_,
                     scale_.data(),
                     bias_.data(),
                     y,
                     epilogue};
  at::parallel_for(0, (n_blocks_ + 1) / 2, 1, [&](int64_t s0, int64_t s1) { run_strips(job, s0, s1); });
#else
  (void)x, (void)rows, (void)y, (void)epilogue;
#endif
}

}  // namespace dalle

#include "dalle/prior/vector_math.h"

#include <algorithm>
#include <cmath>

#include "dalle/util/simd.h"

namespace dalle {

using namespace simd;

namespace {

// exp by range reduction: x = n ln2 + f with |f| <= ln2 / 2, exp(f) by its Taylor series to f^7
// (relative error under 2e-7 there), 2^n by building the float's exponent bits.
DALLE_SIMD_INLINE vf exp_lanes(vf x) {
  x = x < -87.0f ? splat(-87.0f) : x;
  x = x > 88.0f ? splat(88.0f) : x;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const vf n = (x * 1.44269504f + magic) - magic;
  const vf f = x - n * 0.693145752f - n * 1.42860677e-6f;
  vf p = splat(1.0f / 5040);
  p = p * f + 1.0f / 720;
  p = p * f + 1.0f / 120;
  p = p * f + 1.0f / 24;
  p = p * f + 1.0f / 6;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  const vi32 bits = (__builtin_convertvector(n, vi32) + 127) << 23;
  vf scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7).
DALLE_SIMD_INLINE vf erf_lanes(vf x) {
  const vf a = x < 0.0f ? -x : x;
  const vf t = 1.0f / (1.0f + 0.3275911f * a);
  vf p = splat(1.061405429f);
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const vf y = 1.0f - p * t * exp_lanes(-a * a);
  return x < 0.0f ? -y : y;
}

struct Gelu {
  DALLE_SIMD_INLINE vf operator()(vf x) const { return 0.5f * x * (1.0f + erf_lanes(x * 0.70710678f)); }
};
struct Scale {
  float factor;
  DALLE_SIMD_INLINE vf operator()(vf x) const { return x * factor; }
};
// exp(x - max), exactly 0 where that is below fp32's smallest normal (-inf included).
struct ExpShifted {
  float max;
  DALLE_SIMD_INLINE vf operator()(vf x) const {
    const vf y = x - max;
    return y < -87.0f ? vf{} : exp_lanes(y);
  }
};

// Applies f to n floats in place, the tail through a zero-padded register.
template <class F>
DALLE_SIMD_INLINE void map_in_place(float* x, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) store(x + i, f(load(x + i)));
  if (i < n) {
    float tail[kLanes] = {};
    std::memcpy(tail, x + i, sizeof(float) * (n - i));
    store(tail, f(load(tail)));
    std::memcpy(x + i, tail, sizeof(float) * (n - i));
  }
}

// Over lanes, then across them: a scalar max or sum over a row is one long dependency chain.
DALLE_SIMD_INLINE float row_max(const float* x, int64_t n) {
  vf mv = splat(-INFINITY);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const vf v = load(x + i);
    mv = v > mv ? v : mv;
  }
  float max = -INFINITY;
  for (int u = 0; u < kLanes; ++u) max = mv[u] > max ? mv[u] : max;
  for (; i < n; ++i) max = x[i] > max ? x[i] : max;
  return max;
}
DALLE_SIMD_INLINE float row_sum(const float* x, int64_t n) {
  vf acc = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) acc += load(x + i);
  float sum = lane_sum(acc);
  for (; i < n; ++i) sum += x[i];
  return sum;
}
DALLE_SIMD_INLINE void softmax_in_place(float* s, int64_t n) {
  map_in_place(s, n, ExpShifted{row_max(s, n)});
  map_in_place(s, n, Scale{1.0f / row_sum(s, n)});
}

}  // namespace

DALLE_SIMD_CLONES void vec_layer_norm(const float* x, const float* weight, const float* bias, float eps, int64_t n,
                                      float* y) {
  vf acc = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) acc += load(x + i);
  float sum = lane_sum(acc);
  for (; i < n; ++i) sum += x[i];
  const float mean = sum / n;
  vf acc2 = {};
  i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const vf c = load(x + i) - mean;
    acc2 += c * c;
  }
  float var = lane_sum(acc2);
  for (; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float inv = 1.0f / std::sqrt(var / n + eps);
  i = 0;
  for (; i + kLanes <= n; i += kLanes) store(y + i, (load(x + i) - mean) * inv * load(weight + i) + load(bias + i));
  for (; i < n; ++i) y[i] = (x[i] - mean) * inv * weight[i] + bias[i];
}

DALLE_SIMD_CLONES void vec_gelu(float* x, int64_t n) { map_in_place(x, n, Gelu{}); }

DALLE_SIMD_CLONES void vec_exp_shifted(float* x, int64_t n, float shift) { map_in_place(x, n, ExpShifted{shift}); }

DALLE_SIMD_CLONES float vec_scale_max(const float* x, float factor, float* y, int64_t n) {
  vf mv = splat(-INFINITY);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const vf v = load(x + i) * factor;
    store(y + i, v);
    mv = v > mv ? v : mv;
  }
  float max = -INFINITY;
  for (int u = 0; u < kLanes; ++u) max = mv[u] > max ? mv[u] : max;
  for (; i < n; ++i) {
    y[i] = x[i] * factor;
    max = y[i] > max ? y[i] : max;
  }
  return max;
}

DALLE_SIMD_CLONES float vec_sum(const float* x, int64_t n) { return row_sum(x, n); }

namespace {

DALLE_SIMD_INLINE vf load_any(const float* p) { return load(p); }
DALLE_SIMD_INLINE vf load_any(const uint16_t* p) { return load_bf16(p); }
DALLE_SIMD_INLINE float scalar(float x) { return x; }
DALLE_SIMD_INLINE float scalar(uint16_t x) { return bf16_to_float(x); }

template <class T>
DALLE_SIMD_INLINE float dot(const float* a, const T* b, int64_t n) {
  vf acc = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) acc += load(a + i) * load_any(b + i);
  float s = lane_sum(acc);
  for (; i < n; ++i) s += a[i] * scalar(b[i]);
  return s;
}

template <class T>
DALLE_SIMD_INLINE void axpy(float p, const T* x, float* y, int64_t n) {
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) store(y + c, load(y + c) + p * load_any(x + c));
  for (; c < n; ++c) y[c] += p * scalar(x[c]);
}

// Key-major: each text key's row is read once for every query and head of the block (it stays
// in L1 while they use it), each image key's row once for every head of its query.
template <class T>
DALLE_SIMD_INLINE void attend(const QueryBlock<T>& a) {
  const int64_t n = a.text + a.listed, hd = a.hd, heads = a.heads;
  auto scores = [&](int64_t r, int64_t h) { return a.scores + (r * heads + h) * n; };
  auto query = [&](int64_t r) { return a.q + r * a.q_stride; };
  auto out = [&](int64_t r) { return a.out + r * a.out_stride; };
  for (int64_t j = 0; j < a.text; ++j) {
    const T* kr = a.text_k + j * a.stride;
    for (int64_t r = 0; r < a.queries; ++r)
      for (int64_t h = 0; h < heads; ++h) scores(r, h)[j] = dot(query(r) + h * hd, kr + h * hd, hd) * a.scale;
  }
  for (int64_t r = 0; r < a.queries; ++r)
    for (int64_t i = 0; i < a.listed; ++i) {
      const T* kr = a.k + r * a.kv_stride + int64_t(a.list[i]) * a.stride;
      for (int64_t h = 0; h < heads; ++h) scores(r, h)[a.text + i] = dot(query(r) + h * hd, kr + h * hd, hd) * a.scale;
    }
  for (int64_t r = 0; r < a.queries; ++r)
    for (int64_t h = 0; h < heads; ++h) {
      softmax_in_place(scores(r, h), n);
      std::memset(out(r) + h * hd, 0, sizeof(float) * static_cast<size_t>(hd));
    }
  for (int64_t j = 0; j < a.text; ++j) {
    const T* vr = a.text_v + j * a.stride;
    for (int64_t r = 0; r < a.queries; ++r)
      for (int64_t h = 0; h < heads; ++h) axpy(scores(r, h)[j], vr + h * hd, out(r) + h * hd, hd);
  }
  for (int64_t r = 0; r < a.queries; ++r)
    for (int64_t i = 0; i < a.listed; ++i) {
      const T* vr = a.v + r * a.kv_stride + int64_t(a.list[i]) * a.stride;
      for (int64_t h = 0; h < heads; ++h) axpy(scores(r, h)[a.text + i], vr + h * hd, out(r) + h * hd, hd);
    }
}

// Register-blocked: head size 16 * NV, Q queries. Per head, the Q x 64 scores of a run of 64
// text keys accumulate in Q x 4 registers over the head's channels (each transposed key row
// loaded once for all queries), and each query's output (NV registers) over the text values
// (each loaded once for all queries). A query's own image keys and values are read row by row,
// every head of a row at once: the rows are scattered over the cache, and a whole row is one
// sequential read where a head's slice of each is a gather.
template <int NV, int Q, class T>
DALLE_SIMD_INLINE void attend_blocked(const QueryBlock<T>& a) {
  constexpr int64_t hd = NV * kLanes;
  const int64_t n = a.text + a.listed, heads = a.heads;
  auto scores = [&](int64_t r, int64_t h) { return a.scores + (r * heads + h) * n; };
  for (int64_t h = 0; h < heads; ++h) {
    const float* kt = a.text_kt + h * hd * a.text_kt_stride;
    for (int64_t j0 = 0; j0 < a.text; j0 += 4 * kLanes) {
      vf acc[Q][4] = {};
      for (int64_t c = 0; c < hd; ++c) {
        const float* row = kt + c * a.text_kt_stride + j0;
        const vf k0 = load(row), k1 = load(row + kLanes), k2 = load(row + 2 * kLanes), k3 = load(row + 3 * kLanes);
        for (int r = 0; r < Q; ++r) {
          const vf b = splat(a.q[r * a.q_stride + h * hd + c]);
          acc[r][0] += b * k0;
          acc[r][1] += b * k1;
          acc[r][2] += b * k2;
          acc[r][3] += b * k3;
        }
      }
      const int64_t keys = std::min<int64_t>(4 * kLanes, a.text - j0);
      for (int r = 0; r < Q; ++r) {
        float* s = scores(r, h) + j0;
        if (keys == 4 * kLanes) {
          for (int u = 0; u < 4; ++u) store(s + u * kLanes, acc[r][u] * a.scale);
          continue;
        }
        float tmp[4 * kLanes];
        for (int u = 0; u < 4; ++u) store(tmp + u * kLanes, acc[r][u] * a.scale);
        for (int64_t j = 0; j < keys; ++j) s[j] = tmp[j];
      }
    }
  }
  for (int r = 0; r < Q; ++r) {
    const float* q = a.q + r * a.q_stride;
    for (int64_t i = 0; i < a.listed; ++i) {
      const T* kr = a.k + r * a.kv_stride + int64_t(a.list[i]) * a.stride;
      for (int64_t h = 0; h < heads; ++h) {
        vf acc = load(q + h * hd) * load_any(kr + h * hd);
        for (int u = 1; u < NV; ++u) acc += load(q + h * hd + u * kLanes) * load_any(kr + h * hd + u * kLanes);
        scores(r, h)[a.text + i] = lane_sum(acc) * a.scale;
      }
    }
    for (int64_t h = 0; h < heads; ++h) softmax_in_place(scores(r, h), n);
  }
  for (int64_t h = 0; h < heads; ++h) {
    vf out[Q][NV] = {};
    const T* tv = a.text_v + h * hd;
    for (int64_t j = 0; j < a.text; ++j) {
      vf v[NV];
      for (int u = 0; u < NV; ++u) v[u] = load_any(tv + j * a.stride + u * kLanes);
      for (int r = 0; r < Q; ++r) {
        const vf p = splat(scores(r, h)[j]);
        for (int u = 0; u < NV; ++u) out[r][u] += p * v[u];
      }
    }
    for (int r = 0; r < Q; ++r)
      for (int u = 0; u < NV; ++u) store(a.out + r * a.out_stride + h * hd + u * kLanes, out[r][u]);
  }
  for (int r = 0; r < Q; ++r) {
    float* o = a.out + r * a.out_stride;
    for (int64_t i = 0; i < a.listed; ++i) {
      const T* vr = a.v + r * a.kv_stride + int64_t(a.list[i]) * a.stride;
      for (int64_t h = 0; h < heads; ++h) {
        const vf p = splat(scores(r, h)[a.text + i]);
        for (int u = 0; u < NV; ++u) {
          float* oh = o + h * hd + u * kLanes;
          store(oh, load(oh) + p * load_any(vr + h * hd + u * kLanes));
        }
      }
    }
  }
}

template <int NV, class T>
DALLE_SIMD_INLINE void attend_queries(const QueryBlock<T>& a) {
  switch (a.queries) {
    case 1: return attend_blocked<NV, 1>(a);
    case 2: return attend_blocked<NV, 2>(a);
    case 3: return attend_blocked<NV, 3>(a);
    default: return attend_blocked<NV, 4>(a);
  }
}

template <class T>
DALLE_SIMD_INLINE void attend_any(const QueryBlock<T>& a) {
  if (!a.text_kt || a.queries > 4 || a.hd % kLanes != 0) return attend(a);
  switch (a.hd / kLanes) {
    case 1: return attend_queries<1>(a);
    case 2: return attend_queries<2>(a);
    case 3: return attend_queries<3>(a);
    case 4: return attend_queries<4>(a);
    default: return attend(a);
  }
}

}  // namespace

DALLE_SIMD_CLONES void vec_attend(const QueryBlock<float>& block) { attend_any(block); }
DALLE_SIMD_CLONES void vec_attend(const QueryBlock<uint16_t>& block) { attend_any(block); }

DALLE_SIMD_CLONES void vec_to_bf16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    vu32 bits;
    std::memcpy(&bits, x + i, sizeof bits);
    const vu16 h = __builtin_convertvector((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16, vu16);
    std::memcpy(y + i, &h, sizeof h);
  }
  for (; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &x[i], sizeof bits);
    y[i] = static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);  // round to nearest even
  }
}

}  // namespace dalle

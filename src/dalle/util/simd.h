// Portable SIMD for the CPU inference kernels: GCC vector extensions of 16 floats (one AVX-512
// register, two AVX2 ones) and function multiversioning, so one source is compiled per
// instruction set and the loader picks the best clone for the CPU it runs on.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DALLE_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DALLE_SIMD_CLONES
#endif
#define DALLE_SIMD_INLINE inline __attribute__((always_inline))
// The helpers below pass 64-byte vectors by value; they are always inlined, so no call ABI applies.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace dalle::simd {

constexpr int kLanes = 16;
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi32 __attribute__((vector_size(64)));
typedef uint32_t vu32 __attribute__((vector_size(64)));
typedef uint16_t vu16 __attribute__((vector_size(32)));
typedef int8_t vi8 __attribute__((vector_size(16)));

DALLE_SIMD_INLINE vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
DALLE_SIMD_INLINE void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
DALLE_SIMD_INLINE vf splat(float a) { return vf{} + a; }
DALLE_SIMD_INLINE float lane_sum(vf v) {
  float s = 0;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}

}  // namespace dalle::simd

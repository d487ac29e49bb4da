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
// 16 bfloat16 bit patterns -> fp32: a 16-bit shift.
DALLE_SIMD_INLINE vf load_bf16(const uint16_t* p) {
  vu16 h;
  std::memcpy(&h, p, sizeof h);
  const vu32 bits = __builtin_convertvector(h, vu32) << 16;
  vf v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
// One bfloat16 bit pattern -> fp32.
DALLE_SIMD_INLINE float bf16_to_float(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
DALLE_SIMD_INLINE vf splat(float a) { return vf{} + a; }
// A tree of halvings: 4 vector adds instead of 15 dependent scalar ones.
DALLE_SIMD_INLINE float lane_sum(vf v) {
  typedef float v8 __attribute__((vector_size(32)));
  typedef float v4 __attribute__((vector_size(16)));
  const v8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
               __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const v4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}

}  // namespace dalle::simd

// Which of the prior's gradients PowerSGD compresses (SPEC §3, "Distributed"): the weight
// matrices of the resblocks. Embeddings, unembeddings (the heads), position tables, gains and
// biases are all-reduced uncompressed. Shared by the trainer and the communication plan of
// `dalle info`, so the planned and the measured bytes count the same tensors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dalle {

inline bool powersgd_compresses(const std::string& name, const std::vector<int64_t>& shape) {
  return shape.size() == 2 && name.rfind("blocks.", 0) == 0;
}

// Bytes one rank sends in a ring all-reduce of `payload` bytes over `world` ranks
// (reduce-scatter then all-gather: 2(N-1)/N of the payload), the figure `comm_bytes` reports.
inline double ring_allreduce_bytes_sent(double payload, int64_t world) {
  return world <= 1 ? 0.0 : 2.0 * static_cast<double>(world - 1) / static_cast<double>(world) * payload;
}

}  // namespace dalle

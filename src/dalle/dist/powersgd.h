// PowerSGD gradient compression as the paper uses it (SPEC §3, "Distributed"): for each weight
// matrix an error-feedback buffer E ← G + E, a fixed random Q drawn once from a seed all ranks
// share (never re-sampled and never warm-started from the last step's Q), P = E·Q all-reduced,
// P orthonormalised by Householder QR after adding 1e-6·I, Q' = Eᵀ·P all-reduced, the gradient
// becomes P·Q'ᵀ and the buffer keeps E − P·Q'ᵀ, what was not sent. P and Q travel in 16 bits
// (fp16: Gloo sums no bf16). A step whose P or Q is not finite changes no buffer and reports it,
// and the caller skips the update on every rank (all ranks see the same reduced P and Q).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dalle/io/safetensors.h"

namespace dalle {

class DistGroup;

struct PowerSgdOptions {
  int64_t rank = 4;                     // columns of P and Q (capped at each matrix's smaller side)
  uint64_t seed = 0;                    // the shared seed of the fixed Q matrices
  torch::ScalarType wire = torch::kHalf;  // what P and Q travel in (kFloat for exact tests)
};

class PowerSgd {
 public:
  // `matrices`: named 2-D parameters whose gradients are compressed. `group` may be null (one
  // process: the same arithmetic, nothing sent), which is how the unit tests see one rank.
  PowerSgd(DistGroup* group, std::vector<std::pair<std::string, torch::Tensor>> matrices, PowerSgdOptions options);

  // Replaces each matrix's .grad by the rank-r average over ranks. Returns false when P or Q was
  // not finite: then the error buffers are unchanged and the gradients are set to NaN, so the
  // update is skipped the way any non-finite gradient skips it.
  bool reduce();

  // Bytes of the compressed payload (P and Q) and of the same gradients uncompressed in fp32.
  int64_t compressed_payload_bytes() const;
  int64_t uncompressed_payload_bytes() const;

  void state_into(SafeTensors& st) const;  // "powersgd.error.<name>"
  void load_state(const SafeTensors& st, const std::string& source);

  // One matrix's error buffer (tests).
  const torch::Tensor& error(size_t i) const { return slots_[i].error; }

 private:
  struct Slot {
    std::string name;
    torch::Tensor param, error, q;  // q: [m, r], fixed
  };
  // Sums `parts` over ranks through one flat buffer in the wire type, then divides by the world.
  void average(std::vector<torch::Tensor>& parts);

  DistGroup* group_;
  PowerSgdOptions options_;
  std::vector<Slot> slots_;
};

// Q of the reduced QR factorisation of `p` + 1e-6·I (LAPACK geqrf: Householder reflections).
torch::Tensor powersgd_orthonormalize(const torch::Tensor& p);

}  // namespace dalle

// What data-parallel training sends per update, from the config alone (`dalle info`): the
// gradients' bytes through a ring all-reduce without and with PowerSGD, and the time they take
// at a link bandwidth. It counts the tensors compressible.h names, as the trainer does.
#pragma once
#include <cstdint>
#include <vector>

#include "dalle/bundle/config.h"
#include "dalle/prior/cost.h"

namespace dalle {

struct CommPlan {
  int64_t world_size = 1;
  int64_t powersgd_rank = 0;         // 0: PowerSGD off, everything all-reduced in fp32
  int64_t compressed_matrices = 0;   // the resblocks' weight matrices
  int64_t compressed_params = 0;
  int64_t uncompressed_params = 0;
  int64_t rank_capped_matrices = 0;  // those with min(n, m) < powersgd_rank: rank min(n, m)
  int64_t min_effective_rank = 0;    // the smallest rank a compressed matrix is sent at
  // What is all-reduced, before the ring's 2(N-1)/N.
  int64_t payload_bytes_uncompressed = 0;  // every gradient in fp32
  int64_t payload_bytes_powersgd = 0;      // P [n, r] and Q [m, r] in 16 bits, the rest fp32
  // Sent by one rank per update.
  double comm_bytes_per_step_uncompressed = 0;
  double comm_bytes_per_step_powersgd = 0;
  // 1 - powersgd / uncompressed; the ring factor cancels, so it is defined at world size 1 too.
  double powersgd_compression = 0;
  // Bytes sent over a link of this bandwidth: no latency, no overlap with compute.
  double bandwidth_gbps = 0;
  double comm_seconds_per_step_uncompressed = 0;
  double comm_seconds_per_step_powersgd = 0;
};

CommPlan comm_plan(const std::vector<ParamShape>& params, int64_t world, int64_t powersgd_rank,
                   double bandwidth_gbps);
// The prior's parameters (the stage that trains at scale).
CommPlan comm_plan(const ModelConfig& config, int64_t world, int64_t powersgd_rank, double bandwidth_gbps);

}  // namespace dalle

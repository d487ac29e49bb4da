#include "dalle/dist/comm_plan.h"

#include <algorithm>
#include <limits>

#include "dalle/dist/compressible.h"
#include "dalle/util/error.h"

namespace dalle {

CommPlan comm_plan(const std::vector<ParamShape>& params, int64_t world, int64_t powersgd_rank,
                   double bandwidth_gbps) {
  if (world < 1) throw Error("world size must be at least 1, got " + std::to_string(world));
  if (powersgd_rank < 0) throw Error("PowerSGD rank must be 0 (off) or positive, got " + std::to_string(powersgd_rank));
  if (!(bandwidth_gbps > 0)) throw Error("bandwidth must be positive, got " + std::to_string(bandwidth_gbps) + " Gbit/s");
  constexpr int64_t kFp32 = 4, kHalf = 2;
  CommPlan plan;
  plan.world_size = world;
  plan.powersgd_rank = powersgd_rank;
  plan.bandwidth_gbps = bandwidth_gbps;
  int64_t min_rank = std::numeric_limits<int64_t>::max();
  for (const ParamShape& p : params) {
    int64_t numel = 1;
    for (int64_t s : p.shape) numel *= s;
    plan.payload_bytes_uncompressed += kFp32 * numel;
    if (powersgd_rank == 0 || !powersgd_compresses(p.name, p.shape)) {
      plan.uncompressed_params += numel;
      plan.payload_bytes_powersgd += kFp32 * numel;
      continue;
    }
    // A rank above min(n, m) adds nothing: the matrix is exact at min(n, m).
    const int64_t n = p.shape[0], m = p.shape[1];
    const int64_t r = std::min({powersgd_rank, n, m});
    plan.compressed_matrices += 1;
    plan.compressed_params += numel;
    plan.rank_capped_matrices += r < powersgd_rank;
    min_rank = std::min(min_rank, r);
    plan.payload_bytes_powersgd += kHalf * (n * r + m * r);  // P, then Q: two all-reduces
  }
  plan.min_effective_rank = plan.compressed_matrices > 0 ? min_rank : 0;
  plan.comm_bytes_per_step_uncompressed = ring_allreduce_bytes_sent(plan.payload_bytes_uncompressed, world);
  plan.comm_bytes_per_step_powersgd = ring_allreduce_bytes_sent(plan.payload_bytes_powersgd, world);
  if (plan.payload_bytes_uncompressed > 0)
    plan.powersgd_compression = 1.0 - static_cast<double>(plan.payload_bytes_powersgd) /
                                          static_cast<double>(plan.payload_bytes_uncompressed);
  const double bytes_per_second = bandwidth_gbps * 1e9 / 8.0;
  plan.comm_seconds_per_step_uncompressed = plan.comm_bytes_per_step_uncompressed / bytes_per_second;
  plan.comm_seconds_per_step_powersgd = plan.comm_bytes_per_step_powersgd / bytes_per_second;
  return plan;
}

CommPlan comm_plan(const ModelConfig& config, int64_t world, int64_t powersgd_rank, double bandwidth_gbps) {
  const int grid = config.vae.grid();
  return comm_plan(prior_param_shapes(config.prior, grid, grid, config.vae.vocab), world, powersgd_rank,
                   bandwidth_gbps);
}

}  // namespace dalle

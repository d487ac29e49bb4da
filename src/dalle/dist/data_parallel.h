// What a trainer needs to run as one of N data-parallel replicas (SPEC §3, "Distributed"):
// the same initial weights on every rank (broadcast from rank 0), gradients averaged in buckets
// during backward (dist/grad_buckets.h) or, for the prior's resblock matrices, compressed by
// PowerSGD (dist/powersgd.h), one skip decision for all ranks, optionally AdamW moments and EMA
// sharded across ranks (ZeRO stage 1), and the bytes each rank sent per step.
#pragma once
#include <torch/nn/module.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dalle/data/loader.h"
#include "dalle/dist/grad_buckets.h"
#include "dalle/dist/powersgd.h"
#include "dalle/dist/process_group.h"
#include "dalle/io/safetensors.h"
#include "dalle/text/tokenizer.h"

namespace dalle {

struct DataParallelOptions {
  int64_t powersgd_rank = 0;   // 0: every gradient all-reduced uncompressed
  uint64_t seed = 0;           // PowerSGD's shared Q seed
  bool shard_optimizer = false;  // ZeRO-1: each rank keeps AdamW moments and EMA for 1/N of the weights
};

class DataParallel {
 public:
  // `named`: the model's parameters in registration order. Broadcasts them from rank 0.
  DataParallel(std::shared_ptr<DistGroup> group, std::vector<std::pair<std::string, torch::Tensor>> named,
               DataParallelOptions options);

  int rank() const { return group_->rank(); }
  int world() const { return group_->world(); }
  bool is_main() const { return group_->is_main(); }

  // Zeroes every parameter's gradient at the start of an update (with a sharded optimizer,
  // AdamW::zero_grad reaches only this rank's share, and the buckets accumulate in place).
  void zero_grad();
  // Around each micro-batch's backward (`last`: the update's last one).
  void before_backward(bool last) { buckets_->prepare(last); }
  void after_backward();

  // After the 16-bit gradients are unscaled and before the update: PowerSGD, then each block's
  // overflow flag becomes the OR over ranks, so every rank skips (and backs off) alike.
  void sync_after_unscale(std::vector<bool>& overflowed);

  // The mean over ranks of each value (losses: a NaN on any rank makes the mean NaN).
  std::vector<double> mean(const std::vector<double>& values);

  // Whether this rank keeps optimizer state for parameter `name` (always, unsharded).
  bool owns(const std::string& name) const;
  // After an update with a sharded optimizer: every parameter from the rank that updated it.
  void gather_updated_parameters();
  // Sharded state of the other ranks, collected on rank 0 for a checkpoint or a sample grid;
  // every rank calls it. `own`: this rank's tensors, named prefix + parameter name for each
  // prefix ("adam.m.", "ema.", ...) and each parameter it owns. Empty when unsharded.
  SafeTensors gather_to_main(const SafeTensors& own, const std::vector<std::string>& prefixes);
  // Every rank's `mine` (the same length on all), in rank order.
  std::vector<std::vector<int64_t>> all_gather(const std::vector<int64_t>& mine);
  // Throws when the replicas' weights differ (a bug or a broken network, never expected).
  void check_replicas_agree();

  // PowerSGD error buffers of every rank (collective; the result is rank 0's to write) and the
  // restore of this rank's from a checkpoint.
  SafeTensors powersgd_state();
  void load_powersgd_state(const SafeTensors& checkpoint, const std::string& source);

  double take_comm_bytes() { return group_->take_bytes_sent(); }
  // Seconds this rank spent blocked on communication (and PowerSGD's arithmetic) since the last
  // call: the part of a step that overlapping with backward did not hide.
  double take_comm_seconds();
  bool powersgd() const { return static_cast<bool>(powersgd_); }
  // 1 − compressed bytes / uncompressed bytes over all gradients (PowerSGD on), else 0.
  double powersgd_compression() const;

 private:
  std::shared_ptr<DistGroup> group_;
  DataParallelOptions options_;
  std::vector<std::pair<std::string, torch::Tensor>> named_;
  std::unique_ptr<GradBuckets> buckets_;
  std::unique_ptr<PowerSgd> powersgd_;
  std::vector<int> owner_;  // per parameter, the rank keeping its optimizer state
  int64_t uncompressed_bytes_ = 0;  // gradients all-reduced in fp32 (PowerSGD off or not compressible)
  double comm_seconds_ = 0;
};

// The run's tokenizer: rank 0 makes it with `make` (which learns or checks it and writes it to
// `run_file`); the other ranks wait for that and read the file. `group` null: just `make`.
Tokenizer tokenizer_from_main(DistGroup* group, const std::string& run_file, const std::function<Tokenizer()>& make);

// Where this rank's data stream resumes, from a checkpoint's training state: its own entry of
// "data_positions" (one per rank), or when the run was saved by another number of ranks, the
// start of the saved epoch (the ranks' shares of it differ), said on stderr by `command` rank 0.
LoaderPosition resume_position(const nlohmann::json& state, const DistGroup* group, const std::string& command);

}  // namespace dalle

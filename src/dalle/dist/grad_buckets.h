// Data-parallel gradient averaging that overlaps with the backward pass, as PyTorch's DDP does:
// gradients live in flat buckets (about 25 MB; a small first one, so communication starts
// early), each parameter's .grad is a view into its bucket, and a hook on each parameter's
// gradient accumulator starts an asynchronous all-reduce as soon as every gradient of a bucket is
// in. Buckets are launched in one fixed order on every rank (a collective pairs up by order), so
// a bucket that fills early waits for the ones before it.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "dalle/dist/process_group.h"

namespace torch::autograd {
struct Node;
}  // namespace torch::autograd

namespace dalle {

class GradBuckets {
 public:
  static constexpr int64_t kBucketBytes = 25 << 20, kFirstBucketBytes = 1 << 20;

  // `params`: the leaf tensors whose gradients are averaged (in the order the model registers
  // them; backward produces them roughly in reverse, so buckets are filled from the end).
  GradBuckets(DistGroup& group, std::vector<torch::Tensor> params, int64_t bucket_bytes = kBucketBytes,
              int64_t first_bucket_bytes = kFirstBucketBytes);
  ~GradBuckets();
  GradBuckets(const GradBuckets&) = delete;
  GradBuckets& operator=(const GradBuckets&) = delete;

  // Before the backward pass of each micro-batch: `sync` on the last one of an update, whose
  // backward launches the all-reduces (earlier ones only accumulate).
  void prepare(bool sync);
  // After that backward: launches what is left (parameters that got no gradient), waits for every
  // bucket and divides by the world size, so each .grad holds the average over ranks.
  void finish();

  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Buckets whose all-reduce started during the last backward pass (the overlap, for tests).
  int64_t launched_in_backward() const { return launched_in_backward_; }

 private:
  struct Bucket {
    torch::Tensor flat;
    std::vector<size_t> members;
    int64_t pending = 0;
    DistGroup::Pending reduce;
  };
  class ReadyHook;
  void ready(size_t param);
  void launch_ready_in_order();

  DistGroup& group_;
  std::vector<torch::Tensor> params_;
  std::vector<size_t> bucket_of_;
  std::vector<Bucket> buckets_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  // kept alive: hooks live on them
  std::vector<uintptr_t> hook_keys_;                                  // removed on destruction
  std::vector<bool> seen_;
  size_t next_launch_ = 0;
  bool sync_ = false;
  int64_t launched_in_backward_ = 0;
};

}  // namespace dalle

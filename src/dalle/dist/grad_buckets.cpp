#include "dalle/dist/grad_buckets.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include "dalle/util/error.h"

namespace dalle {

// Runs after a parameter's gradient accumulator has added this backward's gradient to .grad.
class GradBuckets::ReadyHook : public torch::autograd::FunctionPostHook {
 public:
  ReadyHook(GradBuckets* owner, size_t param) : owner_(owner), param_(param) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    owner_->ready(param_);
    return outputs;
  }

 private:
  GradBuckets* owner_;
  size_t param_;
};

GradBuckets::GradBuckets(DistGroup& group, std::vector<torch::Tensor> params, int64_t bucket_bytes,
                         int64_t first_bucket_bytes)
    : group_(group), params_(std::move(params)), bucket_of_(params_.size()), seen_(params_.size(), false) {
  torch::NoGradGuard no_grad;
  // Fill buckets from the last parameter back: the order gradients arrive in.
  int64_t limit = first_bucket_bytes, bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const torch::Tensor& p = params_[k];
    if (p.scalar_type() != torch::kFloat32) throw Error("gradient buckets hold fp32 parameters");
    if (buckets_.empty() || (bytes > 0 && bytes + static_cast<int64_t>(p.nbytes()) > limit)) {
      if (!buckets_.empty()) limit = bucket_bytes;
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().members.push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += static_cast<int64_t>(p.nbytes());
  }
  for (Bucket& b : buckets_) {
    int64_t numel = 0;
    for (size_t k : b.members) numel += params_[k].numel();
    b.flat = torch::zeros({numel}, params_[b.members.front()].options());
    int64_t offset = 0;
    for (size_t k : b.members) {
      torch::Tensor& p = params_[k];
      torch::Tensor view = b.flat.narrow(0, offset, p.numel()).view(p.sizes());
      if (p.grad().defined()) view.copy_(p.grad());
      // .grad is the bucket's memory: backward accumulates into it in place, the all-reduce
      // averages it in place, nothing is copied.
      p.mutable_grad() = view;
      offset += p.numel();
    }
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    std::shared_ptr<torch::autograd::Node> acc = torch::autograd::impl::grad_accumulator(params_[k]);
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<ReadyHook>(this, k)));
    accumulators_.push_back(std::move(acc));
  }
}

GradBuckets::~GradBuckets() {
  // The parameters outlive this object (evaluation, a second trainer): their hooks must not call
  // back into it.
  for (size_t k = 0; k < accumulators_.size(); ++k) accumulators_[k]->del_post_hook(hook_keys_[k]);
  // Pending all-reduces write into memory the parameters still reference: let them finish.
  for (Bucket& b : buckets_) {
    try {
      b.reduce.wait();
    } catch (...) {
    }
  }
}

void GradBuckets::prepare(bool sync) {
  sync_ = sync;
  launched_in_backward_ = 0;
  if (!sync) return;
  std::fill(seen_.begin(), seen_.end(), false);
  for (Bucket& b : buckets_) b.pending = static_cast<int64_t>(b.members.size());
  next_launch_ = 0;
}

void GradBuckets::ready(size_t param) {
  if (!sync_ || seen_[param]) return;
  seen_[param] = true;
  --buckets_[bucket_of_[param]].pending;
  const size_t before = next_launch_;
  launch_ready_in_order();
  launched_in_backward_ += static_cast<int64_t>(next_launch_ - before);
}

void GradBuckets::launch_ready_in_order() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    Bucket& b = buckets_[next_launch_++];
    b.reduce = group_.allreduce_sum_async(b.flat);
  }
}

void GradBuckets::finish() {
  if (!sync_) throw Error("GradBuckets::finish without prepare(true)");
  for (Bucket& b : buckets_) b.pending = 0;  // no gradient this time: its zeros still take part
  launch_ready_in_order();
  torch::NoGradGuard no_grad;
  for (Bucket& b : buckets_) {
    b.reduce.wait();
    b.flat.div_(group_.world());
  }
  sync_ = false;
}

}  // namespace dalle

#include "dalle/train/resblock_runner.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include "dalle/util/torch_api.h"

namespace dalle {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Identity forward; backward multiplies the gradient by the block's scale.
struct ScaleGrad : torch::autograd::Function<ScaleGrad> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, double scale) {
    ctx->saved_data["scale"] = scale;
    return x;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    return {grad[0] * ctx->saved_data["scale"].toDouble(), torch::Tensor()};
  }
};

// Identity forward; backward divides by the scale and zeroes Inf/NaN (the paper's filter).
struct UnscaleFilter : torch::autograd::Function<UnscaleFilter> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, double scale) {
    ctx->saved_data["scale"] = scale;
    return x;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    torch::Tensor g = grad[0].to(torch::kFloat32) / ctx->saved_data["scale"].toDouble();
    return {g.nan_to_num_(0.0, 0.0, 0.0), torch::Tensor()};
  }
};

struct BranchHolder : torch::CustomClassHolder {
  explicit BranchHolder(ResidualBranch fn) : fn(std::move(fn)) {}
  ResidualBranch fn;
};

// Runs `branch(x)` without keeping its activations; backward recomputes it with gradients
// enabled (and under the forward's autocast state) and accumulates its parameters' gradients.
struct Checkpoint : torch::autograd::Function<Checkpoint> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const ResidualBranch& branch) {
    ctx->saved_data["branch"] = c10::IValue::make_capsule(c10::make_intrusive<BranchHolder>(branch));
    const AutocastState autocast = autocast_state(x.device().type());
    ctx->saved_data["autocast"] = autocast.enabled;
    ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(autocast.dtype);
    ctx->save_for_backward({x});
    torch::NoGradGuard no_grad;
    return branch(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const torch::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    auto holder = c10::static_intrusive_pointer_cast<BranchHolder>(ctx->saved_data["branch"].toCapsule());
    torch::Tensor y;
    {
      torch::AutoGradMode grad_mode(true);
      AutocastGuard autocast(ctx->saved_data["autocast"].toBool(), x.device().type(),
                             static_cast<at::ScalarType>(ctx->saved_data["autocast_dtype"].toInt()));
      y = holder->fn(x);
    }
    // A nested backward: parameter gradients accumulate into .grad as without checkpointing.
    torch::autograd::backward({y}, {grad[0].to(y.scalar_type())});
    return {x.grad(), torch::Tensor()};
  }
};

torch::Tensor round_fp16(const torch::Tensor& x) {
  // Autograd casts the gradient back through both conversions, so it is rounded to fp16 too.
  return x.to(torch::kHalf).to(x.scalar_type());
}

}  // namespace

ResblockRunner resblock_runner_make(const ResblockRunnerOptions& options) {
  return [options](int64_t block, const torch::Tensor& x, const ResidualBranch& branch) {
    ResidualBranch inner = branch;
    if (options.fp16) inner = [branch](const torch::Tensor& h) { return round_fp16(branch(round_fp16(h))); };
    const double scale = options.scales ? options.scales->scale(block) : 1.0;
    const torch::Tensor in = options.scales ? UnscaleFilter::apply(x, scale) : x;
    const torch::Tensor out = options.checkpoint ? Checkpoint::apply(in, inner) : inner(in);
    return options.scales ? ScaleGrad::apply(out, scale) : out;
  };
}

ResblockRunner resblock_runner_for_training(Precision precision, const GradScales& scales, bool checkpoint,
                                           bool emulate_fp16) {
  const bool scaled = precision != Precision::fp32;
  if (!scaled && !checkpoint) return {};
  ResblockRunnerOptions options;
  options.scales = scaled ? &scales : nullptr;
  options.fp16 = emulate_fp16;
  options.checkpoint = checkpoint;
  return resblock_runner_make(options);
}

}  // namespace dalle

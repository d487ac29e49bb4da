#include "dalle/eval/inception.h"

#include "dalle/util/torch_api.h"

#include <set>

#include "dalle/io/safetensors.h"
#include "dalle/io/weights.h"
#include "dalle/util/error.h"

namespace dalle {

// The base of every named layer, so the network can run them in order.
class InceptionStage : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
};

namespace {

// A parameterless module used only to nest names ("conv", "bn").
struct Scope : torch::nn::Module {};

// torchvision's BasicConv2d: a convolution without bias ("conv.weight"), BatchNorm with eps 0.001
// ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"), ReLU. The BatchNorm always uses
// its running statistics: this network is only ever evaluated, never trained here.
class Conv : public InceptionStage {
 public:
  // kernel kh x kw, the same stride both ways, padding ph (rows) and pw (columns).
  Conv(int64_t in, int64_t out, int64_t kh, int64_t kw, int64_t stride = 1, int64_t ph = 0, int64_t pw = 0)
      : stride_(stride), ph_(ph), pw_(pw) {
    auto conv = register_module("conv", std::make_shared<Scope>());
    auto bn = register_module("bn", std::make_shared<Scope>());
    // Placeholders until weights are loaded: zeros give a finite (if useless) network.
    weight_ = conv->register_parameter("weight", torch::zeros({out, in, kh, kw}), /*requires_grad=*/false);
    bn_weight_ = bn->register_parameter("weight", torch::ones({out}), false);
    bn_bias_ = bn->register_parameter("bias", torch::zeros({out}), false);
    running_mean_ = bn->register_buffer("running_mean", torch::zeros({out}));
    running_var_ = bn->register_buffer("running_var", torch::ones({out}));
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    const torch::Tensor y = torch::conv2d(x, weight_, {}, {stride_, stride_}, {ph_, pw_});
    return torch::relu(torch::batch_norm(y, bn_weight_, bn_bias_, running_mean_, running_var_,
                                         /*training=*/false, /*momentum=*/0.0, /*eps=*/1e-3,
                                         /*cudnn_enabled=*/false));
  }

 private:
  int64_t stride_, ph_, pw_;
  torch::Tensor weight_, bn_weight_, bn_bias_, running_mean_, running_var_;
};

class MaxPool : public InceptionStage {
 public:
  torch::Tensor forward(const torch::Tensor& x) override { return torch::max_pool2d(x, {3, 3}, {2, 2}); }
};

// The 3x3 stride-1 pool before each block's branch_pool conv. torchvision averages with the
// padding counted as zeros (F.avg_pool2d's default); the FID network (pytorch-fid's port of the
// 2015 TensorFlow graph) leaves the padding out of the average, and Mixed_7c takes the maximum.
enum class PoolKind { average, average_without_padding, maximum };

torch::Tensor pool_3x3(const torch::Tensor& x, PoolKind kind) {
  switch (kind) {
    case PoolKind::average_without_padding:
      return torch::avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, /*ceil_mode=*/false, /*count_include_pad=*/false);
    case PoolKind::maximum: return torch::max_pool2d(x, {3, 3}, {1, 1}, {1, 1});
    case PoolKind::average: break;
  }
  return torch::avg_pool2d(x, {3, 3}, {1, 1}, {1, 1});
}

// Mixed blocks register their convs under torchvision's branch names.
class Mixed : public InceptionStage {
 protected:
  std::shared_ptr<Conv> add(const std::string& name, int64_t in, int64_t out, int64_t kh, int64_t kw,
                            int64_t stride = 1, int64_t ph = 0, int64_t pw = 0) {
    return register_module(name, std::make_shared<Conv>(in, out, kh, kw, stride, ph, pw));
  }
};

// InceptionA (Mixed_5b..5d), 35x35: 1x1, 5x5, double 3x3 and pool branches.
class MixedA : public Mixed {
 public:
  MixedA(int64_t in, int64_t pool_features, PoolKind pool) : pool_kind_(pool) {
    b1x1_ = add("branch1x1", in, 64, 1, 1);
    b5x5_1_ = add("branch5x5_1", in, 48, 1, 1);
    b5x5_2_ = add("branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
    b3dbl_1_ = add("branch3x3dbl_1", in, 64, 1, 1);
    b3dbl_2_ = add("branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    b3dbl_3_ = add("branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
    pool_ = add("branch_pool", in, pool_features, 1, 1);
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return torch::cat({b1x1_->forward(x), b5x5_2_->forward(b5x5_1_->forward(x)),
                       b3dbl_3_->forward(b3dbl_2_->forward(b3dbl_1_->forward(x))), pool_->forward(pool_3x3(x, pool_kind_))},
                      1);
  }

 private:
  PoolKind pool_kind_;
  std::shared_ptr<Conv> b1x1_, b5x5_1_, b5x5_2_, b3dbl_1_, b3dbl_2_, b3dbl_3_, pool_;
};

// InceptionB (Mixed_6a): 35x35 -> 17x17.
class MixedB : public Mixed {
 public:
  explicit MixedB(int64_t in) {
    b3x3_ = add("branch3x3", in, 384, 3, 3, 2);
    b3dbl_1_ = add("branch3x3dbl_1", in, 64, 1, 1);
    b3dbl_2_ = add("branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    b3dbl_3_ = add("branch3x3dbl_3", 96, 96, 3, 3, 2);
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return torch::cat({b3x3_->forward(x), b3dbl_3_->forward(b3dbl_2_->forward(b3dbl_1_->forward(x))),
                       torch::max_pool2d(x, {3, 3}, {2, 2})},
                      1);
  }

 private:
  std::shared_ptr<Conv> b3x3_, b3dbl_1_, b3dbl_2_, b3dbl_3_;
};

// InceptionC (Mixed_6b..6e), 17x17: 7x7 convolutions factored into 1x7 and 7x1.
class MixedC : public Mixed {
 public:
  MixedC(int64_t in, int64_t c7, PoolKind pool) : pool_kind_(pool) {
    b1x1_ = add("branch1x1", in, 192, 1, 1);
    b7_1_ = add("branch7x7_1", in, c7, 1, 1);
    b7_2_ = add("branch7x7_2", c7, c7, 1, 7, 1, 0, 3);
    b7_3_ = add("branch7x7_3", c7, 192, 7, 1, 1, 3, 0);
    b7dbl_1_ = add("branch7x7dbl_1", in, c7, 1, 1);
    b7dbl_2_ = add("branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0);
    b7dbl_3_ = add("branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3);
    b7dbl_4_ = add("branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0);
    b7dbl_5_ = add("branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3);
    pool_ = add("branch_pool", in, 192, 1, 1);
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    const torch::Tensor b7 = b7_3_->forward(b7_2_->forward(b7_1_->forward(x)));
    torch::Tensor b7dbl = b7dbl_1_->forward(x);
    for (auto* conv : {&b7dbl_2_, &b7dbl_3_, &b7dbl_4_, &b7dbl_5_}) b7dbl = (*conv)->forward(b7dbl);
    return torch::cat({b1x1_->forward(x), b7, b7dbl, pool_->forward(pool_3x3(x, pool_kind_))}, 1);
  }

 private:
  PoolKind pool_kind_;
  std::shared_ptr<Conv> b1x1_, b7_1_, b7_2_, b7_3_, b7dbl_1_, b7dbl_2_, b7dbl_3_, b7dbl_4_, b7dbl_5_, pool_;
};

// InceptionD (Mixed_7a): 17x17 -> 8x8.
class MixedD : public Mixed {
 public:
  explicit MixedD(int64_t in) {
    b3_1_ = add("branch3x3_1", in, 192, 1, 1);
    b3_2_ = add("branch3x3_2", 192, 320, 3, 3, 2);
    b7x3_1_ = add("branch7x7x3_1", in, 192, 1, 1);
    b7x3_2_ = add("branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
    b7x3_3_ = add("branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
    b7x3_4_ = add("branch7x7x3_4", 192, 192, 3, 3, 2);
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    const torch::Tensor b7x3 = b7x3_4_->forward(b7x3_3_->forward(b7x3_2_->forward(b7x3_1_->forward(x))));
    return torch::cat({b3_2_->forward(b3_1_->forward(x)), b7x3, torch::max_pool2d(x, {3, 3}, {2, 2})}, 1);
  }

 private:
  std::shared_ptr<Conv> b3_1_, b3_2_, b7x3_1_, b7x3_2_, b7x3_3_, b7x3_4_;
};

// InceptionE (Mixed_7b, 7c), 8x8: the 3x3 branches split into parallel 1x3 and 3x1.
class MixedE : public Mixed {
 public:
  MixedE(int64_t in, PoolKind pool) : pool_kind_(pool) {
    b1x1_ = add("branch1x1", in, 320, 1, 1);
    b3_1_ = add("branch3x3_1", in, 384, 1, 1);
    b3_2a_ = add("branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
    b3_2b_ = add("branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
    b3dbl_1_ = add("branch3x3dbl_1", in, 448, 1, 1);
    b3dbl_2_ = add("branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
    b3dbl_3a_ = add("branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
    b3dbl_3b_ = add("branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
    pool_ = add("branch_pool", in, 192, 1, 1);
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    const torch::Tensor b3 = b3_1_->forward(x);
    const torch::Tensor b3dbl = b3dbl_2_->forward(b3dbl_1_->forward(x));
    return torch::cat({b1x1_->forward(x), b3_2a_->forward(b3), b3_2b_->forward(b3), b3dbl_3a_->forward(b3dbl),
                       b3dbl_3b_->forward(b3dbl), pool_->forward(pool_3x3(x, pool_kind_))},
                      1);
  }

 private:
  PoolKind pool_kind_;
  std::shared_ptr<Conv> b1x1_, b3_1_, b3_2a_, b3_2b_, b3dbl_1_, b3dbl_2_, b3dbl_3a_, b3dbl_3b_, pool_;
};

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// What torchvision's checkpoint holds beyond the feature extractor.
bool unused_by_features(const std::string& name) {
  return starts_with(name, "AuxLogits.") || starts_with(name, "fc.") || ends_with(name, ".num_batches_tracked");
}

}  // namespace

InceptionV3Impl::InceptionV3Impl(InceptionVariant variant) : variant_(variant) {
  const bool fid = variant == InceptionVariant::fid;
  const PoolKind avg = fid ? PoolKind::average_without_padding : PoolKind::average;
  // torchvision's order and names; the pools are parameterless but keep their places.
  const std::vector<std::pair<std::string, std::shared_ptr<InceptionStage>>> stages = {
      {"Conv2d_1a_3x3", std::make_shared<Conv>(3, 32, 3, 3, 2)},            // 149x149
      {"Conv2d_2a_3x3", std::make_shared<Conv>(32, 32, 3, 3)},              // 147x147
      {"Conv2d_2b_3x3", std::make_shared<Conv>(32, 64, 3, 3, 1, 1, 1)},     // 147x147
      {"maxpool1", std::make_shared<MaxPool>()},                           // 73x73
      {"Conv2d_3b_1x1", std::make_shared<Conv>(64, 80, 1, 1)},              // 73x73
      {"Conv2d_4a_3x3", std::make_shared<Conv>(80, 192, 3, 3)},             // 71x71
      {"maxpool2", std::make_shared<MaxPool>()},                           // 35x35
      {"Mixed_5b", std::make_shared<MixedA>(192, 32, avg)},                     // 256 channels
      {"Mixed_5c", std::make_shared<MixedA>(256, 64, avg)},                     // 288
      {"Mixed_5d", std::make_shared<MixedA>(288, 64, avg)},                     // 288
      {"Mixed_6a", std::make_shared<MixedB>(288)},                         // 768 x 17x17
      {"Mixed_6b", std::make_shared<MixedC>(768, 128, avg)},
      {"Mixed_6c", std::make_shared<MixedC>(768, 160, avg)},
      {"Mixed_6d", std::make_shared<MixedC>(768, 160, avg)},
      {"Mixed_6e", std::make_shared<MixedC>(768, 192, avg)},
      {"Mixed_7a", std::make_shared<MixedD>(768)},                         // 1280 x 8x8
      {"Mixed_7b", std::make_shared<MixedE>(1280, avg)},                        // 2048
      {"Mixed_7c", std::make_shared<MixedE>(2048, fid ? PoolKind::maximum : avg)},  // 2048
  };
  for (const auto& [name, stage] : stages) stages_.push_back(register_module(name, stage));
}

torch::Tensor InceptionV3Impl::forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  for (auto& stage : stages_) h = stage->forward(h);
  // torchvision's avgpool + flatten; dropout and fc would follow.
  return torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1);
}

InceptionV3 inception_v3_load(const std::string& safetensors_path) {
  const SafeTensors st = safetensors_load(safetensors_path);
  // pytorch-fid's FID weights keep the TensorFlow graph's 1008-way classifier; torchvision's 1000.
  auto fc = st.tensors.find("fc.weight");
  const bool fid = fc != st.tensors.end() && fc->second.dim() == 2 && fc->second.size(0) == 1008;
  InceptionV3 net(fid ? InceptionVariant::fid : InceptionVariant::torchvision);
  net->eval();
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& item : net->named_parameters(true)) targets.emplace_back(item.key(), item.value());
  for (const auto& item : net->named_buffers(true)) targets.emplace_back(item.key(), item.value());

  std::vector<std::string> problems;
  std::set<std::string> expected;
  for (const auto& [name, target] : targets) {
    expected.insert(name);
    auto it = st.tensors.find(name);
    if (it == st.tensors.end()) {
      problems.push_back("missing tensor '" + name + "'");
      continue;
    }
    if (!c10::isFloatingType(it->second.scalar_type()))
      problems.push_back("tensor '" + name + "' has dtype " + safetensors_dtype_name(it->second.scalar_type()) +
                         ", expected a float type");
    else if (it->second.sizes() != target.sizes())
      problems.push_back("tensor '" + name + "' has shape " + shape_string(it->second.sizes()) + ", expected " +
                         shape_string(target.sizes()));
  }
  for (const auto& [name, tensor] : st.tensors)
    if (!expected.count(name) && !unused_by_features(name)) problems.push_back("unexpected tensor '" + name + "'");
  if (!problems.empty()) {
    std::string message = "not Inception-v3 weights (convert torchvision's inception_v3_google-*.pth or pytorch-fid's "
                          "pt_inception-2015-12-05-*.pth with dalle convert): " +
                          std::to_string(problems.size()) + " problem(s):";
    const size_t shown = std::min<size_t>(problems.size(), 12);
    for (size_t i = 0; i < shown; ++i) message += "\n  " + problems[i];
    if (shown < problems.size()) message += "\n  ... and " + std::to_string(problems.size() - shown) + " more";
    throw file_error(safetensors_path, message);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) target.copy_(st.tensors.at(name).to(torch::kFloat32));
  return net;
}

torch::Tensor inception_features(InceptionV3& net, const torch::Tensor& images_u8, int batch) {
  if (images_u8.dim() != 4 || images_u8.size(3) != 3 || images_u8.scalar_type() != torch::kUInt8)
    throw Error("inception_features: expected uint8 images [B, H, W, 3], got " +
                std::string(c10::toString(images_u8.scalar_type())) + " " + shape_string(images_u8.sizes()));
  if (batch < 1) throw Error("inception_features: batch must be at least 1");
  constexpr int64_t kSide = 299;
  const int64_t n = images_u8.size(0);
  torch::Tensor features = torch::empty({n, 2048}, torch::kFloat32);  // an ordinary tensor for the caller
  torch::InferenceMode inference;
  const c10::Device device = net->parameters().front().device();
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t end = std::min<int64_t>(n, start + batch);
    torch::Tensor x = images_u8.slice(0, start, end).to(device).permute({0, 3, 1, 2}).to(torch::kFloat32);
    if (x.size(2) != kSide || x.size(3) != kSide)
      x = torch::upsample_bilinear2d(x, {kSide, kSide}, /*align_corners=*/false);
    x = x / 255.0 * 2.0 - 1.0;
    features.slice(0, start, end).copy_(net->forward(x).to(torch::kCPU));
  }
  return features;
}

}  // namespace dalle

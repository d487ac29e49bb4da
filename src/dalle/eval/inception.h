// Inception-v3 as torchvision builds it (torchvision.models.inception_v3), in eval mode, up to
// the 2048-d pool3 features that FID and KID compare. Module, parameter and buffer names are
// torchvision's state-dict names ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.bn.running_var"),
// so torchvision's ImageNet checkpoint, converted with `dalle convert inception_v3_google-*.pth`,
// loads by name.
//
// Two variants, chosen by the weights: torchvision's network (its ImageNet checkpoint), and the
// FID network that published FIDs use (pytorch-fid's port of the 2015 TensorFlow graph, with its
// weights pt_inception-2015-12-05-*.pth: the same tensors, a 1008-way fc, and other pooling
// before the branch_pool convs). Only the second gives FIDs comparable with published ones.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>
#include <vector>

namespace dalle {

class InceptionStage;  // one named layer of the network (a conv, a pool or a Mixed block)

enum class InceptionVariant { torchvision, fid };

class InceptionV3Impl : public torch::nn::Module {
 public:
  explicit InceptionV3Impl(InceptionVariant variant = InceptionVariant::torchvision);
  InceptionVariant variant() const { return variant_; }
  // x: [B, 3, 299, 299] already scaled to [-1, 1] -> pool3 features [B, 2048].
  torch::Tensor forward(const torch::Tensor& x);

 private:
  InceptionVariant variant_;
  std::vector<std::shared_ptr<InceptionStage>> stages_;
};
TORCH_MODULE(InceptionV3);

// Loads a safetensors file (the variant from its fc: 1008 classes is the FID network): every needed parameter and BatchNorm buffer is checked by name and
// shape and converted to fp32; the file's AuxLogits.*, fc.* and *.num_batches_tracked tensors are
// ignored (FID needs neither head). Anything missing, mis-shaped, non-float or unknown is one
// error naming the file and the tensors. The network comes back in eval() mode.
InceptionV3 inception_v3_load(const std::string& safetensors_path);

// uint8 images [B, H, W, 3] -> pool3 features [B, 2048] fp32 on the CPU. Each image is resized to
// 299x299 (bilinear, align_corners false, as pytorch-fid does) and scaled x/255*2-1 (what
// torchvision's transform_input makes of ImageNet-normalised input), `batch` images at a time.
torch::Tensor inception_features(InceptionV3& net, const torch::Tensor& images_u8, int batch = 32);

}  // namespace dalle

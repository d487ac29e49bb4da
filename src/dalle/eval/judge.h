// The judge of `dalle eval shapes`: a small CNN that reads a shapes-world image, trained only on
// fresh renders of the world (clean, plus mild blur and noise), never on a model's samples. It
// reads (at 32x32 at most, pooling larger images down) the first object's colour and shape (the
// only object, or the top / left one of two), the second object's, how many objects there are
// and how two are laid out (one above the other or side by side): enough to check "a red square
// above a blue star".
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dalle/data/shapes.h"

namespace dalle {

struct JudgeReading {
  ShapesObject first, second;  // second: meaningful when objects == 2
  int objects = 1;
  int relation = -1;  // two objects: 0 = first above second, 1 = first left of second
};

class JudgeImpl : public torch::nn::Module {
 public:
  explicit JudgeImpl(int image_size);
  // Pixels [B, 3, S, S] in [0, 1] -> logits of each head, concatenated: colour 1, shape 1,
  // colour 2, shape 2 (8 each), objects (2), relation (2).
  torch::Tensor forward(const torch::Tensor& x);
  int image_size() const { return image_size_; }

 private:
  int image_size_;
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<torch::nn::GroupNorm> norms_;
  torch::nn::Linear hidden_{nullptr}, heads_{nullptr};
};
TORCH_MODULE(Judge);

struct JudgeAccuracy {
  double colour = 0, shape = 0, both = 0;  // per object, over all objects
  double relation = 0;                     // two-object images: layout and order right
  int64_t images = 0;
};

struct JudgeTrainOptions {
  int image_size = 32;
  int64_t steps = 1200;
  int batch = 64;
  double lr = 2e-3;
  uint64_t seed = 0;
  c10::Device device{c10::kCPU};  // where it trains (renders are drawn on the CPU)
  // (step, loss) every few steps, for progress.
  std::function<void(int64_t, double)> progress;
};

// Trains a judge on renders of both splits (so it knows the held-out pairs too).
Judge judge_train(const JudgeTrainOptions& options);
// Images on any device; the judge reads them on its own.
std::vector<JudgeReading> judge_read(Judge& judge, const torch::Tensor& images_u8);
// On `count` fresh clean renders (a seed the training never drew).
JudgeAccuracy judge_accuracy(Judge& judge, int64_t count, uint64_t seed);

void judge_save(Judge& judge, const std::string& path, const JudgeAccuracy& accuracy);
// Throws naming the file when it is not a judge or was trained for another image size.
Judge judge_load(const std::string& path, int expected_image_size);

}  // namespace dalle

#include "dalle/eval/judge.h"

#include "dalle/util/torch_api.h"

#include <torch/optim/adam.h>

#include <cmath>
#include <cstring>
#include <random>

#include "dalle/io/safetensors.h"
#include "dalle/io/weights.h"
#include "dalle/util/error.h"

namespace dalle {

namespace {

constexpr int kColours = 8, kShapes = 8;
// Head layout in the logits: [colour 1 | shape 1 | colour 2 | shape 2 | objects | relation].
constexpr int kHeadSizes[] = {kColours, kShapes, kColours, kShapes, 2, 2};
constexpr int kLogits = kColours * 2 + kShapes * 2 + 4;
// The largest image the convolutions see; bigger ones are pooled down to it.
constexpr int kReadSize = 32;

torch::Tensor head(const torch::Tensor& logits, int which) {
  int start = 0;
  for (int i = 0; i < which; ++i) start += kHeadSizes[i];
  return logits.narrow(1, start, kHeadSizes[which]);
}

struct Batch {
  torch::Tensor images;                  // uint8 [B, S, S, 3]
  torch::Tensor labels;                  // int64 [B, 6]: colour1, shape1, colour2, shape2, objects-1, relation
  std::vector<ShapesScene> scenes;
};

// Renders of both splits: the judge must know every (colour, shape) pair.
Batch render_batch(int count, int size, std::mt19937_64& rng, uint64_t seed) {
  Batch b;
  b.images = torch::empty({count, size, size, 3}, torch::kUInt8);
  b.labels = torch::zeros({count, 6}, torch::kInt64);
  auto labels = b.labels.accessor<int64_t, 2>();
  for (int i = 0; i < count; ++i) {
    ShapesOptions o;
    o.size = size;
    o.seed = seed;
    o.captions_per_image = 1;
    o.split = std::uniform_int_distribution<int>(0, 4)(rng) == 0 ? ShapesSplit::heldout : ShapesSplit::train;
    const ShapesSample s = shapes_render(static_cast<int64_t>(rng() >> 1), o);
    std::memcpy(b.images[i].data_ptr(), s.image.pixels.data(), s.image.pixels.size());
    const ShapesScene& scene = s.scene;
    labels[i][0] = scene.objects[0].colour;
    labels[i][1] = scene.objects[0].shape;
    if (scene.objects.size() == 2) {
      labels[i][2] = scene.objects[1].colour;
      labels[i][3] = scene.objects[1].shape;
      labels[i][4] = 1;
      labels[i][5] = scene.relation;
    }
    b.scenes.push_back(scene);
  }
  return b;
}

torch::Tensor to_input(const torch::Tensor& images_u8) {
  return images_u8.permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0);
}

// Mild blur (a 3x3 Gaussian of random width on half the images) and noise: what keeps the judge
// from relying on perfectly sharp edges, since samples come through a dVAE.
torch::Tensor augment(torch::Tensor x, std::mt19937_64& rng) {
  const int64_t b = x.size(0);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < b; ++i) {
    torch::Tensor img = x[i].unsqueeze(0);
    if (unit(rng) < 0.5) {
      const double sigma = 0.3 + 0.6 * unit(rng);
      const double e = std::exp(-1.0 / (2 * sigma * sigma));
      const torch::Tensor k1 = torch::tensor({e, 1.0, e}, torch::kFloat32).to(x.device()) / (1 + 2 * e);
      const torch::Tensor k = torch::outer(k1, k1).view({1, 1, 3, 3}).repeat({3, 1, 1, 1});
      const std::vector<int64_t> one = {1, 1}, zero = {0, 0};
      img = torch::conv2d(torch::replication_pad2d(img, {1, 1, 1, 1}), k, torch::Tensor(), one, zero, one, 3);
    }
    out.push_back(img);
  }
  torch::Tensor y = torch::cat(out);
  const double noise = 0.03 * unit(rng);
  return (y + noise * torch::randn_like(y)).clamp(0, 1);
}

torch::Tensor loss_of(const torch::Tensor& logits, const torch::Tensor& labels) {
  const torch::Tensor two = labels.select(1, 4).to(torch::kFloat32);  // second object and relation: two-object images only
  torch::Tensor loss = torch::cross_entropy_loss(head(logits, 0), labels.select(1, 0)) +
                       torch::cross_entropy_loss(head(logits, 1), labels.select(1, 1)) +
                       torch::cross_entropy_loss(head(logits, 4), labels.select(1, 4));
  const auto masked = [&](int which, int column) {
    const torch::Tensor per = torch::cross_entropy_loss(head(logits, which), labels.select(1, column), {},
                                                        at::Reduction::None);
    return (per * two).sum() / two.sum().clamp_min(1);
  };
  return loss + masked(2, 2) + masked(3, 3) + masked(5, 5);
}

}  // namespace

JudgeImpl::JudgeImpl(int image_size) : image_size_(image_size) {
  if (image_size < 16 || image_size % 8 != 0) throw Error("judge: image size must be a multiple of 8, at least 16");
  // Images larger than 32 px are average-pooled to 32 first: the shapes stay legible there (the
  // 32 px judge reads them right) and the judge costs the same at any size. Then stride-2
  // convolutions down to 4x4 and a dense layer: where things are matters (which object is on
  // top), so no global pooling. Group norms (no running statistics to store) make it train in a
  // few hundred steps.
  if (image_size > kReadSize && image_size % kReadSize != 0)
    throw Error("judge: an image size above " + std::to_string(kReadSize) + " must be a multiple of it");
  const int widths[] = {3, 24, 48, 96, 96};
  for (int i = 0; i < 4; ++i) {
    auto opts = torch::nn::Conv2dOptions(widths[i], widths[i + 1], 3).stride(i == 0 ? 1 : 2).padding(1);
    convs_.push_back(register_module("conv" + std::to_string(i + 1), torch::nn::Conv2d(opts)));
    norms_.push_back(register_module("norm" + std::to_string(i + 1), torch::nn::GroupNorm(8, widths[i + 1])));
  }
  const int side = std::min(image_size, kReadSize) / 8;
  hidden_ = register_module("hidden", torch::nn::Linear(96 * side * side, 256));
  heads_ = register_module("heads", torch::nn::Linear(256, kLogits));
}

torch::Tensor JudgeImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = (x - 0.5) * 4.0;
  if (image_size_ > kReadSize) h = torch::avg_pool2d(h, image_size_ / kReadSize);
  for (size_t i = 0; i < convs_.size(); ++i) h = torch::relu(norms_[i](convs_[i](h)));
  return heads_(torch::relu(hidden_(h.flatten(1))));
}

Judge judge_train(const JudgeTrainOptions& options) {
  torch::manual_seed(options.seed);
  Judge judge(options.image_size);
  judge->to(options.device);
  torch::optim::Adam opt(judge->parameters(), torch::optim::AdamOptions(options.lr));
  std::mt19937_64 rng(options.seed * 7919 + 1);
  for (int64_t step = 1; step <= options.steps; ++step) {
    // Cosine decay to 5% over the run.
    const double lr = options.lr * (0.05 + 0.95 * 0.5 * (1 + std::cos(M_PI * double(step - 1) / options.steps)));
    for (auto& group : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    const Batch b = render_batch(options.batch, options.image_size, rng, options.seed + 1);
    const torch::Tensor loss =
        loss_of(judge->forward(augment(to_input(b.images.to(options.device)), rng)), b.labels.to(options.device));
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (options.progress && (step % 25 == 0 || step == options.steps)) options.progress(step, loss.item<double>());
  }
  judge->eval();
  return judge;
}

std::vector<JudgeReading> judge_read(Judge& judge, const torch::Tensor& images_u8) {
  torch::InferenceMode inference;
  std::vector<JudgeReading> out;
  const c10::Device device = judge->parameters().front().device();
  for (int64_t start = 0; start < images_u8.size(0); start += 256) {
    const torch::Tensor chunk = images_u8.narrow(0, start, std::min<int64_t>(256, images_u8.size(0) - start));
    const torch::Tensor logits = judge->forward(to_input(chunk.to(device)));
    std::vector<torch::Tensor> picks;
    for (int h = 0; h < 6; ++h) picks.push_back(head(logits, h).argmax(1));
    const torch::Tensor p = torch::stack(picks, 1).cpu().contiguous();
    auto a = p.accessor<int64_t, 2>();
    for (int64_t i = 0; i < p.size(0); ++i) {
      JudgeReading r;
      r.first = {static_cast<int>(a[i][0]), static_cast<int>(a[i][1])};
      r.second = {static_cast<int>(a[i][2]), static_cast<int>(a[i][3])};
      r.objects = static_cast<int>(a[i][4]) + 1;
      r.relation = r.objects == 2 ? static_cast<int>(a[i][5]) : -1;
      out.push_back(r);
    }
  }
  return out;
}

JudgeAccuracy judge_accuracy(Judge& judge, int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
  const Batch b = render_batch(static_cast<int>(count), judge->image_size(), rng, seed);
  const std::vector<JudgeReading> reads = judge_read(judge, b.images);
  JudgeAccuracy acc;
  int64_t objects = 0, pairs = 0;
  for (size_t i = 0; i < reads.size(); ++i) {
    const ShapesScene& truth = b.scenes[i];
    for (size_t k = 0; k < truth.objects.size(); ++k) {
      const ShapesObject& got = k == 0 ? reads[i].first : reads[i].second;
      const bool colour = got.colour == truth.objects[k].colour, shape = got.shape == truth.objects[k].shape;
      acc.colour += colour;
      acc.shape += shape;
      acc.both += colour && shape;
      ++objects;
    }
    if (truth.objects.size() == 2) {
      const JudgeReading& r = reads[i];
      acc.relation += r.objects == 2 && r.relation == truth.relation && r.first.colour == truth.objects[0].colour &&
                      r.first.shape == truth.objects[0].shape && r.second.colour == truth.objects[1].colour &&
                      r.second.shape == truth.objects[1].shape;
      ++pairs;
    }
  }
  acc.colour /= std::max<int64_t>(objects, 1);
  acc.shape /= std::max<int64_t>(objects, 1);
  acc.both /= std::max<int64_t>(objects, 1);
  acc.relation /= std::max<int64_t>(pairs, 1);
  acc.images = count;
  return acc;
}

void judge_save(Judge& judge, const std::string& path, const JudgeAccuracy& accuracy) {
  SafeTensors st;
  module_weights_into(*judge, st);
  st.metadata = {{"kind", "dalle-shapes-judge"},
                 {"image_size", std::to_string(judge->image_size())},
                 {"accuracy_both", std::to_string(accuracy.both)},
                 {"accuracy_relation", std::to_string(accuracy.relation)}};
  safetensors_save(path, st);
}

Judge judge_load(const std::string& path, int expected_image_size) {
  const SafeTensors st = safetensors_load(path);
  auto kind = st.metadata.find("kind");
  auto size = st.metadata.find("image_size");
  if (kind == st.metadata.end() || kind->second != "dalle-shapes-judge" || size == st.metadata.end())
    throw file_error(path, "not a judge from `dalle eval train-judge`");
  const int image_size = std::atoi(size->second.c_str());
  if (expected_image_size > 0 && image_size != expected_image_size)
    throw file_error(path, "judge reads " + size->second + "x" + size->second + " images, the model draws " +
                               std::to_string(expected_image_size) + "x" + std::to_string(expected_image_size) +
                               " (train one with `dalle eval train-judge --size " + std::to_string(expected_image_size) +
                               "`)");
  Judge judge(image_size);
  module_load_weights(*judge, st, path);
  judge->eval();
  return judge;
}

}  // namespace dalle

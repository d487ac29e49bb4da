// Data loading speed: decode + augment images/s on one thread, the loader's images/s with its
// worker threads, and the fraction of a dVAE training step (the `small` preset: 64×64, batch 32)
// spent waiting for data while the loader runs beside the training.
// Usage: bench_loader [images=2000] [source_side=256] [steps=20] [workers=1] [config=configs/small.json]
// Source images: shapes rendered at source_side, written by `data prepare` as JPEG shards (the
// format web data comes in).
#include "dalle/util/torch_api.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "dalle/bundle/config.h"
#include "dalle/data/augment.h"
#include "dalle/data/filters.h"
#include "dalle/data/loader.h"
#include "dalle/data/prepare.h"
#include "dalle/data/shapes.h"
#include "dalle/util/threads.h"
#include "dalle/vae/dvae.h"
#include "dalle/vae/loss.h"
#include "dalle/vae/pixels.h"

using namespace dalle;
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t count = argc > 1 ? std::atoll(argv[1]) : 2000;
  const int side = argc > 2 ? std::atoi(argv[2]) : 256;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 20;
  const int workers = argc > 4 ? std::atoi(argv[4]) : 1;
  const std::string config_path = argc > 5 ? argv[5] : "configs/small.json";
  const ModelConfig config = config_load(config_path);
  const int target = config.vae.image_size;
  const int64_t batch = config.vae_train.batch;

  const fs::path dir = fs::temp_directory_path() / ("dalle_bench_loader_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ShapesOptions so;
  so.count = count;
  so.size = side;
  shapes_write((dir / "shapes").string(), so);
  PrepareOptions po;
  po.input = (dir / "shapes").string();
  po.output = (dir / "shards").string();
  po.image_format = "jpg";
  po.shard_size = 500;
  po.filters.english = false;  // shapes captions are English; skip the work
  const PrepareReport pr = prepare_dataset(po);
  std::printf("data: %lld shapes images %dx%d -> %lld JPEG shards (%.1f MB) by data prepare in %.1f s\n",
              static_cast<long long>(pr.kept), side, side, static_cast<long long>(pr.shards),
              pr.bytes_written / 1e6, pr.seconds);

  // 1. Decode + augment on one thread.
  {
    auto source = open_sample_source((dir / "shards").string());
    std::vector<RawSample> raws;
    RawSample s;
    while (source->next(s)) raws.push_back(std::move(s));
    auto t0 = std::chrono::steady_clock::now();
    uint64_t checksum = 0;
    for (size_t i = 0; i < raws.size(); ++i) {
      const Image img = image_decode_on_white(raws[i].image.data(), raws[i].image.size(), raws[i].image_name, 1 << 26);
      const Image out = augment_image(img, target, AugmentKind::dvae, augment_seed(0, 0, static_cast<int64_t>(i)));
      checksum += out.pixels[0];
    }
    const double dt = seconds_since(t0);
    std::printf("decode + dVAE augment (%dx%d JPEG -> %d), 1 thread: %.0f img/s (checksum %llu)\n", side, side,
                target, raws.size() / dt, static_cast<unsigned long long>(checksum));
  }

  LoaderOptions lo;
  lo.data = (dir / "shards").string();
  lo.image_size = target;
  lo.batch_size = batch;
  lo.workers = workers;
  lo.prefetch = 4;
  lo.shuffle_buffer = 1000;

  // 2. The loader alone.
  {
    Loader loader(lo);
    loader.next();  // warm-up: fill the queue
    const int batches = std::max<int>(10, static_cast<int>(count / batch));
    auto t0 = std::chrono::steady_clock::now();
    for (int b = 0; b < batches; ++b) loader.next();
    const double dt = seconds_since(t0);
    std::printf("loader alone, %d worker%s, batch %lld: %.0f img/s\n", workers, workers == 1 ? "" : "s",
                static_cast<long long>(batch), batches * batch / dt);
  }

  // 3. Beside a real training step of the preset's dVAE (forward, Gumbel-softmax, loss, backward).
  set_thread_count(0);
  torch::manual_seed(0);
  Dvae vae(config.vae);
  vae->train();
  Loader loader(lo);
  torch::Generator gen = make_cpu_generator(0);
  double wait = 0, total = 0;
  for (int step = -2; step < steps; ++step) {  // two warm-up steps, not counted
    auto t0 = std::chrono::steady_clock::now();
    const double waited_before = loader.wait_seconds();
    const LoaderBatch b = loader.next();
    const double waited = loader.wait_seconds() - waited_before;
    const torch::Tensor x = map_pixels(b.images.permute({0, 3, 1, 2}).to(torch::kFloat32) / 255.0, config.vae.eps);
    const torch::Tensor logits = vae->encoder(x);
    const torch::Tensor stats = vae->decoder(gumbel_softmax(logits, 1.0, gen));
    VaeLoss loss = vae_loss(x, stats, logits, 1.0);
    vae->zero_grad();
    loss.loss.backward();
    if (step < 0) continue;
    wait += waited;
    total += seconds_since(t0);
  }
  std::printf("training beside the loader (%s, batch %lld, %d torch threads, %d loader worker%s): %.0f ms/step, "
              "waiting for data %.1f%% of the step\n",
              config.name.c_str(), static_cast<long long>(batch), torch::get_num_threads(), workers,
              workers == 1 ? "" : "s", 1000 * total / steps, 100 * wait / total);
  fs::remove_all(dir);
  return 0;
}

// Training throughput, fp32 against bf16 autocast, through the real training loops, in one run:
// the dVAE on shapes images, then the prior on the tokens of that dVAE.
// Usage: bench_train [CONFIG] [STEPS]   (default: configs/default.json, 30 steps)
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "dalle/data/shapes.h"
#include "dalle/train/prior_trainer.h"
#include "dalle/train/vae_trainer.h"
#include "dalle/util/fs.h"
#include "dalle/util/threads.h"
#include "dalle/util/torch_api.h"
#include "dalle/vae/encode_folder.h"

using namespace dalle;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  const std::string config_path = argc > 1 ? argv[1] : "configs/default.json";
  const int64_t steps = argc > 2 ? std::atoll(argv[2]) : 30;
  set_thread_count(0);
  const ModelConfig config = config_load(config_path);
  const fs::path dir = fs::temp_directory_path() / "dalle_bench_train";
  fs::remove_all(dir);
  ShapesOptions so;
  so.count = 512;
  so.size = config.vae.image_size;
  shapes_write((dir / "shapes").string(), so);

  std::printf("config %s, %lld steps each, %d threads\n", config_path.c_str(), static_cast<long long>(steps),
              torch::get_num_threads());
  double vae_rate[2], vae_loss[2], prior_rate[2], prior_loss[2];
  const char* precisions[2] = {"fp32", "bf16"};
  for (int p = 0; p < 2; ++p) {
    VaeTrainOptions o;
    o.data = (dir / "shapes").string();
    o.out = (dir / (std::string("vae_") + precisions[p])).string();
    o.steps = steps;
    o.decoder_finetune_steps = 0;  // the joint phase only: a preset's fine-tuning phase is longer than a benchmark
    o.precision = precisions[p];
    o.quiet = true;
    o.sample_every = o.save_every = 1 << 30;
    const VaeTrainResult r = vae_train(config, o);
    vae_rate[p] = r.images_per_second;
    vae_loss[p] = r.last_loss;
  }
  // Tokens for the prior from the fp32 dVAE.
  vae_encode_folder((dir / "vae_fp32").string(), (dir / "shapes").string(), (dir / "tokens").string());
  for (int p = 0; p < 2; ++p) {
    PriorTrainOptions o;
    o.data = (dir / "tokens").string();
    o.out = (dir / (std::string("prior_") + precisions[p])).string();
    o.steps = steps;
    o.precision = precisions[p];
    o.quiet = true;
    o.sample_prompts.clear();
    o.val_every = o.save_every = 1 << 30;
    const PriorTrainResult r = prior_train(config, o);
    prior_rate[p] = r.tokens_per_second;
    prior_loss[p] = r.last_loss;
  }
  fs::remove_all(dir);
  std::printf("  dVAE  fp32: %8.1f img/s   loss after %lld steps %.4f\n", vae_rate[0], static_cast<long long>(steps), vae_loss[0]);
  std::printf("  dVAE  bf16: %8.1f img/s   loss after %lld steps %.4f   speed-up %.2fx\n", vae_rate[1],
              static_cast<long long>(steps), vae_loss[1], vae_rate[1] / vae_rate[0]);
  std::printf("  prior fp32: %8.0f tok/s   loss after %lld steps %.4f\n", prior_rate[0], static_cast<long long>(steps), prior_loss[0]);
  std::printf("  prior bf16: %8.0f tok/s   loss after %lld steps %.4f   speed-up %.2fx\n", prior_rate[1],
              static_cast<long long>(steps), prior_loss[1], prior_rate[1] / prior_rate[0]);
  return 0;
}

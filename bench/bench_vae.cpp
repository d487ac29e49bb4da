// dVAE throughput, fp32 against bf16 autocast (oneDNN), channels-first and channels-last, in one
// run: a training step (Gumbel relaxation, logit-Laplace loss, backward, AdamW) and argmax
// encoding, on random 64x64 images of the config's size. Prints img/s and ratios to fp32.
// Usage: bench_vae [CONFIG] [BATCH] [REPEATS]   (default: configs/vae64.json, 32, 5)
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "dalle/bundle/config.h"
#include "dalle/train/adamw.h"
#include "dalle/util/threads.h"
#include "dalle/util/torch_api.h"
#include "dalle/vae/dvae.h"
#include "dalle/vae/loss.h"
#include "dalle/vae/pixels.h"

using namespace dalle;

namespace {

struct Mode {
  const char* name;
  bool bf16;
  bool channels_last;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string config_path = argc > 1 ? argv[1] : "configs/vae64.json";
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 32;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 5;
  set_thread_count(0);
  const VaeConfig vc = config_load(config_path).vae;
  std::printf("config %s: %dx%d -> %dx%d tokens of %d, n_hid %d, batch %lld, %d timed steps, %d threads\n",
              config_path.c_str(), vc.image_size, vc.image_size, vc.grid(), vc.grid(), vc.vocab, vc.n_hid,
              static_cast<long long>(batch), repeats, torch::get_num_threads());
  torch::manual_seed(0);
  const torch::Tensor images = torch::randint(0, 256, {batch, vc.image_size, vc.image_size, 3}, torch::kUInt8);
  const Mode modes[] = {{"fp32", false, false}, {"fp32 channels-last", false, true},
                        {"bf16", true, false}, {"bf16 channels-last", true, true}};
  double train_rate[4], encode_rate[4], loss_after[4];
  torch::Tensor tokens_fp32;
  double agreement[4];
  for (int m = 0; m < 4; ++m) {
    const Mode& mode = modes[m];
    torch::manual_seed(0);
    Dvae vae(vc);
    if (mode.channels_last) vae->to_channels_last();
    std::vector<std::pair<std::string, torch::Tensor>> params;
    for (auto& item : vae->named_parameters(true)) params.emplace_back(item.key(), item.value());
    AdamW optimizer(params, {0.9, 0.999, 1e-8, 1e-4}, [](const std::string&) { return true; });
    torch::Generator gen = make_cpu_generator(1);
    const torch::Tensor x = map_pixels(images.permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0), vc.eps);
    auto train_step = [&] {
      torch::Tensor logits, stats;
      {
        AutocastGuard autocast(mode.bf16);
        logits = vae->encoder(x).to(torch::kFloat32);
        stats = vae->decoder(gumbel_softmax(logits, 0.5, gen)).to(torch::kFloat32);
      }
      VaeLoss loss = vae_loss(x, stats, logits, 1.0);
      optimizer.zero_grad();
      loss.loss.backward();
      optimizer.step(1e-4);
      return loss.loss.item<double>();
    };
    train_step();  // warm-up: oneDNN primitive creation
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < repeats; ++r) loss_after[m] = train_step();
    train_rate[m] = repeats * batch / seconds_since(t0);

    torch::InferenceMode inference;
    auto encode = [&] {
      AutocastGuard autocast(mode.bf16);
      return vae->encoder(x).argmax(1);
    };
    encode();
    t0 = std::chrono::steady_clock::now();
    torch::Tensor tokens;
    for (int r = 0; r < repeats; ++r) tokens = encode();
    encode_rate[m] = repeats * batch / seconds_since(t0);
    if (m == 0) tokens_fp32 = tokens;
    agreement[m] = tokens.eq(tokens_fp32).to(torch::kFloat64).mean().item<double>();
  }
  std::printf("%-20s %10s %8s %10s %8s %12s %14s\n", "mode", "train", "vs fp32", "encode", "vs fp32",
              "loss after", "tokens = fp32");
  for (int m = 0; m < 4; ++m)
    std::printf("%-20s %6.1f img/s %7.2fx %6.1f img/s %7.2fx %12.5f %13.1f%%\n", modes[m].name, train_rate[m],
                train_rate[m] / train_rate[0], encode_rate[m], encode_rate[m] / encode_rate[0], loss_after[m],
                100 * agreement[m]);
  return 0;
}

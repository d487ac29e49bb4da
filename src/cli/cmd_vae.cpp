// dalle vae: train the dVAE, encode images to tokens, view reconstructions.
#include "dalle/util/torch_api.h"

#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>

#include "cli/command.h"
#include "dalle/bundle/bundle.h"
#include "dalle/data/image_folder.h"
#include "dalle/dist/process_group.h"
#include "dalle/io/image.h"
#include "dalle/io/weights.h"
#include "dalle/train/vae_trainer.h"
#include "dalle/vae/encode_folder.h"
#include "dalle/vae/evaluate.h"
#include "dalle/vae/openai_import.h"
#include "dalle/util/device.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/util/progress.h"

namespace dalle::cli {

namespace {

struct VaeFlags {
  std::string config = "tiny";
  std::string data;
  std::string out;
  std::string vae;
  int64_t steps = -1;
  double schedule_scale = 1.0;
  int64_t decoder_finetune = -1;
  std::string decoder_finetune_loss;
  int64_t seed = 0;
  bool resume = false;
  int64_t save_every = 500;
  int64_t sample_every = 500;
  int64_t max_images = -1;
  std::string precision = "fp32";
  std::string device = "cpu";
  bool tf32 = false;
  bool checkpoint_activations = false;
  bool weights16 = false;
  int64_t count = -1;  // reconstruct: images to evaluate (-1 = all)
  int64_t show = 8;    // reconstruct: images in the grid
  std::string save_dir;  // reconstruct: every reconstruction as PNG + captions
  int batch = 64;
  int threads = 0;
  int workers = 2;
  int64_t shuffle_buffer = 1000;
  int64_t val_images = 512;
  int crops = 1;  // encode: crops per image
  std::string encoder_pkl, decoder_pkl;  // import-openai
  std::string import_config = "paper";
  int image_size = 256;
  bool force = false;
  DistFlags dist;
};

int run_train(const VaeFlags& f) {
  apply_threads(f.threads);
  VaeTrainOptions o;
  o.quiet = quiet();
  o.data = f.data;
  o.out = f.out;
  o.steps = f.steps;
  o.schedule_scale = f.schedule_scale;
  o.decoder_finetune_steps = f.decoder_finetune;
  o.decoder_finetune_loss = f.decoder_finetune_loss;
  o.seed = static_cast<uint64_t>(f.seed);
  o.resume = f.resume;
  o.threads = f.threads;
  o.save_every = f.save_every;
  o.sample_every = f.sample_every;
  o.max_images = f.max_images;
  o.workers = f.workers;
  o.shuffle_buffer = f.shuffle_buffer;
  o.val_images = f.val_images;
  o.precision = f.precision;
  o.checkpoint_activations = f.checkpoint_activations;
  o.weights16 = f.weights16;
  o.device = f.device;
  o.tf32 = f.tf32;
  o.dist = join_distributed(f.dist, f.device);
  ModelConfig config;
  if (!f.resume) config = config_load(resolve_config_path(f.config));
  vae_train(config, o);
  return 0;
}

int run_encode(const VaeFlags& f) {
  apply_threads(f.threads);
  ProgressBar bar("encoding", 0, "img");
  EncodeFolderOptions o;
  o.batch = f.batch;
  o.workers = f.workers;
  o.max_images = f.max_images;
  o.crops = f.crops;
  o.seed = static_cast<uint64_t>(f.seed);
  o.device = f.device;
  o.progress = [&](const char*, int64_t done, int64_t total) {
    bar.set_total(total);
    bar.update(done);
  };
  const EncodeFolderResult r = vae_encode_folder(f.vae, f.data, f.out, o);
  bar.finish();
  std::fprintf(stderr, "vae encode: %lld images -> %s (%dx%d tokens, %lld skipped)\n",
               static_cast<long long>(r.encoded), f.out.c_str(), r.grid, r.grid, static_cast<long long>(r.skipped));
  return 0;
}

int run_reconstruct(const VaeFlags& f) {
  apply_threads(f.threads);
  ModelConfig config;
  Dvae vae = vae_load(f.vae, &config);
  vae->to(device_from_name(f.device));
  ImageSet set = image_set_load(f.data, config.vae.image_size, false, f.threads, f.count);
  if (set.images.size(0) == 0) throw file_error(f.data, "holds no readable images");
  torch::InferenceMode inference;
  // With --save-dir the evaluation's reconstructions are written as they are made.
  std::function<void(int64_t, const torch::Tensor&)> save;
  std::optional<ProgressBar> bar;
  if (!f.save_dir.empty()) {
    make_dirs(f.save_dir);
    bar.emplace("reconstructing", set.images.size(0), "img");
    save = [&](int64_t first, const torch::Tensor& recon) {
      reconstructions_save(set, first, recon, f.save_dir);
      bar->update(first + recon.size(0));
    };
  }
  const VaeEvaluation e = vae_evaluate(vae, set.images, f.batch, save);
  if (bar) bar->finish();
  const torch::Tensor shown = set.images.narrow(0, 0, std::min<int64_t>(f.show, set.images.size(0)));
  image_save_png(f.out, reconstruction_grid(vae, shown),
                 {{"description", "top: originals, bottom: dVAE reconstructions"}, {"vae", f.vae}});
  std::fprintf(stderr,
               "vae reconstruct: PSNR %.2f dB, %.1f%% of %d codes used (perplexity %.1f) over %lld images; "
               "grid of %lld in %s\n",
               e.psnr, 100 * e.codebook.used, config.vae.vocab, e.codebook.perplexity,
               static_cast<long long>(e.images), static_cast<long long>(shown.size(0)), f.out.c_str());
  if (!f.save_dir.empty())
    std::fprintf(stderr, "vae reconstruct: wrote %lld reconstructions with their captions to %s\n",
                 static_cast<long long>(set.images.size(0)), f.save_dir.c_str());
  return 0;
}

int run_import_openai(const VaeFlags& f) {
  ModelConfig config = config_load(resolve_config_path(f.import_config));
  if (path_exists(path_join(f.out, kConfigFile)) && !f.force)
    throw file_error(f.out, "already holds a model (config.json); choose a new folder, or --force to replace it");
  OpenaiDvae imported = openai_dvae_import(f.encoder_pkl, f.decoder_pkl, f.image_size, config.vae);
  config.vae = imported.config;
  config.name = "openai-dvae";
  make_dirs(f.out);
  SafeTensors st;
  module_weights_into(*imported.vae, st);
  st.metadata["source"] = "OpenAI dVAE: " + std::filesystem::path(f.encoder_pkl).filename().string() + ", " +
                          std::filesystem::path(f.decoder_pkl).filename().string();
  safetensors_save(path_join(f.out, kVaeWeightsFile), st);
  config_save(path_join(f.out, kConfigFile), config);
  for (const std::string& note : imported.notes) std::fprintf(stderr, "vae import-openai: %s\n", note.c_str());
  const VaeConfig& c = imported.config;
  std::fprintf(stderr,
               "vae import-openai: n_hid %d, %d groups x %d blocks, vocabulary %d, n_init %d; %.1fM encoder + %.1fM "
               "decoder parameters -> %s (%dx%d images, %dx%d tokens)\n",
               c.n_hid, c.groups, c.blocks_per_group, c.vocab, c.n_init, dvae_encoder_param_count(c) / 1e6,
               dvae_decoder_param_count(c) / 1e6, f.out.c_str(), c.image_size, c.image_size, c.grid(), c.grid());
  return 0;
}

}  // namespace

void register_vae(CLI::App& app, Action& action) {
  static VaeFlags f;
  CLI::App* cmd = app.add_subcommand("vae", "Stage 1, the discrete VAE: train, encode, reconstruct");
  cmd->require_subcommand(1);

  CLI::App* train = cmd->add_subcommand("train", "Train the dVAE on a folder of images");
  train->add_option("-c,--config", f.config, "Config JSON or preset name (tiny, small, paper)")->capture_default_str();
  train->add_option("-d,--data", f.data,
                    "Images, streamed: a folder, tar shards (a file, a folder of them, or a pattern such as "
                    "'shards/{000000..000099}.tar'), or a TSV (captions not needed)")->required();
  train->add_option("-o,--output", f.out, "Run folder: config.json, vae.safetensors, checkpoint, metrics, recon/")
      ->required();
  train->add_option("--steps", f.steps, "Total updates (default: the config's vae_train.steps)");
  train->add_option("--schedule-scale", f.schedule_scale,
                    "Multiply the beta, tau and lr schedule lengths and the config's decoder fine-tuning phase")
      ->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--decoder-finetune", f.decoder_finetune,
                    "Last N updates train the decoder alone on the argmax tokens of the frozen EMA encoder, the "
                    "tokens the prior sees (default: the config's vae_train.decoder_finetune_steps). With --resume "
                    "and a larger --steps it fine-tunes a finished run's decoder without changing its tokens")
      ->check(CLI::NonNegativeNumber);
  train->add_option("--decoder-finetune-loss", f.decoder_finetune_loss,
                    "What those updates fit: nll, the logit-Laplace likelihood; or mse, the squared error of the "
                    "decoded image (mu), with the likelihood only for ln b (default: the config's "
                    "vae_train.decoder_finetune_loss)")
      ->check(CLI::IsMember({"nll", "mse"}));
  train->add_option("-s,--seed", f.seed, "Random seed")->capture_default_str();
  train->add_flag("--resume", f.resume, "Continue the run in --output from its checkpoint");
  train->add_option("--save-every", f.save_every, "Checkpoint every N steps")->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--sample-every", f.sample_every, "Reconstruction grid every N steps")
      ->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--max-images", f.max_images, "Use only the first N images, in name order (default: all)");
  train->add_option("--workers", f.workers, "Threads that decode and augment images while the model trains")
      ->capture_default_str()->check(CLI::Range(1, 256));
  train->add_option("--shuffle-buffer", f.shuffle_buffer, "Samples held to shuffle the stream across shards")
      ->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--val-images", f.val_images,
                    "Held-out images (vae_train.val_fraction of the data, chosen by name) for the final PSNR, at most")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  train->add_option("--precision", f.precision,
                    "fp32; bf16 (convolutions in bf16 under autocast, oneDNN NHWC on CPU); fp16 (on CUDA real fp16 "
                    "convolutions and activations inside the resblocks; emulated on CPU by fp16 rounding of each "
                    "resblock's activations and gradients). Both 16-bit modes use per-resblock gradient scales")
      ->capture_default_str()->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  add_weights16_option(train, f.weights16, "kernels");
  add_device_option(train, f.device, "training");
  add_tf32_option(train, f.tf32);
  train->add_flag("--checkpoint-activations", f.checkpoint_activations,
                  "Keep only each resblock's input and recompute its branch in backward (less memory, more time)");
  add_dist_options(train, f.dist);
  add_threads_option(train, f.threads);
  add_progress_options(train);
  train->callback([&action] { action = [] { return run_train(f); }; });

  CLI::App* encode = cmd->add_subcommand("encode", "Encode images to argmax tokens for the prior");
  encode->add_option("--vae", f.vae, "VAE run folder or model bundle")->required();
  encode->add_option("-d,--data", f.data, "Images with captions: a folder with .txt captions, shards, or a TSV")->required();
  encode->add_option("-o,--output", f.out, "Token folder to write")->required();
  encode->add_option("-b,--batch", f.batch, "Images per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  encode->add_option("--max-images", f.max_images, "Encode only the first N images, in name order (default: all)");
  encode->add_option("--crops", f.crops,
                     "Crops per image: 1 = the centre crop; K > 1 = K crops with the prior's augmentation (near-centre "
                     "crop, random resize, no flip), each a training sample with the image's captions")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  encode->add_option("-s,--seed", f.seed, "Random seed of the crops")->capture_default_str();
  encode->add_option("--workers", f.workers, "Image decoding threads")->capture_default_str()->check(CLI::Range(1, 256));
  add_device_option(encode, f.device, "the dVAE");
  add_threads_option(encode, f.threads);
  add_progress_options(encode);
  encode->callback([&action] { action = [] { return run_encode(f); }; });

  CLI::App* recon = cmd->add_subcommand("reconstruct", "Measure PSNR and codebook use on images; write a grid of originals over reconstructions");
  recon->add_option("--vae", f.vae, "VAE run folder or model bundle")->required();
  recon->add_option("-d,--data", f.data, "Images: a folder, shards or a TSV")->required();
  recon->add_option("-o,--output", f.out, "Output PNG: the first --show originals over their reconstructions")->required();
  recon->add_option("-n,--count", f.count, "Images to evaluate: PSNR and codebook use over them (default: all)")
      ->check(CLI::PositiveNumber);
  recon->add_option("--show", f.show, "Images in the grid")->capture_default_str()->check(CLI::Range(1, 64));
  recon->add_option("--save-dir", f.save_dir,
                    "Also write every reconstruction as DIR/NNNNNN.png (input order) with the image's captions as "
                    "DIR/NNNNNN.txt: image-caption pairs that look like the prior's decoded samples (e.g. to train "
                    "a reranker on)");
  add_device_option(recon, f.device, "the dVAE");
  add_threads_option(recon, f.threads);
  add_progress_options(recon);
  recon->callback([&action] { action = [] { return run_reconstruct(f); }; });

  CLI::App* import = cmd->add_subcommand(
      "import-openai",
      "Import OpenAI's released dVAE (encoder.pkl, decoder.pkl) into a VAE run folder that `vae encode`, `vae "
      "reconstruct` and `train --encode-on-the-fly` use. The pickles are read without running them; the layout is "
      "inferred from the tensor shapes and every tensor is checked by name and shape. Weights are stored as float32 "
      "(float16 values exactly); the model runs in fp32 on every device, as OpenAI's code does on a CPU (on CUDA it "
      "runs most convolutions in fp16)");
  import->add_option("--encoder", f.encoder_pkl, "OpenAI's encoder.pkl (or any torch.save of that module)")
      ->required()->check(CLI::ExistingFile);
  import->add_option("--decoder", f.decoder_pkl, "OpenAI's decoder.pkl")->required()->check(CLI::ExistingFile);
  import->add_option("-o,--output", f.out, "Folder to write: config.json and vae.safetensors")->required();
  import->add_option("--image-size", f.image_size, "Image side the config records (OpenAI trained at 256)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  import->add_option("-c,--config", f.import_config,
                     "Preset whose training settings the run folder gets, and whose dVAE layout the import is "
                     "compared with")->capture_default_str();
  import->add_flag("--force", f.force, "Replace a model already in --output");
  import->callback([&action] { action = [] { return run_import_openai(f); }; });
}

}  // namespace dalle::cli

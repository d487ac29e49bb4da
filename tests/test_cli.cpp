// End-to-end: the chain a user runs, through the real `dalle` binary.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <filesystem>
#include <fstream>

#include <torch/cuda.h>

#include "dalle/bundle/config.h"
#include "dalle/io/image.h"
#include "dalle/util/fs.h"
#include "test_paths.h"
#include "test_util.h"

using namespace dalle;
namespace fs = std::filesystem;

namespace {

using test::CliRun;
using test::dalle_run;

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

double mean_loss(const std::vector<nlohmann::json>& m, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += m[i]["loss"].get<double>();
  return s / static_cast<double>(to - from);
}

std::string png_text(const std::string& path, const std::string& key) {
  const auto bytes = read_file_bytes(path);
  for (const auto& [k, v] : png_read_text(bytes.data(), bytes.size()))
    if (k == key) return v;
  return "";
}

}  // namespace

TEST(Cli, ShapesToVaeToTokensToPriorToImages) {
  const fs::path dir = test::scratch_dir("e2e");
  const std::string d = dir.string();

  CliRun r = dalle_run("data shapes -n 800 --size 32 -s 1 -o " + d + "/shapes");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "shapes/000799.png"));
  EXPECT_TRUE(fs::exists(dir / "shapes/000799.txt"));

  r = dalle_run("vae train -c tiny -d " + d + "/shapes -o " + d + "/vae --steps 150 -s 1");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* f : {"config.json", "vae.safetensors", "checkpoint.safetensors", "metrics.jsonl"})
    EXPECT_TRUE(fs::exists(dir / "vae" / f)) << f;
  auto vm = read_jsonl(d + "/vae/metrics.jsonl");
  ASSERT_EQ(vm.size(), 150u);
  EXPECT_LT(mean_loss(vm, 140, 150), mean_loss(vm, 0, 10)) << "vae loss did not go down";
  EXPECT_FALSE(fs::is_empty(dir / "vae/recon"));

  // Reconstructions as image-caption pairs: the first 5 images in name order, their captions kept.
  r = dalle_run("vae reconstruct --vae " + d + "/vae -d " + d + "/shapes -n 5 -o " + d + "/recon.png --save-dir " + d +
                "/recon --device auto");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "recon.png"));
  EXPECT_EQ(image_load(d + "/recon/000004.png").width, 32);
  EXPECT_FALSE(fs::exists(dir / "recon/000005.png"));
  EXPECT_EQ(read_file_text(d + "/recon/000004.txt"), read_file_text(d + "/shapes/000004.txt"));

  r = dalle_run("vae encode --vae " + d + "/vae -d " + d + "/shapes -o " + d + "/tokens");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "tokens/shard-000000.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "tokens/shard-000000.captions.jsonl"));

  r = dalle_run("train -c tiny -d " + d + "/tokens -o " + d + "/prior --steps 150 -s 1 --sample-every 100");
  ASSERT_EQ(r.code, 0) << r.output;
  auto pm = read_jsonl(d + "/prior/metrics.jsonl");
  ASSERT_EQ(pm.size(), 150u);
  EXPECT_LT(mean_loss(pm, 140, 150), mean_loss(pm, 0, 10)) << "prior loss did not go down";
  for (const char* key : {"loss_text", "loss_img", "lr", "grad_norm", "tok_per_s", "mfu"})
    EXPECT_TRUE(pm.back().contains(key)) << key;
  EXPECT_TRUE(pm.back().contains("val_loss_img"));
  for (const char* f : {"config.json", "vae.safetensors", "prior.safetensors", "tokenizer.json"})
    EXPECT_TRUE(fs::exists(dir / "prior" / f)) << f;
  EXPECT_TRUE(fs::exists(dir / "prior/samples/step-0000100.png"));
  // Each grid samples the weights of its step, not those of the first grid.
  EXPECT_NE(read_file_bytes(d + "/prior/samples/step-0000100.png"), read_file_bytes(d + "/prior/samples/step-0000150.png"));

  // Loss curves render to a PNG people can look at.
  r = dalle_run("plot " + d + "/prior");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_GT(image_load(d + "/prior/loss.png").width, 200);
  r = dalle_run("plot " + d + "/shapes");
  EXPECT_EQ(r.code, 1) << r.output;

  // The run folder is a bundle: generate from it, twice with the same seed.
  r = dalle_run("generate -p \"a red circle\" -m " + d + "/prior -s 7 -n 2 -o " + d + "/a.png");
  ASSERT_EQ(r.code, 0) << r.output;
  r = dalle_run("generate -p \"a red circle\" -m " + d + "/prior -s 7 -n 2 -o " + d + "/b.png");
  ASSERT_EQ(r.code, 0) << r.output;
  r = dalle_run("generate -p \"a red circle\" -m " + d + "/prior -s 7 -n 2 --cfg-scale 3 --top-k 20 -o " + d +
                "/g.png --device auto");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(png_text(d + "/g.png", "sampler").find("cfg_scale: 3"), std::string::npos);
  // A bundle's `sample` section is what generate uses for the settings not given on the command line.
  std::filesystem::copy(d + "/prior", d + "/guided", std::filesystem::copy_options::recursive);
  nlohmann::json guided = nlohmann::json::parse(read_file_text(d + "/guided/config.json"));
  guided["sample"] = {{"cfg_scale", 2.5}, {"top_k", 7}};
  write_file_atomic(d + "/guided/config.json", guided.dump(2));
  r = dalle_run("generate -p \"a red circle\" -m " + d + "/guided -s 7 -n 2 --top-k 9 -o " + d + "/h.png");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(png_text(d + "/h.png", "sampler").find("top_k: 9, top_p: 1, cfg_scale: 2.5"), std::string::npos)
      << png_text(d + "/h.png", "sampler");
  EXPECT_EQ(read_file_bytes(d + "/a-1.png"), read_file_bytes(d + "/b-1.png"));
  EXPECT_EQ(read_file_bytes(d + "/a.png"), read_file_bytes(d + "/b.png"));
  EXPECT_EQ(png_text(d + "/a-2.png", "prompt"), "a red circle");
  EXPECT_EQ(png_text(d + "/a-2.png", "seed"), "7");
  const Image img = image_load(d + "/a-1.png");
  EXPECT_EQ(img.width, 32);

  // Interrupted and resumed prior training equals the uninterrupted run.
  r = dalle_run("train -c tiny -d " + d + "/tokens -o " + d + "/p10 --steps 10 -s 2 --no-samples");
  ASSERT_EQ(r.code, 0) << r.output;
  r = dalle_run("train -d " + d + "/tokens -o " + d + "/p10 --steps 20 -s 2 --no-samples --resume");
  ASSERT_EQ(r.code, 0) << r.output;
  r = dalle_run("train -c tiny -d " + d + "/tokens -o " + d + "/p20 --steps 20 -s 2 --no-samples");
  ASSERT_EQ(r.code, 0) << r.output;
  auto a = read_jsonl(d + "/p10/metrics.jsonl"), b = read_jsonl(d + "/p20/metrics.jsonl");
  ASSERT_EQ(a.size(), 20u);
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ(a[i]["loss"], b[i]["loss"]) << "step " << i + 1;
  if (!HasFailure()) fs::remove_all(dir);  // keep the artefacts of a failed run for inspection
}

TEST(Cli, UsageErrorsExitTwoRuntimeErrorsExitOne) {
  CliRun r = dalle_run("generate");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--prompt is required"), std::string::npos) << r.output;
  r = dalle_run("frobnicate");
  EXPECT_EQ(r.code, 2);
  r = dalle_run("generate -p x --top-p 7");
  EXPECT_EQ(r.code, 2);
  r = dalle_run("generate -p x -m /nonexistent/bundle");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("/nonexistent/bundle"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Exception raised"), std::string::npos) << "stack trace leaked: " << r.output;
  r = dalle_run("vae train -d /nonexistent/images -o /tmp/dalle_test_never");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("/nonexistent/images"), std::string::npos) << r.output;
  r = dalle_run("train -d " + std::string(DALLE_SOURCE_DIR) + "/configs -o /tmp/dalle_test_never");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("dalle vae encode"), std::string::npos) << "should point at the missing step: " << r.output;
  r = dalle_run("data prepare --input /nonexistent/pairs -o /tmp/dalle_test_never");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("/nonexistent/pairs: no such file or folder"), std::string::npos) << r.output;
  r = dalle_run("data prepare -o /tmp/dalle_test_never");
  EXPECT_EQ(r.code, 2) << "--input is required: " << r.output;
}

// Every subcommand, with a flag of a numeric type that it takes (for the bad-value case).
struct Subcommand {
  const char* name;
  const char* numeric_flag;
};
const Subcommand kSubcommands[] = {
    {"generate", "--top-k"},         {"data shapes", "--count"},    {"data prepare", "--threads"},
    {"data emoji", "--threads"},     {"tokenizer train", "--vocab-size"}, {"tokenizer encode", "--dropout"},
    {"tokenizer decode", nullptr},   {"vae train", "--steps"},      {"vae encode", "--batch"},
    {"vae reconstruct", "--count"},  {"train", "--steps"},          {"rerank train", "--steps"},
    {"info", "--batch"},             {"plot", nullptr},
};

// A mistyped flag is named before any missing required option, in one line, with exit 2.
TEST(Cli, UnknownFlagsAndBadValuesAreNamedFirstInOneLine) {
  for (const Subcommand& c : kSubcommands) {
    CliRun r = dalle_run(std::string(c.name) + " --bogus");
    EXPECT_EQ(r.code, 2) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find("dalle " + std::string(c.name) + ": error: unknown flag or argument: --bogus"),
              std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("required"), std::string::npos) << c.name << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << c.name << ": " << r.output;
    if (!c.numeric_flag) continue;
    r = dalle_run(std::string(c.name) + " " + c.numeric_flag + " abc");
    EXPECT_EQ(r.code, 2) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(std::string(c.numeric_flag).substr(2)), std::string::npos) << c.name << ": " << r.output;
    EXPECT_EQ(r.output.find("required"), std::string::npos) << c.name << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << c.name << ": " << r.output;
  }
  // With nothing wrong but a missing option, that option is what is reported.
  CliRun r = dalle_run("generate -o x.png");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--prompt is required"), std::string::npos) << r.output;
}

// Every command that runs a model takes --device; a device this build cannot serve is a usage
// error in one line, before any work.
TEST(Cli, EveryModelCommandTakesDeviceAndRefusesOneItCannotServe) {
  for (const char* name : {"generate", "vae train", "vae encode", "vae reconstruct", "train", "rerank train",
                           "eval train-judge", "eval shapes", "eval fid", "serve"}) {
    CliRun r = dalle_run(std::string(name) + " --help");
    EXPECT_NE(r.output.find("--device"), std::string::npos) << name;
    r = dalle_run(std::string(name) + " --device gpu0");
    EXPECT_EQ(r.code, 2) << name << ": " << r.output;
    EXPECT_NE(r.output.find("expected cpu, cuda, cuda:N or auto"), std::string::npos) << name << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << name << ": " << r.output;
    if (torch::cuda::is_available()) continue;
    r = dalle_run(std::string(name) + " --device cuda");
    EXPECT_EQ(r.code, 2) << name << ": " << r.output;
    EXPECT_NE(r.output.find("no CUDA"), std::string::npos) << name << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << name << ": " << r.output;
  }
}

TEST(Cli, VersionNamesLibtorchBlasCpuAndCuda) {
  CliRun r = dalle_run("--version");
  EXPECT_EQ(r.code, 0) << r.output;
  for (const char* part : {"dalle.cpp 0.", "libtorch ", "BLAS: ", "AVX512-BF16 ", "CUDA: "})
    EXPECT_NE(r.output.find(part), std::string::npos) << part << " missing from: " << r.output;
  EXPECT_EQ(r.output.find("BLAS: none loaded"), std::string::npos) << r.output;
}

// When stderr is a file, progress is plain lines, at most one per --log-every seconds per bar
// plus its last line, never carriage returns; --quiet writes none.
TEST(Cli, ProgressInALogFileIsRateLimitedPlainLines) {
  const fs::path dir = test::scratch_dir("progress_log");
  const std::string d = dir.string();
  // stderr to a file, as in a training log: its exit status.
  auto run_logged = [&](const std::string& args, const std::string& log) {
    const int status = std::system((std::string(DALLE_BINARY) + " " + args + " >/dev/null 2>" + d + "/" + log).c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  ASSERT_EQ(run_logged("data shapes -n 2000 --size 32 -o " + d + "/shapes -s 1", "shapes.log"), 0);
  const std::string shapes_log = read_file_text(d + "/shapes.log");
  // 2,000 images take well under the default 5 s: one last line, where 11 were written before
  // (then the command's summary line).
  EXPECT_EQ(std::count(shapes_log.begin(), shapes_log.end(), '\n'), 2) << shapes_log;
  EXPECT_NE(shapes_log.find("shapes: 2000/2000 (100%)"), std::string::npos) << shapes_log;

  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(run_logged("vae train -c tiny -d " + d + "/shapes -o " + d + "/vae --steps 60 -t 1 --log-every 1", "vae.log"), 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string log = read_file_text(d + "/vae.log");
  EXPECT_EQ(log.find('\r'), std::string::npos);
  int64_t progress = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) progress += line.find("/s elapsed ") != std::string::npos;
  // Two bars (loading, training) with a last line each, and at most one line a second.
  EXPECT_GE(progress, 2) << log;
  EXPECT_LE(progress, static_cast<int64_t>(seconds) + 2) << seconds << " s:\n" << log;

  ASSERT_EQ(run_logged("vae train -c tiny -d " + d + "/shapes -o " + d + "/vae-q --steps 5 -t 1 --quiet", "q.log"), 0);
  EXPECT_EQ(read_file_text(d + "/q.log"), "");
}

// Peak resident memory of `dalle ARGS` in KiB (the child's own, from wait4), or -1.
static long peak_rss_kib(const std::string& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string cmd = std::string(DALLE_BINARY) + " " + args + " >/dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  struct rusage usage {};
  if (::wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return usage.ru_maxrss;
}

// Training streams its data: peak memory does not grow with the number of images (SPEC-scale
// sets have hundreds of millions). 40,000 images held in memory would add over 100 MiB here.
TEST(Cli, VaeTrainingMemoryDoesNotGrowWithTheDataset) {
  const fs::path dir = test::scratch_dir("rss_shards");
  const std::string d = dir.string();
  ASSERT_EQ(dalle_run("data shapes -n 2000 --size 32 --shards 1000 -o " + d + "/small -s 1 -q").code, 0);
  ASSERT_EQ(dalle_run("data shapes -n 40000 --size 32 --shards 5000 -o " + d + "/large -s 2 -q").code, 0);
  const long small = peak_rss_kib("vae train -c tiny -d " + d + "/small -o " + d + "/run-small --steps 5 -t 1 -q");
  const long large = peak_rss_kib("vae train -c tiny -d " + d + "/large -o " + d + "/run-large --steps 5 -t 1 -q");
  ASSERT_GT(small, 0);
  ASSERT_GT(large, 0);
  std::printf("[          ] peak RSS of vae train --steps 5: %.1f MiB on 2,000 images, %.1f MiB on 40,000\n",
              small / 1024.0, large / 1024.0);
  EXPECT_LT(large - small, 50 * 1024);
}

// A command that fails on its input leaves no output folder behind.
TEST(Cli, FailedTrainingCreatesNoOutputFolder) {
  const fs::path dir = test::scratch_dir("no_output");
  for (const std::string& cmd : {"vae train -d " + dir.string() + "/missing", "train -d " + dir.string() + "/missing",
                                "rerank train -d " + dir.string() + "/missing"}) {
    const CliRun r = dalle_run(cmd + " -o " + dir.string() + "/out");
    EXPECT_EQ(r.code, 1) << cmd << ": " << r.output;
    EXPECT_FALSE(fs::exists(dir / "out")) << cmd;
  }
  // An empty folder: no images to train on, found before the run folder is made.
  fs::create_directories(dir / "empty");
  const CliRun r = dalle_run("vae train -d " + dir.string() + "/empty -o " + dir.string() + "/out");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(Cli, HelpDocumentsEveryCommand) {
  CliRun r = dalle_run("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* cmd : {"generate", "data", "tokenizer", "vae", "train", "info", "plot"})
    EXPECT_NE(r.output.find(cmd), std::string::npos) << cmd;
  r = dalle_run("generate --help");
  for (const char* flag : {"--prompt", "--output", "--seed", "--threads", "--model", "--top-k", "--top-p"})
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
}

TEST(Cli, InfoPrintsThePapersCountsWithoutAllocating) {
  CliRun r = dalle_run("info --config paper");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["vae_encoder_params"], 53786240);
  EXPECT_EQ(j["vae_decoder_params"], 43829766);
  EXPECT_EQ(j["layer_masks"][0], "row");
  EXPECT_EQ(j["layer_masks"][1], "column");
  EXPECT_EQ(j["layer_masks"][63], "conv");
  EXPECT_NEAR(j["prior_params"].get<double>(), 12.1e9, 0.25e9);
  for (const char* key : {"train_flops_per_token", "sample_flops_per_token", "memory_weights_bytes",
                          "memory_optimizer_bytes", "memory_activations_bytes"})
    EXPECT_GT(j[key].get<double>(), 0) << key;
}

// Issue 18: the paper's 1024 ranks at PowerSGD rank 896. Our count gives 83.6%, not the
// paper's "about 86%": the embeddings and heads (0.2B parameters) stay fp32, and the attention
// matrices' (n + m) r / nm is above the MLP's. The paper's rates (83, 85, 86% for r/d = 512/1920,
// 640/2688, 896/3968) fit 1 - 5r/8d: one [4d, d] MLP matrix alone, P and Q in 16 bits.
TEST(Cli, InfoPlansThePapersCommunication) {
  CliRun r = dalle_run("info --config paper --world-size 1024 --powersgd-rank 896");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  const auto& d = j["distributed"];
  EXPECT_EQ(d["world_size"], 1024);
  EXPECT_EQ(d["powersgd_rank"], 896);
  EXPECT_EQ(d["compressed_matrices"], 4 * 64);
  EXPECT_EQ(d["powersgd_rank_capped_matrices"], 0);
  EXPECT_EQ(d["bandwidth_gbps"], 100.0);
  const double params = j["prior_params"].get<double>();
  const double full = d["comm_bytes_per_step_uncompressed"].get<double>();
  EXPECT_DOUBLE_EQ(full, 2.0 * 1023 / 1024 * 4 * params);
  EXPECT_NEAR(d["powersgd_compression"].get<double>(), 0.8355, 0.0005);
  EXPECT_NEAR(d["comm_bytes_per_step_powersgd"].get<double>() / full, 1 - d["powersgd_compression"].get<double>(), 1e-12);
  EXPECT_NEAR(d["comm_seconds_per_step_uncompressed"].get<double>(), full * 8 / 100e9, 1e-9);
  EXPECT_NEAR(d["comm_seconds_per_step_powersgd"].get<double>(), 1.2928, 1e-4);
  // Without the flags: one rank sends nothing, and PowerSGD's figures are absent.
  r = dalle_run("info --config paper");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto one = nlohmann::json::parse(r.output)["distributed"];
  EXPECT_EQ(one["world_size"], 1);
  EXPECT_EQ(one["comm_bytes_per_step_uncompressed"], 0.0);
  EXPECT_TRUE(one["powersgd_compression"].is_null());
  r = dalle_run("info --help");
  for (const char* flag : {"--world-size", "--powersgd-rank", "--bandwidth-gbps"})
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
}

// The conv mask is local only while its kernel is narrower than the grid: presets scale it with
// the grid (the paper's 11 on 32x32), and `info` warns about a kernel as wide as the grid.
TEST(Cli, InfoWarnsWhenTheConvKernelSpansTheGrid) {
  for (const char* preset : {"tiny", "default", "small", "vae64", "paper"}) {
    CliRun r = dalle_run(std::string("info --config ") + preset);
    ASSERT_EQ(r.code, 0) << r.output;
    const auto j = nlohmann::json::parse(r.output);  // no warning line before the JSON
    EXPECT_TRUE(j["warnings"].empty()) << preset;
    EXPECT_LT(j["conv_mask_coverage"].get<double>(), 0.35) << preset;
  }
  const fs::path dir = test::scratch_dir("wide_kernel");
  ModelConfig c = config_load(std::string(DALLE_SOURCE_DIR) + "/configs/tiny.json");
  c.prior.conv_kernel = 11;  // on an 8x8 grid
  config_save((dir / "wide.json").string(), c);
  CliRun r = dalle_run("info --config " + (dir / "wide.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("warning: prior.conv_kernel 11 spans the whole 8-wide image grid", 0), 0u) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  ASSERT_EQ(j["warnings"].size(), 1u);
  EXPECT_NE(j["warnings"][0].get<std::string>().find("close to dense attention"), std::string::npos);
  EXPECT_GT(j["conv_mask_coverage"].get<double>(), 0.6);
}

TEST(Cli, BrokenBundleFilesAreClearErrors) {
  const fs::path dir = test::scratch_dir("broken_bundle") / "bundle";
  fs::copy(fs::path(DALLE_SOURCE_DIR) / "models/default", dir, fs::copy_options::recursive);
  const std::string d = dir.string();
  // Truncated weights.
  fs::resize_file(dir / "prior.safetensors", fs::file_size(dir / "prior.safetensors") / 2);
  CliRun r = dalle_run("generate -p x -m " + d + " -o " + d + "/x.png");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("prior.safetensors"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("truncated"), std::string::npos) << r.output;
  // A config that does not match the weights: every mismatch is named.
  fs::copy_file(fs::path(DALLE_SOURCE_DIR) / "models/default/prior.safetensors", dir / "prior.safetensors",
                fs::copy_options::overwrite_existing);
  auto config = nlohmann::json::parse(read_file_text(d + "/config.json"));
  config["prior"]["d_model"] = 128;
  write_file_atomic(d + "/config.json", config.dump());
  r = dalle_run("generate -p x -m " + d + " -o " + d + "/x.png");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("mismatch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("text_emb.weight"), std::string::npos) << r.output;
  // Not JSON at all.
  write_file_atomic(d + "/config.json", std::string("{ not json"));
  r = dalle_run("generate -p x -m " + d + " -o " + d + "/x.png");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("config.json"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "x.png"));
}

TEST(Cli, ShippedDefaultModelMakesAnImageFromACaption) {
  const std::string out = (test::scratch_dir("default") / "out.png").string();
  CliRun r = dalle_run("generate -p \"a red circle\" -s 1 -n 1 -o " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(png_text(out, "prompt"), "a red circle");
  const Image img = image_load(out);
  EXPECT_EQ(img.width, 64);  // the shipped model draws 64x64
}

TEST(Cli, GenerateWithTheSameSeedWritesIdenticalRerankedFiles) {
  // -t 1 throughout: these models are too small to gain from a second thread, and on a loaded
  // machine an OpenMP region waits for its descheduled second thread.
  const fs::path dir = test::scratch_dir("generate_seed");
  const std::string a = (dir / "a.png").string(), b = (dir / "b.png").string();
  CliRun r = dalle_run("generate -t 1 -p \"a small blue square\" -n 8 -k 4 -s 7 -o " + a + " --json");
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_EQ(dalle_run("generate -t 1 -p \"a small blue square\" -n 8 -k 4 -s 7 -o " + b).code, 0);
  EXPECT_EQ(read_file_bytes(a), read_file_bytes(b));
  for (int i = 1; i <= 4; ++i) {
    const std::string name = "-" + std::to_string(i) + ".png";
    EXPECT_EQ(read_file_bytes((dir / ("a" + name)).string()), read_file_bytes((dir / ("b" + name)).string())) << name;
  }
  EXPECT_FALSE(fs::exists(dir / "a-5.png"));
  EXPECT_EQ(png_text(a, "prompt"), "a small blue square");
  EXPECT_EQ(png_text((dir / "a-1.png").string(), "prompt"), "a small blue square");
  EXPECT_EQ(png_text((dir / "a-1.png").string(), "seed"), "7");
  EXPECT_NE(png_text((dir / "a-1.png").string(), "model").find("default"), std::string::npos);
  // --json lists the kept images, best rerank score first (the shipped model has a reranker).
  const size_t open = r.output.find("{\n"), close = r.output.rfind('}');
  ASSERT_NE(open, std::string::npos) << r.output;
  const nlohmann::json report = nlohmann::json::parse(r.output.substr(open, close - open + 1));
  ASSERT_EQ(report["images"].size(), 4u);
  EXPECT_TRUE(report["reranked"].get<bool>());
  EXPECT_EQ(report["images"][0]["path"], (dir / "a-1.png").string());
  EXPECT_GE(report["images"][0]["score"].get<double>(), report["images"][3]["score"].get<double>());
  EXPECT_EQ(png_text((dir / "a-1.png").string(), "rerank_score").substr(0, 4),
            std::to_string(report["images"][0]["score"].get<double>()).substr(0, 4));
}

TEST(Cli, GenerateFromAnImagePromptAndBadFlagsAreClearErrors) {
  const fs::path dir = test::scratch_dir("generate_init");
  const std::string src = (dir / "src.png").string();
  ASSERT_EQ(dalle_run("generate -t 1 -p \"a red circle\" -n 1 -s 3 -o " + src).code, 0);
  CliRun r = dalle_run("generate -t 1 -p \"a red circle\" -n 2 -k 1 -s 3 --init-image " + src + " --init-rows 4 -o " +
                       (dir / "half.png").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(png_text((dir / "half.png").string(), "init_image"), "src.png");

  r = dalle_run("generate -t 1 -p x -n 2 -k 4 -o " + (dir / "x.png").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("K must be at most N"), std::string::npos) << r.output;
  r = dalle_run("generate -t 1 -p x --init-image " + src + " --init-rows 16 -o " + (dir / "x.png").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("init rows must be in 1..15"), std::string::npos) << r.output;
  r = dalle_run("generate -t 1 -p x --init-image " + (dir / "missing.png").string() + " --init-rows 2 -o " +
                (dir / "x.png").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("missing.png"), std::string::npos) << r.output;
  r = dalle_run("generate -t 1 -p x --init-rows 2 -o " + (dir / "x.png").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("--init-rows needs --init-image"), std::string::npos) << r.output;
  r = dalle_run("generate -t 1 -p x --init-image " + src + " -o " + (dir / "x.png").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("needs --init-rows"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "x.png"));
}

TEST(Cli, RerankTrainReportsHeldOutRetrieval) {
  const fs::path dir = test::scratch_dir("rerank_cli");
  const std::string d = dir.string();
  ASSERT_EQ(dalle_run("data shapes -n 300 --size 32 -s 2 -o " + d + "/shapes").code, 0);
  CliRun r = dalle_run("rerank train -t 1 -c tiny -d " + d + "/shapes -o " + d + "/run --steps 20 -s 1 --tokenizer " +
                       std::string(DALLE_SOURCE_DIR) + "/models/default/tokenizer.json");
  ASSERT_EQ(r.code, 0) << r.output;
  // rerank.val_fraction (0.1) of the 300 pairs are held out by name: 34 with this seed's files.
  EXPECT_NE(r.output.find("retrieval over 34 captions, pools of 34 candidates: top-1"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir / "run" / "rerank.safetensors"));
  EXPECT_EQ(read_jsonl(d + "/run/metrics.jsonl").size(), 20u);
  // A second run into the same folder must not clobber it.
  r = dalle_run("rerank train -t 1 -c tiny -d " + d + "/shapes -o " + d + "/run --steps 20");
  EXPECT_EQ(r.code, 1);
  // Resuming continues to the new step count.
  r = dalle_run("rerank train -t 1 -d " + d + "/shapes -o " + d + "/run --steps 25 --resume");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_jsonl(d + "/run/metrics.jsonl").size(), 25u);
}

TEST(Cli, TokenizerEncodesAndDecodesStdinLineByLine) {
  const fs::path dir = test::scratch_dir("tokenizer_cli");
  const std::string bpe = std::string(DALLE_TEST_DATA_DIR) + "/bpe";
  const std::string corpus = bpe + "/corpus.txt", ids = (dir / "ids.txt").string();
  // GPT-2's folder: the ids of tiktoken for every line, empty lines included.
  CliRun r = dalle_run("tokenizer encode --tokenizer " + bpe + "/gpt2 < " + corpus + " > " + ids);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(read_file_text(ids) == read_file_text(bpe + "/gpt2-ids.txt")) << "ids differ from tiktoken's";
  const std::string text = (dir / "text.txt").string();
  r = dalle_run("tokenizer decode --tokenizer " + bpe + "/hf-gpt2/tokenizer.json < " + ids + " > " + text);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(read_file_text(text) == read_file_text(corpus)) << "decode(encode(corpus)) != corpus";
  // Dropout: seeded, and a different tokenisation of the same text.
  const std::string d1 = (dir / "d1.txt").string(), d2 = (dir / "d2.txt").string();
  for (const std::string& out : {d1, d2})
    ASSERT_EQ(dalle_run("tokenizer encode --tokenizer " + bpe + "/gpt2 --dropout 0.1 -s 5 < " + corpus + " > " + out).code, 0);
  EXPECT_EQ(read_file_text(d1), read_file_text(d2));
  EXPECT_NE(read_file_text(d1), read_file_text(ids));
  // Training writes a tokenizer the other commands read.
  const std::string tok = (dir / "tok.json").string();
  r = dalle_run("tokenizer train -i " + corpus + " --vocab-size 700 -o " + tok);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("700 ids"), std::string::npos) << r.output;
  r = dalle_run("tokenizer encode --tokenizer " + tok + " < " + corpus + " > " + ids);
  ASSERT_EQ(r.code, 0) << r.output;
  // Bad input: a missing tokenizer, a word that is not an id, an id outside the vocabulary.
  r = dalle_run("tokenizer encode --tokenizer " + (dir / "missing.json").string() + " < " + corpus);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("missing.json"), std::string::npos) << r.output;
  const std::string bad = (dir / "bad.txt").string();
  write_file_atomic(bad, "1 2 x3\n");
  r = dalle_run("tokenizer decode --tokenizer " + tok + " < " + bad);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("line 1: 'x3' is not a token id"), std::string::npos) << r.output;
  write_file_atomic(bad, "1 99999\n");
  r = dalle_run("tokenizer decode --tokenizer " + tok + " < " + bad);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("outside the vocabulary"), std::string::npos) << r.output;
}

// dalle serve: the model loaded once behind an OpenAI-style images API, a job queue and a web page.
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/command.h"
#include "dalle/bundle/bundle.h"
#include "dalle/serve/server.h"
#include "dalle/util/device.h"
#include "dalle/util/error.h"

namespace dalle::cli {

namespace {

struct ServeFlags {
  std::string model;
  std::string device = "cpu";
  ServeOptions options;
  int threads = 0;
  std::string weights;
};

int run_serve(ServeFlags& f) {
  serve_block_signals();  // before libtorch starts its thread pools: SIGINT/SIGTERM drain the server
  apply_threads(f.threads);
  if (f.options.api_key.empty())
    if (const char* key = std::getenv("DALLE_API_KEY")) f.options.api_key = key;
  const std::string model = f.model.empty() ? default_model_path() : f.model;
  Bundle bundle = bundle_load(model, weights_choice(f.weights), device_from_name(f.device));
  f.options.model_label = bundle.config.name;
  const int size = bundle.config.vae.image_size;
  f.options.on_listening = [&](const std::string& host, int port) {
    std::fprintf(stderr,
                 "serve: listening on http://%s:%d (model %s from %s: %dx%d images, %s weights on %s, %s; queue %d, %s); "
                 "Ctrl+C stops\n",
                 host.c_str(), port, bundle.config.name.c_str(), model.c_str(), size, size,
                 weight_format_name(bundle.weights).c_str(), bundle.device.str().c_str(),
                 bundle.reranker ? "reranked" : "no reranker", f.options.max_queue,
                 f.options.api_key.empty() ? "no API key" : "API key required");
  };
  serve(bundle, f.options);
  return 0;
}

}  // namespace

void register_serve(CLI::App& app, Action& action) {
  static ServeFlags f;
  ServeOptions& o = f.options;
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve a model over HTTP: OpenAI's POST /v1/images/generations, jobs with progress and cancel, a web page");
  cmd->add_option("-m,--model", f.model, "Model bundle folder (default: the shipped models/default)");
  cmd->add_option("--host", o.host,
                  "Address to listen on: 127.0.0.1 serves this machine only; 0.0.0.0 every network (use --api-key)")
      ->capture_default_str();
  cmd->add_option("--port", o.port, "Port (0: any free port, printed at start)")->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("--max-queue", o.max_queue, "Jobs that may wait behind the running one; more get 429 with Retry-After")
      ->capture_default_str()->check(CLI::Range(1, 10000));
  cmd->add_option("--api-key", o.api_key,
                  "Require 'Authorization: Bearer KEY' on every /v1/ route (or set DALLE_API_KEY, which keeps the key "
                  "out of the process list)");
  cmd->add_option("--keep-jobs", o.keep_jobs, "Finished jobs whose images stay downloadable (older ones are forgotten)")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--max-body", o.limits.max_body_bytes, "Largest request body in bytes (413 beyond)")
      ->capture_default_str()->check(CLI::Range(256, 1 << 24));
  cmd->add_option("--max-prompt", o.limits.max_prompt_chars, "Longest prompt in bytes")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--max-n", o.limits.max_n, "Most images one request may ask for (n)")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--max-candidates", o.limits.max_candidates, "Largest rerank pool one request may ask for (candidates)")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  add_weights_option(cmd, f.weights);
  add_device_option(cmd, f.device, "the model");
  add_threads_option(cmd, f.threads);
  cmd->callback([&action] { action = [] { return run_serve(f); }; });
}

}  // namespace dalle::cli

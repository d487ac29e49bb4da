// dalle: type a caption, get images. Thin CLI over the dalle library.
#include <c10/util/Exception.h>

#include <cstdio>

#include "cli/command.h"
#include "dalle/dist/process_group.h"
#include "dalle/util/allocator.h"
#include "dalle/util/build_info.h"
#include "dalle/util/error.h"

namespace {

// "dalle vae train": the command line's deepest subcommand that was parsed.
std::string command_path(CLI::App& app) {
  std::string path = "dalle";
  for (CLI::App* cmd = &app;;) {
    const std::vector<CLI::App*> parsed = cmd->get_subcommands();
    if (parsed.empty()) return path;
    cmd = parsed.front();
    path += " " + cmd->get_name();
  }
}

// Makes every required option of `app` and its subcommands optional, recording which it changed.
void relax_required(CLI::App& app, std::vector<CLI::Option*>& relaxed) {
  for (CLI::Option* o : app.get_options()) {
    if (!o->get_required()) continue;
    o->required(false);
    relaxed.push_back(o);
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) relax_required(*sub, relaxed);
}

// CLI11 checks for missing required options before unknown ones, so `generate --bogus` would
// say "--prompt is required". A user who mistyped a flag must hear about that flag: when the
// error is a missing option, the line is parsed again with nothing required, and an error that
// parse finds (an unknown flag, a bad value) is the one reported.
std::string parse_error_message(CLI::App& app, const CLI::ParseError& first, int argc, char** argv) {
  std::string message = first.what();
  std::string where = command_path(app);
  if (dynamic_cast<const CLI::RequiredError*>(&first)) {
    std::vector<CLI::Option*> relaxed;
    relax_required(app, relaxed);
    app.clear();
    try {
      app.parse(argc, argv);
    } catch (const CLI::RequiredError&) {
    } catch (const CLI::ParseError& second) {
      message = second.what();
      where = command_path(app);
    }
    for (CLI::Option* o : relaxed) o->required(true);
  }
  for (const char* prefix : {"The following arguments were not expected: ", "The following argument was not expected: "})
    if (message.rfind(prefix, 0) == 0) message = "unknown flag or argument: " + message.substr(std::string(prefix).size());
  return where + ": error: " + message + " (see `" + where + " --help`)";
}

}  // namespace

int main(int argc, char** argv) {
  dalle::reuse_freed_memory(true);  // large tensors reuse warm memory (util/allocator.h)
  CLI::App app{"dalle.cpp " DALLE_VERSION " - DALL-E (zero-shot text-to-image generation) in C++", "dalle"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return dalle::build_info(); },
                       "Print dalle's and libtorch's versions, the BLAS in use, CPU features and CUDA, and exit");
  app.footer("Run `dalle COMMAND --help` for a command's flags.");
  dalle::cli::Action action;
  dalle::cli::register_generate(app, action);
  dalle::cli::register_data(app, action);
  dalle::cli::register_tokenizer(app, action);
  dalle::cli::register_vae(app, action);
  dalle::cli::register_train(app, action);
  dalle::cli::register_rerank(app, action);
  dalle::cli::register_eval(app, action);
  dalle::cli::register_serve(app, action);
  dalle::cli::register_convert(app, action);
  dalle::cli::register_quantize(app, action);
  dalle::cli::register_info(app, action);
  dalle::cli::register_plot(app, action);
  if (argc == 1) {
    std::fprintf(stderr, "%s", app.help().c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s\n", parse_error_message(app, e, argc, argv).c_str());
    return 2;
  }
  dalle::cli::apply_progress_options();
  if (!action) {
    std::fprintf(stderr, "dalle: error: missing command (see `dalle --help`)\n");
    return 2;
  }
  // In a data-parallel run every message names its rank (a DistError names it already).
  auto prefix = [](const std::exception& e) {
    return dynamic_cast<const dalle::DistError*>(&e) ? "" : dalle::cli::rank_prefix().c_str();
  };
  try {
    return action();
  } catch (const dalle::Error& e) {
    std::fprintf(stderr, "dalle: error: %s%s\n", prefix(e), e.what());
  } catch (const c10::Error& e) {
    // libtorch errors carry a backtrace; the first line is the message.
    std::string msg = e.what_without_backtrace();
    std::fprintf(stderr, "dalle: error: %s%s\n", prefix(e), msg.substr(0, msg.find('\n')).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dalle: error: %s%s\n", prefix(e), e.what());
  }
  return 1;
}

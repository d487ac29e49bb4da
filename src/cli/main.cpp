// dalle: type a caption, get images. Thin CLI over the dalle library.
#include <c10/util/Exception.h>

#include <cstdio>

#include "cli/command.h"
#include "dalle/util/error.h"

int main(int argc, char** argv) {
  CLI::App app{"dalle.cpp " DALLE_VERSION " - DALL-E (zero-shot text-to-image generation) in C++", "dalle"};
  app.require_subcommand(1);
  app.set_version_flag("--version", DALLE_VERSION);
  app.footer("Run `dalle COMMAND --help` for a command's flags.");
  dalle::cli::Action action;
  dalle::cli::register_generate(app, action);
  dalle::cli::register_data(app, action);
  dalle::cli::register_tokenizer(app, action);
  dalle::cli::register_vae(app, action);
  dalle::cli::register_train(app, action);
  dalle::cli::register_rerank(app, action);
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
    std::fprintf(stderr, "dalle: error: %s\nRun with --help for usage.\n", e.what());
    return 2;
  }
  if (!action) {
    std::fprintf(stderr, "dalle: error: missing command\nRun with --help for usage.\n");
    return 2;
  }
  try {
    return action();
  } catch (const dalle::Error& e) {
    std::fprintf(stderr, "dalle: error: %s\n", e.what());
  } catch (const c10::Error& e) {
    // libtorch errors carry a backtrace; the first line is the message.
    std::string msg = e.what_without_backtrace();
    std::fprintf(stderr, "dalle: error: %s\n", msg.substr(0, msg.find('\n')).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dalle: error: %s\n", e.what());
  }
  return 1;
}

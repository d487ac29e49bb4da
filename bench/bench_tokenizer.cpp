// Tokenizer encoding speed: one thread, every line of a text file, with a fresh tokenizer (its
// piece cache starts empty). Prints MB/s. bench/tokenizer_vs_tiktoken.sh runs it beside tiktoken
// on the same text and prints the ratio.
// Usage: bench_tokenizer TEXT_FILE [TOKENIZER]   (default tokenizer: tests/data/bpe/gpt2)
#include <chrono>
#include <cstdio>

#include "dalle/text/tokenizer.h"
#include "dalle/util/fs.h"

using namespace dalle;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_tokenizer TEXT_FILE [TOKENIZER]\n");
    return 2;
  }
  try {
    const std::string text = read_file_text(argv[1]);
    const Tokenizer tok = Tokenizer::load(argc > 2 ? argv[2] : "tests/data/bpe/gpt2");
    const auto t0 = std::chrono::steady_clock::now();
    size_t ids = 0, lines = 0;
    for (size_t start = 0; start < text.size();) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) nl = text.size();
      ids += tok.encode(std::string_view(text).substr(start, nl - start)).size();
      ++lines;
      start = nl + 1;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("dalle.cpp  %8.2f MB/s  (%zu bytes, %zu lines, %zu ids, %.2f s)\n", text.size() / s / 1e6,
                text.size(), lines, ids, s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
    return 1;
  }
  return 0;
}

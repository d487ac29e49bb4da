// dalle tokenizer: learn a byte-level BPE vocabulary from captions; encode and decode lines.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/command.h"
#include "dalle/data/image_folder.h"
#include "dalle/text/tokenizer.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/util/progress.h"

namespace dalle::cli {

namespace {

struct TokenizerFlags {
  std::string input;
  std::string output;
  std::string tokenizer;
  int vocab_size = 16384;
  int min_frequency = 2;
  bool keep_case = false;
  bool no_nfc = false;
  int threads = 0;
  double dropout = 0;
  int64_t seed = 0;
};

// Captions from a text file (one per line) or every .txt file under a folder.
std::vector<std::string> read_corpus(const std::string& input) {
  std::vector<std::string> lines;
  if (is_directory(input)) {
    std::vector<std::string> files;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(input))
      if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());  // the vocabulary must not depend on directory order
    for (const auto& f : files) {
      auto l = read_caption_lines(f);
      lines.insert(lines.end(), std::make_move_iterator(l.begin()), std::make_move_iterator(l.end()));
    }
  } else {
    lines = read_caption_lines(input);
  }
  if (lines.empty()) throw file_error(input, "no captions found");
  return lines;
}

double peak_rss_mib() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_maxrss) / 1024.0;
}

int run_train(const TokenizerFlags& f) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto corpus = read_corpus(f.input);
  TokenizerTrainOptions o;
  o.vocab_size = f.vocab_size;
  o.bpe.min_frequency = f.min_frequency;
  o.bpe.lowercase = !f.keep_case;
  o.bpe.nfc = !f.no_nfc;
  o.bpe.threads = f.threads;
  ProgressBar bar("merges", std::max(1, f.vocab_size - 257), "merge");
  o.bpe.progress = [&](int done, int) { bar.update(done); };
  const Tokenizer tok = Tokenizer::train(corpus, o);
  bar.finish();
  tok.save(f.output);
  std::fprintf(stderr, "tokenizer: %d ids (%zu merges) from %zu captions in %s, peak memory %.0f MiB -> %s\n",
               tok.vocab_size(), tok.spec().vocab.merges.size(), corpus.size(),
               format_duration(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()).c_str(),
               peak_rss_mib(),
               f.output.c_str());
  if (tok.vocab_size() < f.vocab_size)
    std::fprintf(stderr, "tokenizer: stopped early: no pair occurs %d or more times\n", f.min_frequency);
  return 0;
}

// Buffered stdout: millions of short lines.
class LineWriter {
 public:
  ~LineWriter() { flush(); }
  std::string& buffer() { return buf_; }
  void end_line() {
    buf_ += '\n';
    if (buf_.size() > (1 << 20)) flush();
  }
  void flush() {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), stdout) != buf_.size())
      throw Error("cannot write to standard output");
    buf_.clear();
    std::fflush(stdout);
  }

 private:
  std::string buf_;
};

int run_encode(const TokenizerFlags& f) {
  const Tokenizer tok = Tokenizer::load(f.tokenizer);
  std::mt19937_64 rng(static_cast<uint64_t>(f.seed));
  std::ios::sync_with_stdio(false);
  LineWriter out;
  std::string line;
  char num[16];
  while (std::getline(std::cin, line)) {
    const auto ids = f.dropout > 0 ? tok.encode(line, f.dropout, rng) : tok.encode(line);
    for (size_t i = 0; i < ids.size(); ++i) {
      const int n = std::snprintf(num, sizeof(num), i ? " %d" : "%d", ids[i]);
      out.buffer().append(num, static_cast<size_t>(n));
    }
    out.end_line();
  }
  return 0;
}

int run_decode(const TokenizerFlags& f) {
  const Tokenizer tok = Tokenizer::load(f.tokenizer);
  std::ios::sync_with_stdio(false);
  LineWriter out;
  std::string line;
  int64_t lineno = 0;
  std::vector<int> ids;
  while (std::getline(std::cin, line)) {
    ++lineno;
    ids.clear();
    const char* p = line.c_str();
    while (*p) {
      while (*p == ' ' || *p == '\t' || *p == '\r') ++p;
      if (!*p) break;
      char* end = nullptr;
      errno = 0;
      const long id = std::strtol(p, &end, 10);
      if (end == p || errno || (*end && *end != ' ' && *end != '\t' && *end != '\r') || id < 0 || id > INT32_MAX)
        throw Error("stdin line " + std::to_string(lineno) + ": '" + std::string(p, std::strcspn(p, " \t\r")) +
                    "' is not a token id");
      ids.push_back(static_cast<int>(id));
      p = end;
    }
    try {
      out.buffer() += tok.decode(ids);
    } catch (const Error& e) {
      throw Error("stdin line " + std::to_string(lineno) + ": " + e.what());
    }
    out.end_line();
  }
  return 0;
}

}  // namespace

void register_tokenizer(CLI::App& app, Action& action) {
  static TokenizerFlags f;
  CLI::App* cmd = app.add_subcommand("tokenizer", "Caption tokenizer (byte-level BPE): train, encode, decode");
  cmd->require_subcommand(1);
  const std::string formats =
      "Tokenizer: our JSON, a Hugging Face tokenizer.json (byte-level BPE), or a folder with GPT-2's "
      "encoder.json + vocab.bpe; detected from the contents";

  CLI::App* train = cmd->add_subcommand("train", "Learn a byte-level BPE vocabulary from captions");
  train->add_option("-i,--input", f.input, "Caption file (one per line) or folder of .txt files (searched recursively)")
      ->required();
  train->add_option("--vocab-size", f.vocab_size,
                    "Ids in all: 256 bytes + merges + 1 special token <|endoftext|> (paper: 16384)")
      ->capture_default_str()->check(CLI::Range(257, 1 << 20));
  train->add_option("--min-frequency", f.min_frequency, "Stop early when no pair occurs this often")
      ->capture_default_str()->check(CLI::PositiveNumber);
  train->add_flag("--keep-case", f.keep_case, "Do not lowercase captions (the paper lowercases)");
  train->add_flag("--no-nfc", f.no_nfc, "Do not apply Unicode NFC before lowercasing");
  train->add_option("-o,--output", f.output, "Tokenizer JSON to write")->required();
  add_threads_option(train, f.threads);
  add_progress_options(train);
  train->callback([&action] { action = [] { return run_train(f); }; });

  CLI::App* encode = cmd->add_subcommand(
      "encode", "Read lines on stdin; print each line's ids separated by spaces (an empty line for an empty one)");
  encode->add_option("--tokenizer", f.tokenizer, formats)->required();
  encode->add_option("--dropout", f.dropout, "BPE dropout: skip each applicable merge with this probability "
                                             "(paper: 0.1 in training, 0 at inference)")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  encode->add_option("-s,--seed", f.seed, "Random seed for dropout (same seed, same ids)")->capture_default_str();
  encode->callback([&action] { action = [] { return run_encode(f); }; });

  CLI::App* decode = cmd->add_subcommand("decode", "Read lines of space-separated ids on stdin; print their text");
  decode->add_option("--tokenizer", f.tokenizer, formats)->required();
  decode->callback([&action] { action = [] { return run_decode(f); }; });
}

}  // namespace dalle::cli

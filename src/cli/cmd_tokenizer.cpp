// dalle tokenizer: learn a caption vocabulary, encode and decode lines.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/command.h"
#include "dalle/data/image_folder.h"
#include "dalle/text/tokenizer.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle::cli {

namespace {

struct TokenizerFlags {
  std::string input;
  std::string output;
  std::string tokenizer;
  int vocab_size = 512;
};

// Captions from a text file (one per line) or every .txt file in a folder.
std::vector<std::string> read_corpus(const std::string& input) {
  std::vector<std::string> lines;
  if (is_directory(input)) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(input))
      if (entry.is_regular_file() && entry.path().extension() == ".txt") {
        auto l = read_caption_lines(entry.path().string());
        lines.insert(lines.end(), l.begin(), l.end());
      }
  } else {
    lines = read_caption_lines(input);
  }
  if (lines.empty()) throw file_error(input, "no captions found");
  return lines;
}

int run_train(const TokenizerFlags& f) {
  const auto corpus = read_corpus(f.input);
  Tokenizer tok = Tokenizer::train(corpus, f.vocab_size);
  tok.save(f.output);
  std::fprintf(stderr, "tokenizer: %d ids from %zu captions -> %s\n", tok.vocab_size(), corpus.size(), f.output.c_str());
  return 0;
}

int run_encode(const TokenizerFlags& f) {
  const Tokenizer tok = Tokenizer::load(f.tokenizer);
  std::string line;
  while (std::getline(std::cin, line)) {
    const auto ids = tok.encode(line);
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
    std::printf("\n");
  }
  return 0;
}

int run_decode(const TokenizerFlags& f) {
  const Tokenizer tok = Tokenizer::load(f.tokenizer);
  std::string line;
  int64_t lineno = 0;
  while (std::getline(std::cin, line)) {
    ++lineno;
    std::istringstream in(line);
    std::vector<int> ids;
    std::string word;
    while (in >> word) {
      try {
        size_t used = 0;
        const int id = std::stoi(word, &used);
        if (used != word.size()) throw std::invalid_argument(word);
        ids.push_back(id);
      } catch (const std::exception&) {
        throw Error("stdin line " + std::to_string(lineno) + ": '" + word + "' is not a token id");
      }
    }
    std::printf("%s\n", tok.decode(ids).c_str());
  }
  return 0;
}

}  // namespace

void register_tokenizer(CLI::App& app, Action& action) {
  static TokenizerFlags f;
  CLI::App* cmd = app.add_subcommand("tokenizer", "Caption tokenizer: train, encode, decode");
  cmd->require_subcommand(1);
  CLI::App* train = cmd->add_subcommand("train", "Learn a vocabulary from captions");
  train->add_option("-i,--input", f.input, "Caption file (one per line) or folder of .txt files")->required();
  train->add_option("--vocab-size", f.vocab_size, "Vocabulary size")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  train->add_option("-o,--output", f.output, "Tokenizer JSON to write")->required();
  train->callback([&action] { action = [] { return run_train(f); }; });
  CLI::App* encode = cmd->add_subcommand("encode", "Read lines on stdin, print their token ids");
  encode->add_option("--tokenizer", f.tokenizer, "Tokenizer file")->required();
  encode->callback([&action] { action = [] { return run_encode(f); }; });
  CLI::App* decode = cmd->add_subcommand("decode", "Read lines of token ids on stdin, print their text");
  decode->add_option("--tokenizer", f.tokenizer, "Tokenizer file")->required();
  decode->callback([&action] { action = [] { return run_decode(f); }; });
}

}  // namespace dalle::cli

// One exception type for every failure a user can cause (bad file, bad flag value, corrupt
// data). It is thrown once, with context, and reported by the CLI as a single line.
#pragma once
#include <stdexcept>
#include <string>

namespace dalle {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// "path: problem" — the shape of every file-related error message.
inline Error file_error(const std::string& path, const std::string& problem) {
  return Error(path + ": " + problem);
}

}  // namespace dalle

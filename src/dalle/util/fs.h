// Small file-system helpers: whole-file reads and atomic writes (temp file, fsync, rename),
// so a crash mid-write never leaves a truncated checkpoint or bundle file behind.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dalle {

std::vector<uint8_t> read_file_bytes(const std::string& path);
std::string read_file_text(const std::string& path);

// Writes `size` bytes to `path` atomically: `path.tmp`, fsync, rename, fsync of the folder.
void write_file_atomic(const std::string& path, const void* data, size_t size);
inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

void make_dirs(const std::string& path);
bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
std::string path_join(const std::string& a, const std::string& b);

}  // namespace dalle

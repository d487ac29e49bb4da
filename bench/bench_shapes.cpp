// Shapes dataset generation rate: render only, render + PNG encode, and the full write to disk,
// on one thread and on all cores, in one run. Usage: bench_shapes [count] [size]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "dalle/data/shapes.h"
#include "dalle/io/image.h"
#include "dalle/util/threads.h"

using namespace dalle;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t count = argc > 1 ? std::atoll(argv[1]) : 5000;
  const int size = argc > 2 ? std::atoi(argv[2]) : 64;
  ShapesOptions o;
  o.count = count;
  o.size = size;

  auto t0 = std::chrono::steady_clock::now();
  size_t bytes = 0;
  for (int64_t i = 0; i < count; ++i) bytes += shapes_render(i, o).image.pixels.size();
  const double render = count / seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < count; ++i) bytes += image_encode_png(shapes_render(i, o).image).size();
  const double encode = count / seconds_since(t0);

  const auto dir = std::filesystem::temp_directory_path() / "dalle_bench_shapes";
  std::filesystem::remove_all(dir);
  o.threads = 1;
  t0 = std::chrono::steady_clock::now();
  shapes_write(dir.string(), o);
  const double write1 = count / seconds_since(t0);
  std::filesystem::remove_all(dir);
  o.threads = default_thread_count();
  t0 = std::chrono::steady_clock::now();
  shapes_write(dir.string(), o);
  const double write_all = count / seconds_since(t0);
  std::filesystem::remove_all(dir);

  std::printf("shapes %dx%d, %lld images (checksum %zu)\n", size, size, static_cast<long long>(count), bytes);
  std::printf("  render only, 1 thread:           %8.0f img/s\n", render);
  std::printf("  render + PNG encode, 1 thread:   %8.0f img/s\n", encode);
  std::printf("  full write (png+txt), 1 thread:  %8.0f img/s\n", write1);
  std::printf("  full write, %d threads:           %8.0f img/s  (%.2fx of 1 thread)\n", o.threads, write_all,
              write_all / write1);
  return 0;
}

#include "dalle/util/threads.h"

#include "dalle/util/torch_api.h"

#include <thread>

namespace dalle {

int default_thread_count() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_thread_count(int n) { torch::set_num_threads(n > 0 ? n : default_thread_count()); }

}  // namespace dalle

#include "dalle/util/allocator.h"

#include <malloc.h>

#include <climits>

namespace dalle {

void reuse_freed_memory(bool reuse) {
  // No mmap'd blocks (so large ones come from the heap and stay there once freed), and never
  // trim the heap's top back to the kernel. The defaults: 65536 mmaps, a 128 KiB trim threshold.
  mallopt(M_MMAP_MAX, reuse ? 0 : 65536);
  mallopt(M_TRIM_THRESHOLD, reuse ? INT_MAX : 128 * 1024);
}

}  // namespace dalle

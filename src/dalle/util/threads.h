// Thread count policy: libtorch starts at 1 thread on these machines (PLATFORM.md), so every
// command sets it explicitly, defaulting to all cores.
#pragma once

namespace dalle {

int default_thread_count();
// Sets libtorch's intra-op threads (and OpenMP/OpenBLAS through it). n <= 0 means all cores.
void set_thread_count(int n);

}  // namespace dalle

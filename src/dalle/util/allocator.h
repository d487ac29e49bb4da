// How freed tensor memory is reused. glibc hands every allocation above 32 MB (a 256x256 activation
// with 128+ channels) to its own mmap and returns it to the kernel on free, so the next tensor
// of that size page-faults and is zeroed again, page by page: on the paper's dVAE decoder that
// kernel work took 4/5 of the time (bench_decode). With large blocks kept in the heap, a loop
// that allocates the same sizes each step (decoding, sampling, training) reuses warm memory.
#pragma once

namespace dalle {

// true: serve large allocations from the heap and keep freed memory for reuse (the process's
// resident size then stays at its peak); false: glibc's defaults. Every `dalle` command sets
// true at start; call it in programs that link the library.
void reuse_freed_memory(bool reuse);

}  // namespace dalle

// What a bug report needs to know about this binary and machine: dalle's and libtorch's versions,
// the BLAS actually loaded (Debian picks it at run time through an alternative), the CPU features
// that decide bf16 speed, and whether CUDA is usable. `dalle --version` prints it.
#pragma once
#include <string>

namespace dalle {

std::string build_info();

}  // namespace dalle

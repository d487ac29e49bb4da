# NCCL for data-parallel training on GPUs (src/dalle/dist/collectives_nccl.cpp). It is built when
# libtorch has CUDA and that file compiles and links here: its ProcessGroupNCCL.hpp needs nccl.h
# and the CUDA runtime headers, from a CUDA toolkit or from the nvidia-* Python packages beside
# PyTorch. Otherwise data-parallel runs use Gloo, which carries GPU tensors through host copies,
# and `dalle --version` says so. Call after dalle_core exists.
option(DALLE_NCCL "Use NCCL for data-parallel GPU training when this libtorch has it" ON)
set(DALLE_NCCL_SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/src/dalle/dist/collectives_nccl.cpp)
set(DALLE_HAVE_NCCL OFF)
if(DALLE_NCCL AND (TARGET torch_cuda OR TORCH_CUDA_LIBRARIES))
  # Where pip puts NCCL and the CUDA headers: site-packages/nvidia/*/include.
  set(nccl_hints)
  find_program(DALLE_PYTHON3 python3)
  if(DALLE_PYTHON3)
    execute_process(COMMAND ${DALLE_PYTHON3} -c "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))"
                    OUTPUT_VARIABLE site OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND IS_DIRECTORY "${site}/nvidia")
      file(GLOB nccl_hints LIST_DIRECTORIES true "${site}/nvidia/*/include")
    endif()
  endif()
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${nccl_hints} ${CUDAToolkit_INCLUDE_DIRS})
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${site}/nvidia/nccl/lib)
  set(nccl_includes ${nccl_hints} ${CUDAToolkit_INCLUDE_DIRS} ${CUDA_INCLUDE_DIRS})
  if(NCCL_INCLUDE_DIR)
    list(APPEND nccl_includes ${NCCL_INCLUDE_DIR})
  endif()
  # Compiled and linked (the whole object, so every symbol it needs) as dalle_core will build it:
  # a failure here turns NCCL off instead of failing the build.
  file(WRITE ${CMAKE_BINARY_DIR}/nccl-check/main.cpp
       "#include \"dalle/dist/collectives.h\"\nint main() { return dalle::nccl_built() ? 0 : 1; }\n")
  set(check_libs ${TORCH_LIBRARIES})
  if(NCCL_LIBRARY)
    list(APPEND check_libs ${NCCL_LIBRARY})
  endif()
  try_compile(DALLE_NCCL_BUILDS ${CMAKE_BINARY_DIR}/nccl-check
              SOURCES ${CMAKE_BINARY_DIR}/nccl-check/main.cpp ${DALLE_NCCL_SOURCE}
              CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${CMAKE_CURRENT_SOURCE_DIR}/src;${TORCH_INCLUDE_DIRS};${nccl_includes}"
              COMPILE_DEFINITIONS -DUSE_C10D_NCCL -DUSE_DISTRIBUTED -DDALLE_HAVE_NCCL
              LINK_LIBRARIES ${check_libs}
              CXX_STANDARD 17
              OUTPUT_VARIABLE nccl_log)
  if(DALLE_NCCL_BUILDS)
    set(DALLE_HAVE_NCCL ON)
    target_sources(dalle_core PRIVATE ${DALLE_NCCL_SOURCE})
    set_source_files_properties(${DALLE_NCCL_SOURCE} PROPERTIES COMPILE_DEFINITIONS "USE_C10D_NCCL;USE_DISTRIBUTED"
                                INCLUDE_DIRECTORIES "${nccl_includes}" SKIP_PRECOMPILE_HEADERS ON)
    target_compile_definitions(dalle_core PRIVATE DALLE_HAVE_NCCL)
    if(NCCL_LIBRARY)
      target_link_libraries(dalle_core PUBLIC ${NCCL_LIBRARY})
    endif()
    message(STATUS "NCCL: data-parallel GPU training uses ProcessGroupNCCL")
  else()
    file(WRITE ${CMAKE_BINARY_DIR}/nccl-check.log "${nccl_log}")
    message(WARNING "NCCL: ${DALLE_NCCL_SOURCE} does not build against this libtorch (log: "
                    "${CMAKE_BINARY_DIR}/nccl-check.log); data-parallel GPU runs will use Gloo")
  endif()
endif()

# Sources that need CUDA's own headers (cuda_runtime_api.h, nccl.h, ...), which a CUDA libtorch
# does not ship: they come from a CUDA toolkit or from the nvidia-* Python packages beside
# PyTorch. Each is built only when it compiles and links against this libtorch, checked at
# configure time; otherwise CMake warns, the source's stub stands in, and `dalle --version` says
# what is missing. Include after dalle_core exists.
#   NCCL (src/dalle/dist/collectives_nccl.cpp): data-parallel GPU training; without it, Gloo.
#   CUDA graphs (src/dalle/util/cuda_graph_capture.cpp): decoding steps replayed as one graph;
#   without them, the same steps launched one kernel at a time.
option(DALLE_NCCL "Use NCCL for data-parallel GPU training when this libtorch has it" ON)
option(DALLE_CUDA_GRAPHS "Replay decoding steps as CUDA graphs when this libtorch allows" ON)
set(DALLE_CUDA_SOURCES_DIR ${CMAKE_CURRENT_SOURCE_DIR}/src)
set(DALLE_HAVE_NCCL OFF)
set(DALLE_HAVE_CUDA_GRAPHS OFF)
if(NOT (TARGET torch_cuda OR TORCH_CUDA_LIBRARIES))
  return()
endif()

# Where pip puts NCCL and the CUDA headers: site-packages/nvidia/*/include.
set(cuda_hints)
set(site "")
find_program(DALLE_PYTHON3 python3)
if(DALLE_PYTHON3)
  execute_process(COMMAND ${DALLE_PYTHON3} -c "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))"
                  OUTPUT_VARIABLE site OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(rc EQUAL 0 AND IS_DIRECTORY "${site}/nvidia")
    file(GLOB cuda_hints LIST_DIRECTORIES true "${site}/nvidia/*/include")
  endif()
endif()
set(DALLE_CUDA_INCLUDES ${cuda_hints} ${CUDAToolkit_INCLUDE_DIRS} ${CUDA_INCLUDE_DIRS})

# dalle_cuda_source(NAME SOURCE DEFINE MAIN [DEFINITIONS d...] [LIBRARIES l...]): compiles and
# links SOURCE with a main() of MAIN's text (the whole object, so every symbol it needs) the way
# dalle_core will build it; on success adds it to dalle_core with DEFINE set, else warns.
function(dalle_cuda_source name source define main)
  cmake_parse_arguments(ARG "" "" "DEFINITIONS;LIBRARIES" ${ARGN})
  set(dir ${CMAKE_BINARY_DIR}/${name}-check)
  file(WRITE ${dir}/main.cpp "${main}")
  set(defs)
  foreach(d IN LISTS ARG_DEFINITIONS)
    list(APPEND defs -D${d})
  endforeach()
  try_compile(${define}_BUILDS ${dir} SOURCES ${dir}/main.cpp ${source}
              CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${DALLE_CUDA_SOURCES_DIR};${TORCH_INCLUDE_DIRS};${DALLE_CUDA_INCLUDES}"
              COMPILE_DEFINITIONS ${defs} -D${define}
              LINK_LIBRARIES ${TORCH_LIBRARIES} ${ARG_LIBRARIES}
              CXX_STANDARD 17
              OUTPUT_VARIABLE log)
  if(${define}_BUILDS)
    file(REMOVE ${CMAKE_BINARY_DIR}/${name}-check.log)  # from an earlier configure that failed
    target_sources(dalle_core PRIVATE ${source})
    set_source_files_properties(${source} PROPERTIES COMPILE_DEFINITIONS "${ARG_DEFINITIONS}"
                                INCLUDE_DIRECTORIES "${DALLE_CUDA_INCLUDES}" SKIP_PRECOMPILE_HEADERS ON)
    target_compile_definitions(dalle_core PRIVATE ${define})
    if(ARG_LIBRARIES)
      target_link_libraries(dalle_core PUBLIC ${ARG_LIBRARIES})
    endif()
    message(STATUS "${name}: built")
  else()
    file(WRITE ${CMAKE_BINARY_DIR}/${name}-check.log "${log}")
    message(WARNING "${name}: ${source} does not build against this libtorch (log: ${CMAKE_BINARY_DIR}/${name}-check.log)")
  endif()
  set(${define} ${${define}_BUILDS} PARENT_SCOPE)
endfunction()

if(DALLE_NCCL)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${site}/nvidia/nccl/lib)
  set(nccl_libs)
  if(NCCL_LIBRARY)
    set(nccl_libs ${NCCL_LIBRARY})
  endif()
  dalle_cuda_source(nccl ${DALLE_CUDA_SOURCES_DIR}/dalle/dist/collectives_nccl.cpp DALLE_HAVE_NCCL
                    "#include \"dalle/dist/collectives.h\"\nint main() { return dalle::nccl_built() ? 0 : 1; }\n"
                    DEFINITIONS USE_C10D_NCCL USE_DISTRIBUTED LIBRARIES ${nccl_libs})
endif()
if(DALLE_CUDA_GRAPHS)
  dalle_cuda_source(cuda-graphs ${DALLE_CUDA_SOURCES_DIR}/dalle/util/cuda_graph_capture.cpp DALLE_HAVE_CUDA_GRAPHS
                    "#include \"dalle/util/cuda_graph.h\"\nint main() { return dalle::cuda_graphs_built() ? 0 : 1; }\n")
endif()

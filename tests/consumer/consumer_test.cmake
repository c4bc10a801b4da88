# Run by ctest (tests/consumer/CMakeLists.txt) with BUILD_DIR, SOURCE_DIR, WORK_DIR, CONFIG,
# GENERATOR, C_COMPILER, CXX_COMPILER and PKG_CONFIG defined.
cmake_minimum_required(VERSION 3.24)

# Runs a command and stops the test with its output when it fails.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer test: ${what} failed (${result}):\n${ARGN}\n${output}")
  endif()
  set(last_output "${output}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

# Install into a scratch prefix.
set(config_args)
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
run("installing" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}" ${config_args})
foreach(installed include/activation.h include/activation/engine.hpp include/activation/version.h
                  lib/pkgconfig/activation.pc lib/cmake/activation/activationConfig.cmake
                  lib/cmake/activation/activationConfigVersion.cmake)
  if(NOT EXISTS "${prefix}/${installed}")
    message(FATAL_ERROR "consumer test: ${prefix}/${installed} was not installed")
  endif()
endforeach()

# find_package(activation): the C example and the C++ example, the latter with the shared and the
# static library.
set(programs)
foreach(variant c cpp cpp-static)
  string(REGEX REPLACE "-static$" "" example "${variant}")
  set(static OFF)
  if(variant MATCHES "-static$")
    set(static ON)
  endif()
  set(build "${WORK_DIR}/cmake-${variant}")
  run("configuring the ${variant} example with find_package"
      "${CMAKE_COMMAND}" -S "${SOURCE_DIR}/examples/${example}" -B "${build}" -G "${GENERATOR}"
      "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_C_COMPILER=${C_COMPILER}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
      "-DCMAKE_BUILD_TYPE=Release" "-DACTIVATION_EXAMPLE_STATIC=${static}")
  run("building the ${variant} example with find_package" "${CMAKE_COMMAND}" --build "${build}")
  list(APPEND programs "${build}/activation-example-${example}")
endforeach()

# pkg-config: both examples against the shared library.
set(ENV{PKG_CONFIG_PATH} "${prefix}/lib/pkgconfig")
run("pkg-config" "${PKG_CONFIG}" --cflags --libs activation)
string(STRIP "${last_output}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run("building the C example with pkg-config"
    "${C_COMPILER}" -std=c11 -Wall -Wextra -pedantic -Werror "${SOURCE_DIR}/examples/c/distribute.c" ${flags}
    -pthread -o "${WORK_DIR}/pkgconfig-c")
run("building the C++ example with pkg-config"
    "${CXX_COMPILER}" -std=c++20 -Wall -Wextra "${SOURCE_DIR}/examples/cpp/distribute.cpp" ${flags}
    -o "${WORK_DIR}/pkgconfig-cpp")
list(APPEND programs "${WORK_DIR}/pkgconfig-c" "${WORK_DIR}/pkgconfig-cpp")

# Each program distributes a small audience to the file destination, with the installed library.
set(run_dir "${WORK_DIR}/run")
file(MAKE_DIRECTORY "${run_dir}")
set(audience "EMAIL,COUNTRY\n")
foreach(i RANGE 1 25)
  string(APPEND audience "member${i}@example.com,US\n")
endforeach()
string(APPEND audience "not-an-email,US\n")
file(WRITE "${run_dir}/audience.csv" "${audience}")
file(WRITE "${run_dir}/activation.json" [=[
{
  "store": "store/activation.db",
  "engine": {"workers": 1, "batch_size": 10},
  "audiences": {"customers": {"source": {"type": "csv", "path": "audience.csv"},
                              "mapping": {"EMAIL": "email", "COUNTRY": "country"}}},
  "destinations": {"files": {"type": "file", "settings": {"directory": "out", "format": "hashed_csv",
                                                          "fsync": false}}}
}
]=])
set(ENV{LD_LIBRARY_PATH} "${prefix}/lib")
foreach(program IN LISTS programs)
  run("running ${program}" "${program}" "${run_dir}/activation.json" customers files)
  if(NOT last_output MATCHES "completed")
    message(FATAL_ERROR "consumer test: ${program} did not report a completed job:\n${last_output}")
  endif()
  if(NOT last_output MATCHES "files +100.0%")
    message(FATAL_ERROR "consumer test: ${program} showed no finished progress line:\n${last_output}")
  endif()
  message(STATUS "consumer test: ${program} completed a distribution")
endforeach()

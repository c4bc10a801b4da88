#!/usr/bin/env bash
# Configures and builds activation into build/ (or $ACTIVATION_BUILD_DIR). Extra arguments go to
# the CMake configure step, for example -DACTIVATION_SANITIZE=ON. ACTIVATION_BUILD_TARGETS, a
# space-separated list, builds only those targets; by default everything is built.
#
# The build is optimized and keeps line tables only (-g1), so backtraces and profiles still show
# functions, files and lines. A heavy file compiled in a quarter less time than with -g. A debugger
# needs -g to show variables: pass -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g -DNDEBUG" for that.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${ACTIVATION_BUILD_DIR:-$root/build}"

cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" \
  "$@" >/dev/null
targets=()
for target in ${ACTIVATION_BUILD_TARGETS:-}; do targets+=(--target "$target"); done
cmake --build "$build_dir" -j "$(nproc)" "${targets[@]}"

#!/usr/bin/env bash
# Configures and builds activation into build/ (or $ACTIVATION_BUILD_DIR). Extra arguments go to
# the CMake configure step, for example -DACTIVATION_SANITIZE=ON.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${ACTIVATION_BUILD_DIR:-$root/build}"

cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"

#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test suite, the queue
# suite on both stores.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"

cd "${ACTIVATION_BUILD_DIR:-$root/build}"
# The queue suite runs a second time on PostgreSQL (ctest's queue_postgresql). Unless
# ACTIVATION_TEST_POSTGRES already names a server, a throwaway cluster on 127.0.0.1 lives for the
# ctest run and is stopped after it, also when a test fails.
if [ -n "${ACTIVATION_TEST_POSTGRES:-}" ]; then
  ctest --output-on-failure -j 2
else
  "$root/scripts/with-postgres.sh" ctest --output-on-failure -j 2
fi

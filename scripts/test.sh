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
status=0
if [ -n "${ACTIVATION_TEST_POSTGRES:-}" ]; then
  ctest --output-on-failure -j 2 || status=$?
else
  "$root/scripts/with-postgres.sh" ctest --output-on-failure -j 2 || status=$?
fi

# ctest lists a suite that skipped only some of its test cases as passed. Each doctest suite prints
# its skipped cases with their reasons (tests/doctest_main.cpp), and this repeats them per suite.
log=Testing/Temporary/LastTest.log
if [ -f "$log" ] && grep -q '^\[skips\]' "$log"; then
  echo
  echo "Skipped test cases (the suite ran, these cases did not):"
  awk '/^[0-9]+\/[0-9]+ Testing: / { suite = $3 } /^\[skips\]   SKIPPED/ { sub(/^\[skips\]   /, ""); print "  " suite ": " $0 }' "$log"
fi
exit "$status"

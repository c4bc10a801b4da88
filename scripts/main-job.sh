#!/usr/bin/env bash
# The main job. It installs what is missing, builds, and generates a sample audience with
# `activate sample`. Then it distributes that audience through the embedded SQLite store, with a
# progress bar per destination. The job sends to three file destinations (Meta CSV, Google Data
# Manager JSON, Meta JSON payloads) and, over HTTP, to every platform of the test server on
# loopback: Meta, Google Data Manager, Google Ads, LinkedIn, TikTok, Snapchat and a signed webhook.
# A second, mirror run of the same audience then shows that nothing is sent again.
#
# Environment: ACTIVATION_BUILD_DIR (default build/), ACTIVATION_MAIN_JOB_DIR (default
# ./activation-main-job), ACTIVATION_SAMPLE_ROWS (default 100000).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
# The host, the test server and the shared library that the Python package loads. The test
# command builds the suites and benches.
ACTIVATION_BUILD_TARGETS="activate activation-platform-server activation" "$root/scripts/build.sh"

build_dir="${ACTIVATION_BUILD_DIR:-$root/build}"
activate="$build_dir/examples/activate/activate"
work="${ACTIVATION_MAIN_JOB_DIR:-$PWD/activation-main-job}"
rows="${ACTIVATION_SAMPLE_ROWS:-100000}"

mkdir -p "$work"
cd "$work"
# The example configuration; its relative paths resolve against this folder.
cp "$root/examples/activation.json" activation.json

# The platform test server emulates Meta, Google (Data Manager and Ads API), LinkedIn, TikTok,
# Snapchat, their OAuth token endpoint and a webhook receiver on loopback. It picks a free port and
# prints it, and every *_test_server destination is pointed at that port. The server is stopped by
# its PID when this script ends, also when a step fails.
"$build_dir/examples/platform_server/activation-platform-server" --port 0 \
  --token main-job-token --app-secret main-job-secret --webhook-secret main-job-webhook-secret \
  --linkedin-ready-delay-ms 500 >platform-server.port 2>platform-server.log &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  if grep -q '^[0-9][0-9]*$' platform-server.port 2>/dev/null; then break; fi
  sleep 0.1
done
port="$(head -n 1 platform-server.port)"
if ! [[ "$port" =~ ^[0-9]+$ ]]; then
  echo "main-job: the platform test server did not print its port; see $work/platform-server.log" >&2
  exit 1
fi

# The secrets of the test server's destinations, read from the environment as in production.
export META_TEST_SERVER_TOKEN=main-job-token META_TEST_SERVER_APP_SECRET=main-job-secret
export TEST_SERVER_ACCESS_TOKEN=main-job-token TEST_SERVER_WEBHOOK_SECRET=main-job-webhook-secret
export TEST_SERVER_CLIENT_ID=main-job-client TEST_SERVER_CLIENT_SECRET=main-job-client-secret
export TEST_SERVER_REFRESH_TOKEN=main-job-refresh-token

# Points the configuration at the server's port. The Data Manager API uploads to an existing
# Customer Match list, so the helper creates one on the server first. The Ads API destination
# finds or creates its list by name itself.
python3 "$root/scripts/main_job_server.py" configure "$port" activation.json
echo "== the platform test server listens on http://127.0.0.1:$port (pid $server_pid)"

echo "== generating a sample audience of $rows rows in $work/sample.csv"
"$activate" sample --rows "$rows" --seed 1 --out sample.csv

platforms=(meta_test_server google_test_server google_ads_test_server linkedin_test_server
  tiktok_test_server snapchat_test_server webhook_test_server)
files=(meta_files google_files meta_payloads)
echo "== distributing it to ${#files[@]} file destinations and ${#platforms[@]} platform test servers at once"
echo "   (store: $work/activation-data/activation.db)"
"$activate" distribute sample "${files[@]}" "${platforms[@]}" --parallelism 10 --wait | tee first-run.txt
job="$(sed -n 's/^job \([0-9]*\): .*$/\1/p' first-run.txt | head -n 1)"

echo "== a mirror run of the same audience sends nothing new"
"$activate" distribute sample meta_files "${platforms[@]}" --mode mirror --parallelism 8 --wait

echo "== what the platform test server holds, against the $rows rows of the audience"
python3 "$root/scripts/main_job_server.py" report "$port"

echo
echo "job $job wrote its batch files and manifests to:"
for destination in meta google meta-json; do
  echo "  $work/activation-data/files/$destination/job-$job/manifest.json"
done
echo "rows that were not accepted, with their reasons: $activate rejects $job --config $work/activation.json"

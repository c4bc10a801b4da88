#!/usr/bin/env bash
# The main job. It installs what is missing, builds, and generates a sample audience with
# `activate sample`. Then it runs a real distribution of it to three file destinations (Meta CSV,
# Google Data Manager JSON, Meta JSON payloads) and, over HTTP, to the Meta test server on
# loopback, through the embedded SQLite store, showing progress. A second, mirror run of the same
# audience then shows that nothing is sent again.
#
# Environment: ACTIVATION_BUILD_DIR (default build/), ACTIVATION_MAIN_JOB_DIR (default
# ./activation-main-job), ACTIVATION_SAMPLE_ROWS (default 100000).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"

build_dir="${ACTIVATION_BUILD_DIR:-$root/build}"
activate="$build_dir/examples/activate/activate"
work="${ACTIVATION_MAIN_JOB_DIR:-$PWD/activation-main-job}"
rows="${ACTIVATION_SAMPLE_ROWS:-100000}"

mkdir -p "$work"
cd "$work"
# The example configuration; its relative paths resolve against this folder.
cp "$root/examples/activation.json" activation.json

# The Meta test server emulates Meta's Graph API on loopback. It picks a free port and prints
# it; the meta_test_server destination is pointed at that port. The server is stopped by its PID
# when this script ends, also when a step fails.
"$build_dir/examples/platform_server/activation-platform-server" --port 0 \
  --token main-job-token --app-secret main-job-secret >meta-server.port 2>meta-server.log &
meta_server_pid=$!
trap 'kill "$meta_server_pid" 2>/dev/null || true; wait "$meta_server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  if grep -q '^[0-9][0-9]*$' meta-server.port 2>/dev/null; then break; fi
  sleep 0.1
done
meta_port="$(head -n 1 meta-server.port)"
if ! [[ "$meta_port" =~ ^[0-9]+$ ]]; then
  echo "main-job: the Meta test server printed no port; its log is $work/meta-server.log" >&2
  exit 1
fi
export META_TEST_SERVER_TOKEN=main-job-token META_TEST_SERVER_APP_SECRET=main-job-secret
python3 - "$meta_port" <<'PY'
import json, sys
with open("activation.json") as f:
    config = json.load(f)
config["destinations"]["meta_test_server"]["settings"]["base_url"] = f"http://127.0.0.1:{sys.argv[1]}/meta"
with open("activation.json", "w") as f:
    json.dump(config, f, indent=2)
PY
echo "== the Meta test server listens on http://127.0.0.1:$meta_port (pid $meta_server_pid)"

echo "== generating a sample audience of $rows rows in $work/sample.csv"
"$activate" sample --rows "$rows" --seed 1 --out sample.csv

echo "== distributing it to the file destinations and the Meta test server (store: $work/activation-data/activation.db)"
summary="$("$activate" distribute sample meta_files google_files meta_payloads meta_test_server --wait --json)"
echo "$summary"
job="$(printf '%s\n' "$summary" | sed -n 's/^  "job_id": \([0-9]*\),*$/\1/p')"

echo "== a mirror run of the same audience sends nothing new"
"$activate" distribute sample meta_files meta_test_server --mode mirror --wait

echo "== the Meta test server holds"
python3 - "$meta_port" <<'PY'
import json, sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
listing = json.load(opener.open(f"http://127.0.0.1:{sys.argv[1]}/__inspect/meta/audiences"))
for audience in listing["audiences"]:
    print(f"  audience {audience['id']} '{audience['name']}': {audience['member_count']} member rows "
          f"from {audience['batches']} upload requests")
PY

echo
echo "job $job wrote its batch files and manifests to:"
for destination in meta google meta-json; do
  echo "  $work/activation-data/files/$destination/job-$job/manifest.json"
done
echo "rows that were not accepted, with their reasons: $activate rejects $job --config $work/activation.json"

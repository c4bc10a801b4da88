#!/usr/bin/env bash
# Runs a command next to a throwaway PostgreSQL cluster:
#
#   scripts/with-postgres.sh COMMAND [ARG...]
#
# The cluster is initdb'd into a new mktemp -d folder, listens on 127.0.0.1 only, on a free port,
# with its Unix socket in that folder, and is stopped (pg_ctl stop -m fast, then kill of the
# postmaster's PID) and removed when the command ends, also on failure or Ctrl-C. The command sees:
#
#   ACTIVATION_TEST_POSTGRES          libpq conninfo of the database "activation_test"
#   ACTIVATION_TEST_POSTGRES_RESTART  a script that restarts the server (for the restart tests)
#   ACTIVATION_TEST_POSTGRES_PID_FILE the postmaster.pid of the cluster (first line: the PID)
#
# initdb refuses to run as root, so as root the cluster runs as the user "postgres" (the Debian
# package creates it), through setpriv, in a folder that user owns. PG_BIN overrides the folder of
# initdb and pg_ctl (default: Debian's /usr/lib/postgresql/15/bin); PG_EXTRA_OPTS adds postgres
# options, such as "-c fsync=off".
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi

pg_bin="${PG_BIN:-}"
if [ -z "$pg_bin" ]; then
  for candidate in /usr/lib/postgresql/*/bin; do
    [ -x "$candidate/initdb" ] && pg_bin="$candidate"
  done
fi
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ] || [ ! -x "$pg_bin/pg_ctl" ]; then
  echo "with-postgres: initdb and pg_ctl not found; install the Debian package postgresql or set PG_BIN" >&2
  exit 1
fi

run_as=()
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "with-postgres: running as root needs the user 'postgres' for initdb, and it does not exist" >&2
    exit 1
  fi
  run_as=(setpriv --reuid=postgres --regid="$(id -g postgres)" --clear-groups --)
fi

root_dir="$(mktemp -d "${TMPDIR:-/tmp}/act-pg.XXXXXX")"
data_dir="$root_dir/data"
if [ "${#run_as[@]}" -gt 0 ]; then
  chown postgres: "$root_dir"
fi

postmaster_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -f "$data_dir/postmaster.pid" ]; then
    postmaster_pid="$(head -n 1 "$data_dir/postmaster.pid" 2>/dev/null || true)"
    "${run_as[@]}" "$pg_bin/pg_ctl" -D "$data_dir" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    if [ -n "$postmaster_pid" ] && kill -0 "$postmaster_pid" 2>/dev/null; then
      kill -KILL "$postmaster_pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$root_dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free port: bind port 0 on loopback and read the one the kernel chose. Another process may take
# it before the server starts; pg_ctl then fails and so does this script.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"

"${run_as[@]}" "$pg_bin/initdb" -D "$data_dir" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 \
  >"$root_dir/initdb.log" 2>&1 || { cat "$root_dir/initdb.log" >&2; exit 1; }

options="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$root_dir -c max_connections=200"
options="$options ${PG_EXTRA_OPTS:-}"
"${run_as[@]}" "$pg_bin/pg_ctl" -D "$data_dir" -l "$root_dir/server.log" -o "$options" -w -t 60 start >/dev/null \
  || { cat "$root_dir/server.log" >&2; exit 1; }

"${run_as[@]}" "$pg_bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
  -c "CREATE DATABASE activation_test" >/dev/null

cat >"$root_dir/restart.sh" <<RESTART
#!/usr/bin/env bash
# Restarts the throwaway cluster of with-postgres.sh (fast shutdown: open connections are closed).
set -euo pipefail
${run_as[*]} "$pg_bin/pg_ctl" -D "$data_dir" -l "$root_dir/server.log" -o "$options" -m fast -w -t 60 restart >/dev/null
RESTART
chmod 0755 "$root_dir/restart.sh"

export ACTIVATION_TEST_POSTGRES="host=127.0.0.1 port=$port dbname=activation_test user=postgres"
export ACTIVATION_TEST_POSTGRES_RESTART="$root_dir/restart.sh"
export ACTIVATION_TEST_POSTGRES_PID_FILE="$data_dir/postmaster.pid"
echo "with-postgres: PostgreSQL $("$pg_bin/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port (data in $data_dir)" >&2

"$@"

#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing activation needs, and only those
# that are missing. Runs as root (or through sudo when it is present).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libfmt-dev nlohmann-json3-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev
  doctest-dev libphonenumber-dev libprotobuf-dev libicu-dev libcpp-httplib-dev libsimdjson-dev
  python3 sqlite3 procps
  libpq-dev postgresql
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo)
fi

echo "install-deps: installing ${missing[*]}" >&2
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2

#!/usr/bin/env bash
# Runs the Estuary server on its embedded default (SQLite, keys in files). On an empty data dir
# it first creates a DEMO setup (`estuary serve --demo`) and prints what a client needs. Extra arguments go to
# `estuary serve` (e.g. --listen 0.0.0.0:8443). Data dir: $ESTUARY_DATA_DIR or ./estuary-data.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for p in pkg-config libssl-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
cargo build --release -p estuary
exec target/release/estuary serve --demo --data-dir "${ESTUARY_DATA_DIR:-./estuary-data}" "$@"

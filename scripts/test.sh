#!/usr/bin/env bash
# Runs the whole Estuary test suite on a fresh Debian machine with Rust.
# Installs what the tests need (idempotent), starts real components (PostgreSQL if none answers
# at $ESTUARY_TEST_PG), then runs format, lint and every test. Any skipped real-component test
# is a failure, not a pass.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# --- 1. Debian packages -------------------------------------------------------------------
pkgs=(pkg-config libssl-dev openssl curl ca-certificates sqlite3 postgresql postgresql-client systemd groff-base
      default-jdk-headless libbcprov-java libbcpkix-java libbctls-java libbcutil-java
      chromium chromium-driver)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 1b. pkilint (PyPI): the independent RFC 5280 linter of crates/estuary/tests/pkilint.rs ---
if ! python3 -c 'import pkilint' >/dev/null 2>&1; then
  log "installing pkilint"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  # A Debian system Python refuses installs outside a venv (PEP 668) unless told otherwise.
  python3 -m pip install --quiet pkilint 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages pkilint
fi
python3 -c 'import pkilint'

# --- 2. PostgreSQL ------------------------------------------------------------------------
export ESTUARY_TEST_PG="${ESTUARY_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}"
pg_tmp=""
cleanup() {
  if [ -n "$pg_tmp" ]; then
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_tmp/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_tmp"
  fi
}
trap cleanup EXIT
if ! psql "$ESTUARY_TEST_PG" -qtAc 'select 1' >/dev/null 2>&1; then
  log "no PostgreSQL at $ESTUARY_TEST_PG: starting a throwaway server"
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  pg_tmp=$(mktemp -d /tmp/estuary-pg.XXXXXX)
  chown postgres "$pg_tmp"
  port=55432
  runuser -u postgres -- "$pg_bin/initdb" -D "$pg_tmp/data" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_tmp/data" -o "-p $port -k $pg_tmp -c listen_addresses=127.0.0.1 -c fsync=off" -l "$pg_tmp/log" -w start >/dev/null
  psql "postgres://postgres@127.0.0.1:$port/postgres" -qc 'create database test' >/dev/null
  export ESTUARY_TEST_PG="postgres://postgres@127.0.0.1:$port/test"
fi
psql "$ESTUARY_TEST_PG" -qtAc 'select 1' >/dev/null
log "PostgreSQL: $ESTUARY_TEST_PG"

# --- 3. Format, lint, tests ---------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
# Test artefacts: crates/estuary/tests/console.rs (the admin console in headless Chromium via
# chromedriver) leaves a PNG screenshot of every step in target/console-screenshots/.
cargo test --workspace --locked --no-fail-fast 2>&1 | tee target/test-output.log
status=${PIPESTATUS[0]}
# A test that printed "SKIPPED" has not run its real component: that is a failure.
if grep -q 'SKIPPED' target/test-output.log; then
  echo "some tests skipped a real component" >&2
  exit 1
fi
[ "$status" -eq 0 ] || exit "$status"

# --- 3b. Debian package -------------------------------------------------------------------
# cargo-deb (installed if missing) packages the binary the tests just built; the package's
# contents, control data, postinst and systemd unit (systemd-analyze verify and security) are
# checked.
log "Debian package (cargo deb, dpkg-deb, systemd-analyze)"
./scripts/package.sh --check

# --- 4. Fuzzing ---------------------------------------------------------------------------
# Every cargo-fuzz target for a bounded time on its corpus, when a nightly toolchain exists
# (cargo-fuzz needs one; it is installed if missing). A crash fails the suite.
if cargo +nightly --version >/dev/null 2>&1; then
  log "fuzz (every target, ${ESTUARY_FUZZ_SECS:-10} s each)"
  ./scripts/fuzz.sh "${ESTUARY_FUZZ_SECS:-10}"
else
  log "fuzz: no nightly toolchain on this machine; fuzz targets not run"
fi
exit 0

#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 10 s each) on its corpus, as the
# test command does when a nightly toolchain is present. A crash, a leak or a timeout of the
# fuzzed code fails the run; the offending input is left under fuzz/artifacts/<target>/.
# Usage: scripts/fuzz.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-${ESTUARY_FUZZ_SECS:-10}}
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain; cargo-fuzz needs one" >&2
  exit 1
fi
if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
cd fuzz
cargo +nightly fuzz build -O 2>&1 | tail -n 2
work=$(mktemp -d /tmp/estuary-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
for t in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$t" "$work/$t"
  rm -rf "artifacts/$t"
  echo "== fuzz $t (${secs}s)"
  # New inputs go to the scratch dir (first), the committed seeds are read only.
  # -max_total_time bounds the run; -timeout flags a single input that takes over 10 s.
  set +e
  cargo +nightly fuzz run -O "$t" "$work/$t" "corpus/$t" -- -max_total_time="$secs" -timeout=10 \
    -print_final_stats=1 > "$work/$t.log" 2>&1
  rc=$?
  set -e
  grep -E '^stat::number_of_executed_units|^Done' "$work/$t.log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$work/$t.log" >&2
    echo "fuzz: $t failed (exit $rc); inputs in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
echo "fuzz: every target ran ${secs}s without a crash"

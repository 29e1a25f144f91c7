#!/usr/bin/env bash
# Reproduces docs/performance.md: starts a release server on a fresh demo data dir and drives
# it with `estuary bench` (driver and server share this machine), then prefills the store with
# 1,000,000 certificates and measures enrollment again.
# Usage: scripts/bench.sh [duration-seconds] [concurrency]
#        scripts/bench.sh keygen [duration-seconds]   (/serverkeygen only, see docs/performance.md)
#        scripts/bench.sh fullcmc [duration-seconds] [concurrency]
#                         (/fullcmc beside /simpleenroll on one server, keep-alive and fresh TLS)
set -euo pipefail
cd "$(dirname "$0")/.."
suite=all
if [ "${1:-}" = keygen ]; then suite=keygen; shift; fi
if [ "${1:-}" = fullcmc ]; then suite=fullcmc; shift; fi
dur=${1:-10}
conc=${2:-32}
cargo build --release -p estuary >/dev/null
bin=target/release/estuary
dir=$(mktemp -d /tmp/estuary-bench.XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
start_server() {
  # Port 0: the server picks a free port and its banner says which.
  ESTUARY_LOG=warn $bin serve --data-dir "$dir/data" --listen 127.0.0.1:0 > "$dir/banner" &
  pid=$!
  for _ in $(seq 100); do grep -q 'CA labels' "$dir/banner" 2>/dev/null && break; sleep 0.2; done
  url=$(sed -n 's|^Estuary EST server listening on \(https://[^/]*\)/.*|\1|p' "$dir/banner")
  common=(--url "$url" --trust-anchor "$dir/data/ca/root.pem" --duration "$dur" --concurrency "$conc")
}
start_server
sleep 1
pw=$(sed -n 's/^demo user: demo    password: \([^ ]*\).*/\1/p' "$dir/banner")
printf '%s' "$pw" > "$dir/pw"
auth=(--user demo --password-file "$dir/pw")
run() { echo "\$ estuary bench run $*"; $bin bench run "${common[@]}" --server-pid "$pid" "$@"; echo; }
if [ "$suite" = keygen ]; then
  # Sustained rate against the raw key-generation rate measured in the same run, then latency
  # at low load (the pre-generated pool serves it).
  runk() { # SECONDS ARGS...: RSA needs long runs (key generation time varies widely)
    local secs=$1; shift
    echo "\$ estuary bench run --label demo --op serverkeygen --duration $secs $*"
    $bin bench run --url "$url" --trust-anchor "$dir/data/ca/root.pem" \
      --duration "$secs" --server-pid "$pid" --label demo --op serverkeygen "${auth[@]}" "$@"
    echo
  }
  runk "$dur" --key-type p256 --concurrency 8
  runk 40 --key-type rsa2048 --concurrency 4
  runk 40 --key-type rsa3072 --concurrency 4
  sleep 5 # let the pool refill
  runk "$dur" --key-type rsa2048 --concurrency 1 --rate 4
  sleep 5
  runk "$dur" --key-type rsa3072 --concurrency 1 --rate 1
  runk "$dur" --key-type p256 --concurrency 1 --rate 50
  exit 0
fi
if [ "$suite" = fullcmc ]; then
  # SignedData(PKIData) with a PKCS#10 (P-256) against /simpleenroll with the same CSR pool,
  # alternating on one server so that both see the same machine and a similar store.
  runt() { # NAME ARGS...: a run whose output is kept for the summary
    local name=$1; shift
    run "$@" | tee "$dir/$name"
  }
  runt ek --op enroll --mode keepalive "${auth[@]}"
  runt fk --op fullcmc --mode keepalive "${auth[@]}"
  runt ef --op enroll --mode fresh "${auth[@]}"
  runt ff --op fullcmc --mode fresh "${auth[@]}"
  ops() { sed -n 's/^  throughput *\([0-9]*\) ok\/s.*/\1/p' "$dir/$1"; }
  lat() { sed -n "s/^  latency ms .* $2 \([0-9.]*\) .*/\1/p" "$dir/$1"; }
  base=$(ops ek)
  echo "summary (one server, this run; ratio = ok/s over /simpleenroll keep-alive ok/s):"
  printf '  %-28s %8s %8s %8s %8s\n' run ok/s p50-ms p99-ms ratio
  for r in "ek:/simpleenroll keep-alive" "fk:/fullcmc keep-alive" \
           "ef:/simpleenroll fresh TLS" "ff:/fullcmc fresh TLS"; do
    n=${r%%:*}
    printf '  %-28s %8s %8s %8s %8s\n' "${r#*:}" "$(ops "$n")" "$(lat "$n" p50)" \
      "$(lat "$n" p99)" "$(awk -v a="$(ops "$n")" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
  done
  awk -v a="$(ops ff)" -v b="$(ops ef)" \
    'BEGIN { printf "  /fullcmc fresh TLS over /simpleenroll fresh TLS: %.2f\n", a / b }'
  exit 0
fi
run --op cacerts --mode keepalive
run --op cacerts --mode fresh
run --op enroll --mode keepalive "${auth[@]}"
run --op enroll --mode fresh "${auth[@]}"
kill $pid; wait $pid 2>/dev/null || true
echo "\$ estuary bench prefill --count 1000000"
$bin bench prefill --data-dir "$dir/data" --count 1000000
start_server
sleep 1
echo "(store now holds $(sqlite3 "$dir/data/estuary.db" 'select count(*) from certificates') certificates)"
run --op enroll --mode keepalive "${auth[@]}"
run --op enroll --mode fresh "${auth[@]}"

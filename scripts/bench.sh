#!/usr/bin/env bash
# Reproduces docs/performance.md: starts a release server on a fresh demo data dir and drives
# it with `estuary bench` (driver and server share this machine), then prefills the store with
# 1,000,000 certificates and measures enrollment again.
# Usage: scripts/bench.sh [duration-seconds] [concurrency]
#        scripts/bench.sh keygen [duration-seconds]   (/serverkeygen only, see docs/performance.md)
#        scripts/bench.sh fullcmc [duration-seconds] [concurrency]
#                         (/fullcmc beside /simpleenroll on one server, keep-alive and fresh TLS)
#        scripts/bench.sh guess [duration-seconds]
#                         (legitimate /cacerts and enrollments, alone and beside 16 password
#                          guessers rotating user names and source addresses)
#        scripts/bench.sh soak [duration-seconds, default 600]
#                         (mixed enroll / serverkeygen / cacerts at ~80% of the capacity
#                          measured first; server RSS at start, after warm-up and at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
suite=all
case "${1:-}" in keygen|fullcmc|guess|soak) suite=$1; shift ;; esac
dur=${1:-10}
if [ "$suite" = soak ]; then dur=${1:-600}; fi
conc=${2:-32}
cargo build --release -p estuary >/dev/null
bin=target/release/estuary
dir=$(mktemp -d /tmp/estuary-bench.XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
start_server() {
  # Port 0: the server picks a free port and its banner says which.
  # The server's log goes to a file (the guess suite makes it log every failed guess).
  ESTUARY_LOG=warn $bin serve --demo --data-dir "$dir/data" --listen 127.0.0.1:0 > "$dir/banner" 2>> "$dir/server.log" &
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
if [ "$suite" = guess ]; then
  # Legitimate clients over fresh TLS at a modest rate: /cacerts (no authentication) and
  # Basic-authenticated enrollments, first alone, then while 16 guessers (fresh TLS, a new
  # user name and a wrong password every request, source address rotating over 200 loopback
  # addresses) run as fast as the server lets them.
  ta=(--url "$url" --trust-anchor "$dir/data/ca/root.pem" --server-pid "$pid" --mode fresh)
  legit() { # TAG
    echo "\$ estuary bench run --op cacerts --mode fresh --concurrency 2 --rate 20 --duration $dur"
    $bin bench run "${ta[@]}" --op cacerts --concurrency 2 --rate 20 --duration "$dur" | tee "$dir/$1-c"
    echo "\$ estuary bench run --op enroll --mode fresh --concurrency 2 --rate 10 --duration $dur --user demo"
    $bin bench run "${ta[@]}" --op enroll --concurrency 2 --rate 10 --duration "$dur" --csrs 64 "${auth[@]}" | tee "$dir/$1-e"
    echo
  }
  legit alone
  gdur=$((2 * dur + 8))
  echo "\$ estuary bench run --op enroll --guess --source-ips 200 --mode fresh --concurrency 16 --duration $gdur &"
  $bin bench run "${ta[@]}" --op enroll --guess --source-ips 200 --concurrency 16 \
    --duration "$gdur" --csrs 16 > "$dir/guessers" &
  gpid=$!
  sleep 4
  legit flood
  wait $gpid
  cat "$dir/guessers"
  lat() { sed -n "s/^  latency ms .* $2 \([0-9.]*\) .*/\1/p" "$dir/$1"; }
  ok() { sed -n 's/^  statuses *\(.*\)/\1/p' "$dir/$1"; }
  echo
  echo "summary (p99 ms of legitimate requests; target < 200 under the flood):"
  printf '  %-34s %8s %8s   %s\n' run p50-ms p99-ms statuses
  for r in "alone-c:/cacerts alone" "flood-c:/cacerts beside 16 guessers" \
           "alone-e:/simpleenroll alone" "flood-e:/simpleenroll beside 16 guessers"; do
    n=${r%%:*}
    printf '  %-34s %8s %8s   %s\n' "${r#*:}" "$(lat "$n" p50)" "$(lat "$n" p99)" "$(ok "$n")"
  done
  printf '  %-34s %8s %8s   %s\n' "guessers (16, fresh TLS)" "$(lat guessers p50)" "$(lat guessers p99)" "$(ok guessers)"
  exit 0
fi
if [ "$suite" = soak ]; then
  # Capacity first: the three operations at once, unthrottled, for 15 s; then each at 80% of
  # the rate it reached, for $dur seconds. RSS (VmRSS of the server) every 10 s.
  ta=(--url "$url" --trust-anchor "$dir/data/ca/root.pem" --server-pid "$pid")
  rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
  mix() { # DURATION [rate-enroll rate-skg rate-cacerts]
    $bin bench run "${ta[@]}" --op enroll --mode keepalive --concurrency 8 --duration "$1" \
      ${2:+--rate "$2"} "${auth[@]}" > "$dir/mix-e" &
    local e=$!
    $bin bench run "${ta[@]}" --op serverkeygen --label demo --key-type p256 --mode keepalive --concurrency 2 \
      --duration "$1" ${3:+--rate "$3"} "${auth[@]}" > "$dir/mix-k" &
    local k=$!
    $bin bench run "${ta[@]}" --op cacerts --mode fresh --concurrency 2 --duration "$1" \
      ${4:+--rate "$4"} > "$dir/mix-c" &
    mixpids="$e $k $!"
  }
  ops() { sed -n 's/^  throughput *\([0-9]*\) ok\/s.*/\1/p' "$dir/$1"; }
  # An established store (ESTUARY_SOAK_PREFILL certificates, default 300,000; 0 = empty), as
  # on a server that has run for a while. SQLite's page caches fill during the first minutes
  # either way, up to their bounds ([store] sqlite_writer_cache_mib, 512 KiB per reader).
  prefill=${ESTUARY_SOAK_PREFILL:-300000}
  if [ "$prefill" -gt 0 ]; then
    kill $pid; wait $pid 2>/dev/null || true
    echo "\$ estuary bench prefill --count $prefill"
    $bin bench prefill --data-dir "$dir/data" --count "$prefill" | tail -n 1
    start_server
    ta=(--url "$url" --trust-anchor "$dir/data/ca/root.pem" --server-pid "$pid")
    sleep 1
  fi
  rss0=$(rss)
  echo "RSS at start (idle, demo config): $((rss0 / 1024)) MiB"
  mix 15
  # shellcheck disable=SC2086
  wait $mixpids
  re=$(ops mix-e); rk=$(ops mix-k); rc=$(ops mix-c)
  echo "capacity (all three at once, unthrottled): enroll $re/s, serverkeygen p256 $rk/s, cacerts fresh TLS $rc/s"
  pe=$((re * 8 / 10)); pk=$((rk * 8 / 10)); pc=$((rc * 8 / 10))
  echo "soak: $dur s at enroll $pe/s, serverkeygen $pk/s, cacerts $pc/s (80%)"
  mix "$dur" "$pe" "$pk" "$pc"
  : > "$dir/rss"
  t=0
  while [ "$t" -lt "$dur" ]; do
    sleep 10; t=$((t + 10))
    echo "$t $(rss)" >> "$dir/rss"
  done
  # shellcheck disable=SC2086
  wait $mixpids
  for f in mix-e mix-k mix-c; do cat "$dir/$f"; echo; done
  # Warm-up: the first 60 s (the first half of a run shorter than 120 s).
  wu=$((dur < 120 ? dur / 2 / 10 * 10 : 60))
  warm=$(awk -v w="$wu" '$1 == w {print $2}' "$dir/rss")
  end=$(tail -n 1 "$dir/rss" | awk '{print $2}')
  max=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$dir/rss")
  echo "RSS samples (s kB): $(tr '\n' ' ' < "$dir/rss")"
  half=$(awk -v h=$((dur / 2 / 10 * 10)) '$1 == h {print $2}' "$dir/rss")
  awk -v s="$rss0" -v w="$warm" -v e="$end" -v m="$max" -v u="$wu" 'BEGIN {
    printf "RSS: start %.1f MiB, after %d s warm-up %.1f MiB, end %.1f MiB, max %.1f MiB; growth after warm-up %+.1f%%\n",
      s / 1024, u, w / 1024, e / 1024, m / 1024, 100 * (e - w) / w }'
  [ -n "$half" ] && awk -v h="$half" -v e="$end" -v t=$((dur - dur / 2 / 10 * 10)) \
    'BEGIN { printf "RSS growth over the last %d s: %+.1f%%\n", t, 100 * (e - h) / h }'
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

#!/usr/bin/env bash
# bench/paired.sh — Pylon against the bare Pingora proxy, both loaded at the same time on
# the same core: the ratio of their throughputs, with the machine's drift cancelled.
#
# Why: on this 2-core VM the speed of the machine itself moves by ±15% from one second to
# the next (bench/compare.sh's bare proxy reads 35k–52k req/s within one run), so proxies
# measured one after another differ by more than the few percent in question, even over
# ten alternating rounds. Here both proxies are pinned to core 1 and driven at once, each by
# its own wrk (on core 0, with the origin): both are always runnable, the scheduler gives
# each half of the core, and each serves requests in inverse proportion to its CPU cost
# per request. Whatever the machine does in a round, it does to both. A control pair — the
# bare proxy against a second bare proxy — shows what the method itself can tell apart
# (±0.5% here).
#
# What is reported: for each Pylon config, the median over ROUNDS of (Pylon's req/s / the
# bare proxy's req/s in the same round), with the smallest and largest round. The configs
# are bench/compare.sh's (bench/pylon-config.sh); `pylon-mw` has request_id, headers and
# cors on the route and gets an allowed `Origin` on every request.
#
# Usage: bench/paired.sh   (env: ROUNDS=7 DURATION=5 CONNECTIONS=50 PROXIES="pylon pylon-mw"
#        CONTROL=1 runs the bare-vs-bare pair too; SKIP_BUILD=1 uses the built binaries)
# Needs: nginx, wrk, cmake (scripts/install-deps.sh --bench); 2 cores or more.
set -euo pipefail

ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
PROXIES=${PROXIES:-"pylon pylon-mw"}
CONTROL=${CONTROL:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/pylon-config.sh
source "$ROOT/bench/pylon-config.sh"
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
WORK=$(mktemp -d /tmp/pylon-paired.XXXXXX)
cleanup() {
  stop_started
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$(nproc)" -lt 2 ]; then
  echo "paired.sh needs two cores: one for the proxies, one for the load and the origin" >&2
  exit 2
fi

echo "building release binaries (mimalloc, fat LTO)..." >&2
build_release

start_origin taskset -c 0

# Every proxy on core 1, each on a free port recorded in PORT.
declare -A PORT
BARES=bare-pingora
[ "$CONTROL" = 1 ] && BARES="$BARES bare-pingora-2"
for p in $BARES $PROXIES; do
  PORT[$p]=$(free_port)
  case $p in
    bare-*) start_bare "$p" "${PORT[$p]}" taskset -c 1 ;;
    *) start_pylon "$p" "${PORT[$p]}" "$ROOT/target/release/pylon" taskset -c 1 ;;
  esac
  wait_port "${PORT[$p]}"
done

# load NAME: wrk on core 0 for DURATION seconds; prints req/s.
load() {
  local extra=()
  [ "$1" = pylon-mw ] && extra=(-H "Origin: https://app.example.com")
  taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "${extra[@]}" "http://127.0.0.1:${PORT[$1]}/" \
    | awk '/^Requests\/sec/ {print $2}'
}

declare -A RATIOS
PAIRS=$PROXIES
[ "$CONTROL" = 1 ] && PAIRS="bare-pingora-2 $PAIRS"
for round in $(seq 1 "$ROUNDS"); do
  for p in $PAIRS; do
    load bare-pingora > "$WORK/a" & a=$!
    load "$p" > "$WORK/b" & b=$!
    wait "$a" "$b"
    ratio=$(awk -v a="$(cat "$WORK/a")" -v b="$(cat "$WORK/b")" 'BEGIN {printf "%.4f", b/a}')
    RATIOS[$p]+="$ratio "
    printf 'round %d %-15s %9s req/s  bare %9s req/s  ratio %s\n' \
      "$round" "$p" "$(cat "$WORK/b")" "$(cat "$WORK/a")" "$ratio" >&2
  done
done

echo
echo "| proxy | vs bare Pingora, same core at once (median of $ROUNDS) | lowest round | highest round |"
echo "| --- | ---: | ---: | ---: |"
for p in $PAIRS; do
  sorted=$(tr ' ' '\n' <<<"${RATIOS[$p]}" | { grep -v '^$' || true; } | sort -g)
  printf '| %s | %.3f | %.3f | %.3f |\n' "$p" "$(median <<<"$sorted")" \
    "$(head -1 <<<"$sorted")" "$(tail -1 <<<"$sorted")"
done
echo
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s against each of a pair at once, proxies on core 1, $(nproc) cores, $(date -u +%F)"

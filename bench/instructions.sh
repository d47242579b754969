#!/usr/bin/env bash
# bench/instructions.sh — user-space instructions per proxied request, under callgrind.
#
# Why: on this 2-core VM, req/s from bench/compare.sh moves by ±10% between rounds even
# pinned, which hides differences of a few percent. Instruction counts do not move: the same
# binary, config and load give the same count per request whatever else the machine does.
# They measure what the proxy's own code costs (not the kernel's share, which is the same
# for every Pingora proxy), so they answer "what does this feature add per request".
#
# What: each proxy runs under `valgrind --tool=callgrind` in front of one nginx origin; wrk
# sends requests for DURATION seconds (10 connections); the count reported is the inclusive
# cost of tokio's task runner (every request's work, no start-up) divided by the requests
# wrk completed. Proxies: bare-pingora (the floor), pylon (six routes, round robin, the
# X-Forwarded-* headers) and pylon-mw (the same with request_id, headers and cors on the
# route and an allowed Origin on every request) — the configs of bench/compare.sh.
#
# Usage: bench/instructions.sh   (env: DURATION=15 PROXIES="bare-pingora pylon pylon-mw"
#        KEEP=DIR keeps the callgrind profiles, cg.PROXY, for callgrind_annotate;
#        VG_EXTRA="--toggle-collect=*Context::run_task*" records only request work, so a
#        kept profile's self costs add up to the per-request count)
# Under callgrind the proxy runs ~25x slower, so costs amortised over time (Pingora's fast
# timeouts register one timer per 10 ms slot) weigh more per request than at full speed.
# Needs: valgrind, nginx, wrk (scripts/install-deps.sh --bench).
set -euo pipefail

DURATION=${DURATION:-15}
PROXIES=${PROXIES:-"bare-pingora pylon pylon-mw"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/pylon-config.sh
source "$ROOT/bench/pylon-config.sh"
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
WORK=$(mktemp -d /tmp/pylon-instr.XXXXXX)
cleanup() {
  stop_started
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$WORK"/cg.* "$KEEP"/ 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

build_release

start_origin

echo "| proxy | requests | instructions per request | vs bare Pingora |"
echo "| --- | ---: | ---: | ---: |"
bare=""
for p in $PROXIES; do
  port=$(free_port)
  # shellcheck disable=SC2086 # VG_EXTRA holds valgrind options, split on purpose
  vg=(valgrind --tool=callgrind ${VG_EXTRA:-} --callgrind-out-file="$WORK/cg.$p")
  case $p in
    bare-pingora) start_bare "$p" "$port" "${vg[@]}" ;;
    pylon|pylon-mw|pylon-rl|pylon-off|pylon-obs) start_pylon "$p" "$port" "$ROOT/target/release/pylon" "${vg[@]}" ;;
    *) echo "unknown proxy $p" >&2; exit 2 ;;
  esac
  vpid=${PIDS[-1]}
  for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
  out=$(wrk -t1 -c10 -d"${DURATION}s" -H "Origin: https://app.example.com" "http://127.0.0.1:$port/")
  kill -INT "$vpid"; wait "$vpid" 2>/dev/null || true
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  instr=$(callgrind_annotate --inclusive=yes "$WORK/cg.$p" 2>/dev/null \
    | awk '/Context::run_task/ && !done {gsub(",","",$1); print $1; done=1}')
  per=$((instr / reqs))
  [ "$p" = bare-pingora ] && bare=$per
  ratio=$( [ -n "$bare" ] && awk -v a="$bare" -v b="$per" 'BEGIN{printf "%.2f", a/b}' || echo "-")
  printf '| %s | %d | %d | %s |\n' "$p" "$reqs" "$per" "$ratio"
done
echo
echo "callgrind, wrk -t1 -c10 -d${DURATION}s, $(date -u +%F); \"vs bare\" = bare's instructions / this proxy's"

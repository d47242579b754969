#!/usr/bin/env bash
# bench/compare.sh — Pylon against nginx, HAProxy, Caddy and a bare Pingora proxy.
#
# What is compared: requests per second and p99 latency of each proxy in front of the SAME
# origin (an nginx answering a 12-byte body), one worker each, HTTP/1.1 keep-alive on both
# sides, driven by wrk. Rounds alternate between the proxies (in reverse order every other
# round) so that drift in the machine (thermal, noisy neighbours) hits all of them alike;
# the median round is reported, with ratios against nginx (the target to beat) and against
# the bare Pingora proxy (the floor), and the median of each round's ratio to the bare proxy
# (steadier: rounds drift together).
#
# CPU placement: on this 2-core machine, an unpinned run lets the scheduler put the proxy on
# the same core as wrk or the origin in one round and not in the next, which moves results by
# ±15%. By default (PIN=1) the proxy under test gets core 1 to itself, and wrk and the origin
# share core 0; nginx-as-proxy reaching far above the Pingora proxies shows that core 0 is
# not what limits them.
#
# Usage: bench/compare.sh      (env: ROUNDS=3 DURATION=10 CONNECTIONS=50 PROXIES="..." PIN=1)
# A/B: PYLON_ALT_BIN=/path/to/other/pylon PROXIES="bare-pingora pylon pylon-alt" compares
# another Pylon build (say, the previous release) in the same run.
# `pylon-mw` is Pylon with three middlewares on the route (request_id, headers, cors), and
# wrk sends it an allowed `Origin`, so every request gets an id both ways, a templated
# request header, a response header, and the CORS response headers.
# Needs: nginx, haproxy, caddy, wrk (apt-get install nginx-light haproxy caddy wrk), cmake.
# Everything listens on 127.0.0.1 ephemeral ports and is stopped by pid on exit.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
PROXIES=${PROXIES:-"nginx haproxy caddy bare-pingora pylon"}
PIN=${PIN:-1}
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  ON_LOAD="taskset -c 0"; ON_PROXY="taskset -c 1"
else
  ON_LOAD=""; ON_PROXY=""
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/pylon-config.sh
source "$ROOT/bench/pylon-config.sh"
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
WORK=$(mktemp -d /tmp/pylon-bench.XXXXXX)

cleanup() {
  stop_started
  rm -rf "$WORK"
}
trap cleanup EXIT


echo "building release binaries (mimalloc, fat LTO)..." >&2
build_release

# shellcheck disable=SC2086 # ON_LOAD is a command prefix, or empty
start_origin $ON_LOAD

declare -A PORT
start_proxy() {
  local name=$1 port; port=$(free_port); PORT[$name]=$port
  mkdir -p "$WORK/$name"
  case $name in
    nginx)
      cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:$ORIGIN; keepalive 128; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
      $ON_PROXY nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" & PIDS+=($!) ;;
    haproxy)
      cat > "$WORK/haproxy/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend f
  bind 127.0.0.1:$port
  default_backend b
backend b
  server o 127.0.0.1:$ORIGIN
CONF
      $ON_PROXY haproxy -f "$WORK/haproxy/haproxy.cfg" -db & PIDS+=($!) ;;
    caddy)
      cat > "$WORK/caddy/Caddyfile" <<CONF
{
  admin off
  auto_https off
}
http://127.0.0.1:$port {
  reverse_proxy 127.0.0.1:$ORIGIN
}
CONF
      GOMAXPROCS=1 XDG_DATA_HOME="$WORK/caddy" XDG_CONFIG_HOME="$WORK/caddy" \
        $ON_PROXY caddy run --config "$WORK/caddy/Caddyfile" --adapter caddyfile >"$WORK/caddy/log" 2>&1 & PIDS+=($!) ;;
    bare-pingora|bare-pingora-fwd)
      # -fwd: the same proxy adding Pylon's three X-Forwarded-* headers (a diagnostic).
      # shellcheck disable=SC2086 # ON_PROXY is a command prefix, or empty
      BARE_FORWARDED=$([ "$name" = bare-pingora-fwd ] && echo 1 || echo 0) \
        start_bare "$name" "$port" $ON_PROXY ;;
    pylon|pylon-alt|pylon-mw|pylon-rl|pylon-off|pylon-obs)
      bin="$ROOT/target/release/pylon"
      [ "$name" = pylon-alt ] && bin=${PYLON_ALT_BIN:?set PYLON_ALT_BIN to compare another build}
      # shellcheck disable=SC2086 # ON_PROXY is a command prefix, or empty
      start_pylon "$name" "$port" "$bin" $ON_PROXY ;;
    *) echo "unknown proxy $name" >&2; exit 2 ;;
  esac
  wait_port "$port"
}

for p in $PROXIES; do start_proxy "$p"; done

declare -A RPS P99
# Every other round runs the proxies in reverse order, so that none always follows the
# same neighbour (or always runs first, on a machine still settling).
REVERSED=$(tr ' ' '\n' <<<"$PROXIES" | { grep -v '^$' || true; } | tac | tr '\n' ' ')
for round in $(seq 1 "$ROUNDS"); do
  order=$PROXIES; [ $((round % 2)) = 0 ] && order=$REVERSED
  for p in $order; do
    extra=()
    [ "$p" = pylon-mw ] && extra=(-H "Origin: https://app.example.com")
    out=$($ON_LOAD wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "${extra[@]}" "http://127.0.0.1:${PORT[$p]}/")
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
    [ -n "$errors" ] && echo "  $p: $errors" >&2
    RPS[$p]+="$rps "; P99[$p]+="$p99 "
    printf 'round %d %-13s %10s req/s  p99 %s\n' "$round" "$p" "$rps" "$p99" >&2
  done
done

to_ms() { # wrk prints 812.00us / 1.23ms / 1.01s
  tr ' ' '\n' | { grep -v '^$' || true; } | awk '/us$/ {sub("us","");print $1/1000;next} /ms$/ {sub("ms","");print $1;next} /s$/ {sub("s","");print $1*1000}'
}

nginx_rps=$(median <<<"${RPS[nginx]:-}")
bare_rps=$(median <<<"${RPS[bare-pingora]:-}")
echo
# Each round's ratio to the bare proxy, then their median: rounds drift together (the
# machine's speed moves ±10% here), so a ratio within a round is steadier than a ratio of
# medians taken from different rounds.
round_ratio() {
  [ -n "${RPS[bare-pingora]:-}" ] || { echo "-"; return; }
  paste -d' ' <(tr ' ' '\n' <<<"${RPS[$1]}" | { grep -v '^$' || true; }) \
              <(tr ' ' '\n' <<<"${RPS[bare-pingora]}" | { grep -v '^$' || true; }) \
    | awk '{printf "%f ", $1/$2}' | median | awk '{printf "%.2f", $1}'
}
echo "| proxy | req/s (median of $ROUNDS) | p99 ms (median) | vs nginx | vs bare Pingora | vs bare, median of rounds |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for p in $PROXIES; do
  rps=$(median <<<"${RPS[$p]}")
  p99=$(to_ms <<<"${P99[$p]}" | median)
  vs_nginx=$( [ -n "$nginx_rps" ] && awk -v a="$rps" -v b="$nginx_rps" 'BEGIN{printf "%.2f", a/b}' || echo "-")
  vs_bare=$( [ -n "$bare_rps" ] && awk -v a="$rps" -v b="$bare_rps" 'BEGIN{printf "%.2f", a/b}' || echo "-")
  printf '| %s | %.0f | %.2f | %s | %s | %s |\n' "$p" "$rps" "$p99" "$vs_nginx" "$vs_bare" "$(round_ratio "$p")"
done
echo
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS alternating rounds, $(nproc) cores, pinned: $PIN, $(date -u +%F)"

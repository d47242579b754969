#!/usr/bin/env bash
# bench/idle-memory.sh — memory each idle keep-alive client connection costs a proxy.
#
# What: each proxy (one worker) in front of one nginx origin; after a warm-up request, N
# client connections each send one request, read the answer, and stay open. The proxy's
# resident memory (VmRSS) before and after, divided by N, is what one idle keep-alive
# connection holds in user space (kernel socket buffers are not counted, for any proxy).
#
# Usage: bench/idle-memory.sh     (env: CONNECTIONS=2000 PROXIES="nginx bare-pingora pylon")
# Needs: nginx (scripts/install-deps.sh --bench), python3; release binaries (built here).
set -euo pipefail

CONNECTIONS=${CONNECTIONS:-2000}
PROXIES=${PROXIES:-"nginx bare-pingora pylon"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/pylon-config.sh
source "$ROOT/bench/pylon-config.sh"
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
WORK=$(mktemp -d /tmp/pylon-idle.XXXXXX)
cleanup() {
  stop_started
  rm -rf "$WORK"
}
trap cleanup EXIT

build_release

# Holds N idle connections open and prints kB per connection of process PID.
cat > "$WORK/idle.py" <<'PY'
import socket, sys, time
port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
def request(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        body += s.recv(65536)
warm = socket.create_connection(("127.0.0.1", port)); request(warm); warm.close()
time.sleep(0.5)
before = rss()
held = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port)); request(s); held.append(s)
time.sleep(1)
print(f"{(rss() - before) / n:.1f}")
PY

start_origin

echo "| proxy | kB per idle keep-alive connection ($CONNECTIONS connections) |"
echo "| --- | ---: |"
for p in $PROXIES; do
  port=$(free_port)
  case $p in
    nginx)
      cat > "$WORK/proxy.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/proxy.pid; error_log $WORK/proxy.err warn;
events { worker_connections 8192; }
http { access_log off; keepalive_timeout 300s; upstream o { server 127.0.0.1:$ORIGIN; keepalive 64; }
  server { listen 127.0.0.1:$port; location / { proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
      nginx -p "$WORK" -c "$WORK/proxy.conf" & master=$!; PIDS+=($master)
      wait_port "$port"
      pid=$(pgrep -P "$master" | head -1) ;;
    bare-pingora)
      start_bare "$p" "$port"; pid=${PIDS[-1]}
      wait_port "$port" ;;
    pylon|pylon-mw)
      start_pylon "$p" "$port" "$ROOT/target/release/pylon"; pid=${PIDS[-1]}
      wait_port "$port" ;;
    *) echo "unknown proxy $p" >&2; exit 2 ;;
  esac
  printf '| %s | %s |\n' "$p" "$(python3 "$WORK/idle.py" "$port" "$pid" "$CONNECTIONS")"
  # SIGINT: Pingora's fast shutdown (on SIGTERM it would wait out its five-minute grace
  # period, and the script with it).
  kill -INT "$pid" 2>/dev/null || true
done

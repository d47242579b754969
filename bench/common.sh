# bench/common.sh — helpers the bench scripts share, sourced after they set ROOT.
#
# PIDS collects the processes a script starts; stop_started stops and reaps them (by pid,
# never by name). WORK is the script's scratch directory, removed by the EXIT trap the
# script sets (its `cleanup` calls stop_started, then removes WORK).

PIDS=()

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; return 1
}

# SIGINT first: Pingora's fast shutdown (on SIGTERM the bare proxy waits out Pingora's
# default five-minute grace period). A background job of a script starts with SIGINT
# ignored, and HAProxy, which sets no handler for it, keeps running: SIGTERM follows for
# whatever is still there a second later.
stop_started() {
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# The bare Pingora proxy builds in its own workspace against crates.io's Pingora, unpatched
# (see bench/bare-pingora/Cargo.toml), into its own target directory.
BARE_BIN="$ROOT/target/bare/release/bare-pingora"

# build_release: Pylon and the bare proxy, release profile (skipped with SKIP_BUILD=1).
build_release() {
  [ "${SKIP_BUILD:-0}" = 1 ] && return 0
  (cd "$ROOT" && cargo build --release -q -p pylon \
    && cargo build --release -q --manifest-path bench/bare-pingora/Cargo.toml --target-dir target/bare)
}

# start_origin [COMMAND PREFIX...]: the origin every bench proxies to — one nginx worker
# answering a 12-byte body, keep-alive without limit — on a free port, set in ORIGIN; run
# under the prefix when given (`start_origin taskset -c 0`). Needs WORK.
start_origin() {
  ORIGIN=$(free_port)
  mkdir -p "$WORK/origin"
  cat > "$WORK/origin/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/origin/nginx.pid;
error_log $WORK/origin/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$ORIGIN;
    location / { return 200 "hello world\n"; }
  }
}
CONF
  "$@" nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" & PIDS+=($!)
  wait_port "$ORIGIN"
}

# median: the median of numbers given one per line or separated by spaces.
median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# start_bare NAME PORT [COMMAND PREFIX...]: the bare Pingora proxy on PORT in front of
# ORIGIN, logging to WORK/NAME.log (BARE_FORWARDED passes through the environment).
start_bare() {
  local name=$1 port=$2; shift 2
  "$@" "$BARE_BIN" "127.0.0.1:$port" "127.0.0.1:$ORIGIN" >"$WORK/$name.log" 2>&1 & PIDS+=($!)
}

# start_pylon NAME PORT BIN [COMMAND PREFIX...]: Pylon (the binary BIN) on PORT with
# bench/pylon-config.sh's config NAME, its files in WORK/NAME/. Needs pylon-config.sh.
start_pylon() {
  local name=$1 port=$2 bin=$3; shift 3
  mkdir -p "$WORK/$name"
  pylon_config "$name" "$port" "$ORIGIN" "$WORK/$name/pylon.pid" > "$WORK/$name/pylon.yaml"
  "$@" "$bin" -c "$WORK/$name/pylon.yaml" --log-level warn >"$WORK/$name/log" 2>&1 & PIDS+=($!)
}

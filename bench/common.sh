# bench/common.sh — helpers the bench scripts share, sourced after they set ROOT.
#
# PIDS collects the processes a script starts; stop_started kills and reaps them (by pid,
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

stop_started() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}

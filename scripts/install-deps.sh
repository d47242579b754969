#!/usr/bin/env bash
# Installs what building and testing Pylon needs on a fresh Debian 12 machine, and nothing
# that is already there. Safe to run again.
#   cmake          — pingora-core builds zlib-ng (flate2) with it
#   pkg-config libssl-dev — Pingora's TLS and the `jwt` middleware link the system OpenSSL
#   redis-server   — the rate_limit tests run a real Redis (backend: redis)
#   protobuf-compiler — the etcd client crate (etcd-client) compiles etcd's .proto files with protoc
#   etcd-server etcd-client — the etcd fleet tests run a real etcd, and use etcdctl
# Benchmarks (bench/compare.sh, bench/paired.sh, bench/instructions.sh) additionally need: nginx-light haproxy
# caddy wrk valgrind (pass --bench).
set -euo pipefail

packages=(cmake pkg-config libssl-dev redis-server protobuf-compiler etcd-server etcd-client)
if [ "${1:-}" = "--bench" ]; then
  packages+=(nginx-light haproxy caddy wrk valgrind)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null

# bench/pylon-config.sh — the Pylon config both benchmarks run, sourced by compare.sh and
# instructions.sh so that the two always measure the same thing.
#
# pylon_config NAME PORT ORIGIN_PORT PID_FILE prints it: a realistic small table (six routes
# over hosts, prefixes, a ClientIP condition and a `respond` route); the request falls
# through to the catch-all route and is balanced round robin over the origin, twice. For
# NAME `pylon-mw` that route also carries request_id, headers and cors; for `pylon-rl`, a
# per-client `rate_limit` high enough never to refuse (every request passes the decision
# and gets the two `RateLimit` headers). Metrics are on (the default) in every config but
# `pylon-off`, which turns them off; `pylon-obs` adds a JSON access log to a file beside the
# pid file — the pair measures what observability costs (issue 7: within 3%).
pylon_config() {
  local name=$1 port=$2 origin=$3 pid_file=$4 chain="[]" extra=""
  [ "$name" = pylon-mw ] && chain="[ids, shape, web-cors]"
  [ "$name" = pylon-rl ] && chain="[per-ip]"
  [ "$name" = pylon-off ] && extra="metrics: { enabled: false }"
  [ "$name" = pylon-obs ] && extra="access_log: { format: json, path: $(dirname "$pid_file")/access.log }"
  cat <<CONF
server: { threads: 1, pid_file: $pid_file }
$extra
listeners:
  - { name: web, address: "127.0.0.1:$port" }
upstreams:
  origin: { servers: ["127.0.0.1:$origin", "127.0.0.1:$origin"] }
routes:
  - { name: shop, rule: "Host(\`shop.example.com\`) && PathPrefix(\`/cart\`)", upstream: origin }
  - { name: api-v1, rule: "Host(\`api.example.com\`) && PathPrefix(\`/v1\`)", upstream: origin }
  - { name: api-v2, rule: "Host(\`api.example.com\`) && PathPrefix(\`/v2\`)", upstream: origin }
  - { name: admin, rule: "PathPrefix(\`/admin\`) && ClientIP(\`10.0.0.0/8\`)", upstream: origin }
  - { name: health, rule: "Path(\`/health\`)", respond: { status: 200, body: "ok" } }
  - { name: default, rule: "PathPrefix(\`/\`)", upstream: origin, middlewares: $chain }
middlewares:
  ids: { request_id: {} }
  shape: { headers: { request: { set: { X-Client: "{client_ip}" } }, response: { set: { X-Served-By: pylon } } } }
  web-cors: { cors: { allowed_origins: ["https://app.example.com"], exposed_headers: [X-Request-ID] } }
  per-ip: { rate_limit: { average: 1000000, period: 1s } }
CONF
}

//! Config texts the tests share: one listener, one upstream `app`, one catch-all route.

/// `servers` is a YAML flow list (`["127.0.0.1:3000", { address: …, weight: 2 }]`);
/// `upstream_extra` and `route_extra` are extra lines (indented 4 spaces) for the upstream
/// and the route.
pub fn one_upstream(servers: &str, upstream_extra: &str, route_extra: &str) -> String {
    format!(
        r#"
listeners:
  - name: web
    address: "@listen0@"
upstreams:
  app:
    servers: {servers}
{upstream_extra}
routes:
  - name: all
    rule: "PathPrefix(`/`)"
    upstream: app
{route_extra}
"#
    )
}

/// A YAML flow list of plain server addresses.
pub fn servers(addresses: &[&str]) -> String {
    let quoted: Vec<String> = addresses.iter().map(|a| format!("\"{a}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

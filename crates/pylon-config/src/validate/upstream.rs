//! Checks of upstreams (servers, balancing, peer options, health, retries), of
//! load-balancer mode and of `dns`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::{first_seen, headers, is_header_value, is_tchar, Spot};
use crate::duration::format_duration;
use crate::error::ConfigError;
use crate::health::{CheckType, HealthCheck, PassiveHealth};
use crate::loader::{Piece, Pieces};
use crate::peer::{Alpn, PeerOptions, MAX_DSCP};
use crate::retry::{Retries, RetryMethods, MAX_RETRY_ATTEMPTS};
use crate::server::{check_host_name, ServerAddress, DEFAULT_WEIGHT};
use crate::upstream::{Balance, Upstream, LB_NAME};

/// Names unique across files; then each upstream, the load-balancer one included.
pub(super) fn upstreams(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    let mut names: HashMap<&str, &Piece<'_, _>> = HashMap::new();
    for u in &pieces.upstreams {
        let name = &u.value.0;
        if let Some(first) = first_seen(&mut names, name, u) {
            let message = format!("upstream `{name}` is already defined at {}", first.place());
            errors.push(ConfigError::new(
                &u.doc.file,
                u.name_pos,
                u.path.clone(),
                message,
            ));
        }
    }
    let named = pieces
        .upstreams
        .iter()
        .map(|u| (u.doc, u.node, &u.path, &u.value.1));
    let lb = pieces.lb.iter().map(|u| (u.doc, u.node, &u.path, &u.value));
    for (doc, node, path, value) in named.chain(lb) {
        upstream(&Spot::new(&doc.file, node, path.clone()), value, errors);
    }
}

fn upstream(spot: &Spot<'_>, u: &Upstream, errors: &mut Vec<ConfigError>) {
    let servers = spot.key("servers");
    if u.servers.is_empty() {
        errors.push(servers.error("an upstream needs at least one server"));
    }
    for (i, server) in u.servers.iter().enumerate() {
        let at = servers.item(i);
        if server.weight < DEFAULT_WEIGHT {
            errors.push(at.key("weight").error("weight must be at least 1"));
        }
        peer(&at, &server.peer, errors);
    }
    peer(spot, &u.peer, errors);
    tls_usage(spot, u, errors);
    match (u.balance, &u.hash_key) {
        (Balance::Hash, None) => {
            let at = if spot.has("balance") {
                spot.key("balance")
            } else {
                spot.clone()
            };
            errors.push(at.error("`hash_key` is required with `balance: hash`"));
        }
        (Balance::Hash, Some(_)) | (_, None) => {}
        (_, Some(_)) => {
            errors.push(spot.key_error("hash_key", "`hash_key` only applies to `balance: hash`"));
        }
    }
    spot.within("panic_threshold", u.panic_threshold, (0, 100), errors);
    if let Some(check) = &u.health_check {
        health_check(&spot.key("health_check"), check, errors);
    }
    if let Some(passive) = &u.passive_health {
        passive_health(&spot.key("passive_health"), passive, errors);
    }
    if let Some(r) = &u.retries {
        retries(&spot.key("retries"), r, errors);
    }
}

/// Checks of peer options where they are written (an upstream or one server).
fn peer(spot: &Spot<'_>, p: &PeerOptions, errors: &mut Vec<ConfigError>) {
    match (&p.client_cert, &p.client_key) {
        (Some(_), None) => {
            errors
                .push(spot.key_error("client_cert", "`client_cert` needs `client_key` beside it"));
        }
        (None, Some(_)) => {
            errors.push(spot.key_error("client_key", "`client_key` needs `client_cert` beside it"));
        }
        _ => {}
    }
    for (key, file) in [
        ("ca_file", &p.ca_file),
        ("client_cert", &p.client_cert),
        ("client_key", &p.client_key),
    ] {
        if let Some(file) = file {
            if let Err(e) = readable_file(file) {
                errors.push(
                    spot.key(key)
                        .error(format!("cannot read {}: {e}", file.display())),
                );
            }
        }
    }
    if let Some(sni) = &p.sni {
        if let Err(why) = check_host_name(sni) {
            errors.push(
                spot.key("sni")
                    .error(format!("sni must be a host name: {why}")),
            );
        }
    }
    if let Some(dscp) = p.dscp {
        spot.within("dscp", dscp, (0, MAX_DSCP), errors);
    }
    if let Some(n) = p.max_connections {
        spot.at_least("max_connections", n, 1, errors);
    }
    if let Some(n) = p.max_h2_streams {
        spot.at_least("max_h2_streams", n, 1, errors);
    }
    if let Some(k) = &p.tcp_keepalive {
        let at = spot.key("tcp_keepalive");
        at.at_least("count", k.count, 1, errors);
        for (key, value) in [("idle", k.idle), ("interval", k.interval)] {
            if value < Duration::from_secs(1) {
                let message = format!(
                    "{key} must be at least 1s, found {}",
                    format_duration(value)
                );
                errors.push(at.key(key).error(message));
            }
        }
    }
}

/// Whether `path` can be opened for reading and is a file.
fn readable_file(path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err("not a file".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The TLS-only options set in `p`.
fn tls_only(p: &PeerOptions) -> Vec<&'static str> {
    let mut keys = Vec::new();
    for (key, set) in [
        ("sni", p.sni.is_some()),
        ("verify_cert", p.verify_cert.is_some()),
        ("verify_hostname", p.verify_hostname.is_some()),
        ("ca_file", p.ca_file.is_some()),
        ("client_cert", p.client_cert.is_some()),
        ("client_key", p.client_key.is_some()),
        ("alpn", p.alpn == Some(Alpn::H1h2)),
    ] {
        if set {
            keys.push(key);
        }
    }
    keys
}

/// `sni` (or `alpn: h1h2`) without TLS; `off` when the entry itself sets `tls: false`.
fn tls_message(key: &str, why: &str, off: bool) -> String {
    match (key, off) {
        ("alpn", true) => format!(
            "`alpn: h1h2` is negotiated in the TLS handshake, {why}: use `h2` for HTTP/2 over \
             cleartext"
        ),
        ("alpn", false) => format!(
            "`alpn: h1h2` is negotiated in the TLS handshake, {why}: add `tls: true`, or use \
             `h2` for HTTP/2 over cleartext"
        ),
        (_, true) => format!("`{key}` only applies to TLS connections, {why}"),
        (_, false) => format!("`{key}` only applies to TLS connections, {why}: add `tls: true`"),
    }
}

/// Every TLS option written is used by a TLS connection: a server's own by that server, an
/// upstream's by at least one of its servers.
fn tls_usage(spot: &Spot<'_>, u: &Upstream, errors: &mut Vec<ConfigError>) {
    let servers = spot.key("servers");
    let mut any_tls = false;
    for (i, server) in u.servers.iter().enumerate() {
        let tls = server.peer.tls.or(u.peer.tls).unwrap_or(false);
        any_tls |= tls;
        // Pingora cannot verify a certificate without a name to verify (it skips
        // verification when the SNI is empty): an IP server needs `sni`, or an explicit
        // `verify_cert: false`.
        let verify = server
            .peer
            .verify_cert
            .or(u.peer.verify_cert)
            .unwrap_or(true);
        let named = server.peer.sni.is_some() || u.peer.sni.is_some();
        if tls && verify && !named && matches!(server.address, ServerAddress::Ip(_)) {
            errors.push(servers.item(i).error(format!(
                "TLS to an IP address cannot verify the certificate without a name: set `sni` \
                 to the name in {}'s certificate, or `verify_cert: false`",
                server.address
            )));
        }
        if !tls {
            let at = servers.item(i);
            let off = server.peer.tls == Some(false);
            let why = match off {
                true => "and this server sets `tls: false`",
                false => "and this server does not use TLS",
            };
            for key in tls_only(&server.peer) {
                errors.push(at.key_error(key, tls_message(key, why, off)));
            }
        }
    }
    if !any_tls && !u.servers.is_empty() {
        for key in tls_only(&u.peer) {
            let off = u.peer.tls == Some(false);
            let why = match off {
                true => "and this upstream sets `tls: false`",
                false => "and no server of this upstream uses TLS",
            };
            errors.push(spot.key_error(key, tls_message(key, why, off)));
        }
    }
}

/// Keys of a health check that only apply to HTTP probes.
const HTTP_CHECK_KEYS: [&str; 5] = ["path", "method", "host", "expected_status", "headers"];

fn health_check(spot: &Spot<'_>, h: &HealthCheck, errors: &mut Vec<ConfigError>) {
    if h.timeout >= h.interval {
        let message = format!(
            "timeout must be less than interval ({}), found {}",
            format_duration(h.interval),
            format_duration(h.timeout)
        );
        errors.push(spot.key("timeout").error(message));
    }
    spot.at_least("healthy_threshold", h.healthy_threshold, 1, errors);
    spot.at_least("unhealthy_threshold", h.unhealthy_threshold, 1, errors);
    if let Some(port) = h.port {
        spot.at_least("port", port, 1, errors);
    }
    if h.kind == CheckType::Tcp {
        for key in HTTP_CHECK_KEYS.into_iter().filter(|k| spot.has(k)) {
            let message = format!("`{key}` only applies to `http` and `https` checks");
            errors.push(spot.key_error(key, message));
        }
        return;
    }
    if !h.path.starts_with('/') {
        let message = format!("path must start with `/`, found {:?}", h.path);
        errors.push(spot.key("path").error(message));
    } else if !h.path.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        let message = format!(
            "path must be printable ASCII without spaces (percent-encode the rest), found {:?}",
            h.path
        );
        errors.push(spot.key("path").error(message));
    }
    if !is_token(&h.method) {
        let message = format!(
            "invalid method {:?}: use letters, digits and !#$%&'*+-.^_`|~",
            h.method
        );
        errors.push(spot.key("method").error(message));
    }
    if let Some(host) = &h.host {
        if host.is_empty() || !is_header_value(host) {
            let message = format!("invalid host {host:?}: use non-empty printable ASCII");
            errors.push(spot.key("host").error(message));
        }
    }
    if h.expected_status.is_empty() {
        let message = "expected_status needs at least one status, e.g. `[200]` or `[\"2xx\"]`";
        errors.push(spot.key("expected_status").error(message));
    }
    headers(&spot.key("headers"), errors);
}

fn passive_health(spot: &Spot<'_>, p: &PassiveHealth, errors: &mut Vec<ConfigError>) {
    spot.at_least("consecutive_failures", p.consecutive_failures, 1, errors);
    let statuses = spot.key("failure_statuses");
    for (i, status) in p.failure_statuses.iter().enumerate() {
        if !(100..=599).contains(status) {
            let message = format!("status must be from 100 to 599, found {status}");
            errors.push(statuses.item(i).error(message));
        }
    }
    if p.ejection_time.is_zero() {
        errors.push(
            spot.key("ejection_time")
                .error("ejection_time must be more than 0s"),
        );
    }
    if p.max_ejection_time < p.ejection_time {
        let message = format!(
            "max_ejection_time must be at least ejection_time ({}), found {}",
            format_duration(p.ejection_time),
            format_duration(p.max_ejection_time)
        );
        errors.push(spot.key("max_ejection_time").error(message));
    }
    spot.within(
        "max_ejected_percent",
        p.max_ejected_percent,
        (0, 100),
        errors,
    );
}

/// Checks retries, on an upstream or a route.
pub(super) fn retries(spot: &Spot<'_>, r: &Retries, errors: &mut Vec<ConfigError>) {
    spot.within("attempts", r.attempts, (0, MAX_RETRY_ATTEMPTS), errors);
    if r.on.is_empty() {
        let message = "on needs at least one condition, e.g. `[connect_failure]`";
        errors.push(spot.key("on").error(message));
    }
    if let RetryMethods::List(list) = &r.methods {
        let at = spot.key("methods");
        if list.is_empty() {
            let message = "methods needs at least one method, or `idempotent` or `all`";
            errors.push(at.error(message));
        }
        for (i, method) in list.iter().enumerate() {
            if !is_token(method) {
                let message =
                    format!("invalid method {method:?}: use letters, digits and !#$%&'*+-.^_`|~");
                errors.push(at.item(i).error(message));
            }
        }
    }
    let ratio = r.budget.ratio;
    if !(0.0..=1.0).contains(&ratio) {
        let message = format!("ratio must be from 0.0 to 1.0, found {ratio}");
        errors.push(spot.key("budget").key("ratio").error(message));
    }
}

fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_tchar)
}

/// A top-level `upstream` stands for the upstream `default` and a route to it: no
/// `routes` beside it, and no other upstream of that name.
pub(super) fn load_balancer_mode(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    let Some(lb) = &pieces.lb else {
        return;
    };
    let at = |message: String| ConfigError::new(&lb.doc.file, lb.name_pos, "upstream", message);
    if let Some((doc, pos)) = pieces.routes_key {
        errors.push(at(format!(
            "use either a top-level `upstream` (load-balancer mode) or `routes`, not both \
             (`routes` is at {})",
            ConfigError::place(&doc.file, pos)
        )));
    }
    if pieces.upstream_names.contains(LB_NAME) {
        let place = pieces
            .upstreams
            .iter()
            .find(|u| u.value.0 == LB_NAME)
            .map(|u| format!(" at {}", u.place()))
            .unwrap_or_default();
        errors.push(at(format!(
            "a top-level `upstream` is the upstream `{LB_NAME}`, which is already defined{place}: \
             rename that one"
        )));
    }
}

pub(super) fn dns(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    let Some(dns) = &pieces.dns else {
        return;
    };
    let spot = Spot::new(&dns.doc.file, dns.node, dns.path.clone());
    let d = &dns.value;
    spot.at_least("attempts", d.attempts, 1, errors);
    if d.timeout.is_zero() {
        errors.push(spot.key("timeout").error("timeout must be more than 0s"));
    }
    if let Some(refresh) = d.refresh {
        if refresh < Duration::from_secs(1) {
            let message = format!(
                "refresh must be at least 1s, found {}",
                format_duration(refresh)
            );
            errors.push(spot.key("refresh").error(message));
        }
    }
}

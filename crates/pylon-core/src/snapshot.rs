//! The runtime snapshot: everything a request needs, compiled from a validated config and
//! swapped whole behind `arc-swap`.
//!
//! A request loads the snapshot once (in `new_ctx`) and sees one consistent world for its
//! whole life, even if a reload swaps in a new one meanwhile. Related tables (listeners,
//! their routers, the pools the routes point at) live in this one value, never in two swaps
//! that could disagree.

use crate::access_log::AccessLog;
use crate::errors::ErrorPages;
use crate::middleware::{compile_one, Chain, Named};
use crate::respond::PreparedResponse;
use crate::upstream::{RetryPolicy, Timeouts, UpstreamPool};
use arc_swap::ArcSwap;
use pylon_config::Config;
use pylon_config::Route;
use pylon_rules::{Router, Rule};
use pylon_upstream::dns::Resolver;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// How a route proxies: its pool, and the pool's policy with the route's overrides applied.
#[derive(Debug)]
pub struct RouteUpstream {
    pub pool: Arc<UpstreamPool>,
    pub timeouts: Timeouts,
    /// Whether `timeouts` differ from the pool's (then each attempt's peer is patched).
    pub custom_timeouts: bool,
    /// Total time for the whole request, retries included.
    pub total_timeout: Option<std::time::Duration>,
    pub retry: RetryPolicy,
}

/// Where a matched route sends the request.
#[derive(Debug)]
pub enum RouteTarget {
    /// Proxy to a server of this pool.
    Upstream(RouteUpstream),
    /// Answer directly with a fixed response.
    Respond(Box<PreparedResponse>),
    /// No target: a middleware answers (`static`, `redirect`, `respond`); a request no
    /// middleware answered gets 404.
    Middlewares,
}

/// A compiled route.
#[derive(Debug)]
pub struct RouteRuntime {
    pub name: Arc<str>,
    pub target: RouteTarget,
    /// The route's middlewares, in order.
    pub chain: Chain,
    /// Where this route's requests are logged: its own `access_log`, else the top-level
    /// one; `None` when off.
    pub access_log: Option<Arc<AccessLog>>,
    /// Handles to the route's metric series.
    pub metrics: crate::metrics::RouteMetrics,
}

/// A listener and the routes it serves, indexed.
#[derive(Debug)]
pub struct ListenerRuntime {
    pub name: String,
    pub address: SocketAddr,
    pub router: Router<Arc<RouteRuntime>>,
}

/// The whole runtime state.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every applied config; starts at 1.
    pub generation: u64,
    /// The config this snapshot was compiled from (what a reload compares against).
    pub config: Arc<Config>,
    pub listeners: Vec<ListenerRuntime>,
    pub upstreams: HashMap<String, Arc<UpstreamPool>>,
    /// The named middlewares, compiled (kept across reloads when unchanged).
    pub middlewares: Named,
    /// Every route by name (a reload keeps the middleware chain of an unchanged route).
    pub routes: HashMap<Arc<str>, Arc<RouteRuntime>>,
    /// Bodies for Pylon's own error responses.
    pub error_pages: ErrorPages,
    /// Trace propagation and span export; `None` when `tracing:` is absent.
    pub tracing: Option<Arc<crate::tracing::Tracing>>,
    /// The top-level access log, for requests no route matched.
    pub access_log: Option<Arc<AccessLog>>,
}

/// What a reload changed, for its log line: "routes: +1 ~2 -0; upstreams: api kept, web
/// rebuilt; middlewares: …".
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChangeSummary {
    pub routes_added: usize,
    pub routes_changed: usize,
    pub routes_removed: usize,
    /// Each upstream of the new config and what happened to it, then the removed ones.
    pub upstreams: Vec<(String, Change)>,
    pub middlewares: Vec<(String, Change)>,
}

/// What happened to one named pool or middleware on a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Unchanged: the running instance (health state, counters, connections, buckets) is
    /// kept.
    Kept,
    /// Changed: built anew.
    Rebuilt,
    Added,
    Removed,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Kept => "kept",
            Change::Rebuilt => "rebuilt",
            Change::Added => "added",
            Change::Removed => "removed",
        })
    }
}

impl std::fmt::Display for ChangeSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "routes: +{} ~{} -{}",
            self.routes_added, self.routes_changed, self.routes_removed
        )?;
        for (what, list) in [
            ("upstreams", &self.upstreams),
            ("middlewares", &self.middlewares),
        ] {
            if list.is_empty() {
                continue;
            }
            write!(f, "; {what}: ")?;
            for (i, (name, change)) in list.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{name} {change}")?;
            }
        }
        Ok(())
    }
}

impl ChangeSummary {
    /// Compares the named sections and routes of two configs.
    fn between(old: &Config, new: &Config) -> ChangeSummary {
        let mut summary = ChangeSummary {
            upstreams: named_changes(&old.upstreams, &new.upstreams),
            middlewares: named_changes(&old.middlewares, &new.middlewares),
            ..ChangeSummary::default()
        };
        let old_routes: HashMap<&str, &Route> =
            old.routes.iter().map(|r| (r.name.as_str(), r)).collect();
        for route in &new.routes {
            match old_routes.get(route.name.as_str()) {
                None => summary.routes_added += 1,
                Some(before) if *before != route => summary.routes_changed += 1,
                Some(_) => {}
            }
        }
        // By name through a set: a linear search per route made a 10,000-route apply
        // quadratic (benches/apply.rs).
        let new_names: std::collections::HashSet<&str> =
            new.routes.iter().map(|r| r.name.as_str()).collect();
        summary.routes_removed = old_routes
            .keys()
            .filter(|name| !new_names.contains(**name))
            .count();
        summary
    }

    /// Whether nothing that routes or proxies changed.
    pub fn is_empty(&self) -> bool {
        self.routes_added + self.routes_changed + self.routes_removed == 0
            && self
                .upstreams
                .iter()
                .chain(&self.middlewares)
                .all(|(_, c)| *c == Change::Kept)
    }
}

fn named_changes<T: PartialEq>(
    old: &std::collections::BTreeMap<String, T>,
    new: &std::collections::BTreeMap<String, T>,
) -> Vec<(String, Change)> {
    let mut out: Vec<(String, Change)> = new
        .iter()
        .map(|(name, def)| {
            let change = match old.get(name) {
                None => Change::Added,
                Some(before) if before == def => Change::Kept,
                Some(_) => Change::Rebuilt,
            };
            (name.clone(), change)
        })
        .collect();
    out.extend(
        old.keys()
            .filter(|name| !new.contains_key(*name))
            .map(|name| (name.clone(), Change::Removed)),
    );
    out
}

/// The shared, swappable handle every service reads from.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// A config that passed validation but could not be compiled (should not happen; kept so a
/// reload can never panic on an inconsistency between validation and compilation).
#[derive(Debug, thiserror::Error)]
#[error("cannot compile the config: {0}")]
pub struct CompileError(pub String);

impl Snapshot {
    /// Compiles a validated config; server names are resolved through `resolver`.
    pub fn compile(
        config: &Config,
        generation: u64,
        resolver: &Resolver,
    ) -> Result<Snapshot, CompileError> {
        Self::compile_next(Arc::new(config.clone()), generation, resolver, None)
            .map(|(snapshot, _)| snapshot)
    }

    /// Compiles the config that follows `previous`: upstream pools and named middlewares
    /// whose definition did not change are carried over as they run (health state, in-flight
    /// counters, pooled connections, rate-limit buckets), the rest is built anew. Blocking
    /// (new pools resolve their server names): call it off the async workers.
    pub fn compile_next(
        config: Arc<Config>,
        generation: u64,
        resolver: &Resolver,
        previous: Option<&Snapshot>,
    ) -> Result<(Snapshot, ChangeSummary), CompileError> {
        let summary = previous
            .map(|p| ChangeSummary::between(&p.config, &config))
            .unwrap_or_default();
        let mut upstreams: HashMap<String, Arc<UpstreamPool>> = HashMap::new();
        for (name, def) in &config.upstreams {
            let kept = previous
                .and_then(|p| p.upstreams.get(name))
                .filter(|pool| pool.definition == *def);
            let pool = match kept {
                Some(pool) => pool.clone(),
                None => Arc::new(UpstreamPool::build(name, def, resolver).map_err(CompileError)?),
            };
            upstreams.insert(name.clone(), pool);
        }

        let mut named: Named = HashMap::new();
        for (name, def) in &config.middlewares {
            let kept = previous
                .filter(|p| p.config.middlewares.get(name) == Some(def))
                .and_then(|p| p.middlewares.get(name));
            let mw = match kept {
                Some(mw) => mw.clone(),
                None => compile_one(def)
                    .map_err(|e| CompileError(format!("middleware `{name}`: {e}")))?,
            };
            named.insert(name.clone(), mw);
        }

        // The previous definitions by name, to find unchanged routes in constant time.
        let previous_routes: HashMap<&str, &Route> = previous
            .map(|p| {
                p.config
                    .routes
                    .iter()
                    .map(|r| (r.name.as_str(), r))
                    .collect()
            })
            .unwrap_or_default();
        let access_log = config
            .access_log
            .as_ref()
            .map(|c| AccessLog::compile(c).map(Arc::new))
            .transpose()
            .map_err(|e| CompileError(format!("access_log: {e}")))?;
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            let rule = Rule::parse(&route.rule)
                .map_err(|e| CompileError(format!("route `{}`: rule {e}", route.name)))?;
            let target = match (&route.upstream, &route.respond) {
                (Some(name), None) => {
                    let pool = upstreams.get(name).ok_or_else(|| {
                        CompileError(format!("route `{}`: unknown upstream `{name}`", route.name))
                    })?;
                    RouteTarget::Upstream(route_upstream(route, pool))
                }
                (None, Some(respond)) => RouteTarget::Respond(Box::new(
                    PreparedResponse::new(respond)
                        .map_err(|e| CompileError(format!("route `{}`: {e}", route.name)))?,
                )),
                (None, None) => RouteTarget::Middlewares,
                _ => {
                    return Err(CompileError(format!(
                        "route `{}` takes `upstream` or `respond`, not both",
                        route.name
                    )))
                }
            };
            // An unchanged route whose named middlewares were all kept keeps its chain, so
            // inline instances keep their state (a rate limiter's buckets) too.
            let kept_chain = previous
                .filter(|p| {
                    previous_routes.get(route.name.as_str()) == Some(&route)
                        && route.middlewares.iter().all(|m| match m {
                            pylon_config::MiddlewareRef::Named(n) => {
                                p.config.middlewares.get(n) == config.middlewares.get(n)
                            }
                            pylon_config::MiddlewareRef::Inline(_) => true,
                        })
                })
                .and_then(|p| p.routes.get(route.name.as_str()))
                .map(|r| r.chain.clone());
            let chain = match kept_chain {
                Some(chain) => chain,
                None => Chain::compile(&route.middlewares, &named)
                    .map_err(|e| CompileError(format!("route `{}`: {e}", route.name)))?,
            };
            let route_log = match &route.access_log {
                None => access_log.clone(),
                Some(pylon_config::RouteAccessLog::Off) => None,
                Some(pylon_config::RouteAccessLog::On(c)) => {
                    Some(Arc::new(AccessLog::compile(c).map_err(|e| {
                        CompileError(format!("route `{}`: access_log: {e}", route.name))
                    })?))
                }
            };
            let runtime = Arc::new(RouteRuntime {
                name: Arc::from(route.name.as_str()),
                target,
                chain,
                access_log: route_log,
                metrics: crate::metrics::RouteMetrics::compile(route, &config),
            });
            routes.push((route, rule, runtime));
        }

        let listeners = config
            .listeners
            .iter()
            .map(|listener| {
                let entries = routes
                    .iter()
                    .filter(|(route, _, _)| {
                        route
                            .listeners
                            .as_ref()
                            .is_none_or(|names| names.iter().any(|n| n == &listener.name))
                    })
                    .map(|(route, rule, runtime)| {
                        (rule.clone(), route.effective_priority(), runtime.clone())
                    })
                    .collect();
                ListenerRuntime {
                    name: listener.name.clone(),
                    address: listener.address,
                    router: Router::new(entries),
                }
            })
            .collect();

        let error_pages = ErrorPages::new(&config.error_pages).map_err(CompileError)?;
        let tracing = match &config.tracing {
            Some(def) => Some(Arc::new(
                crate::tracing::Tracing::compile(def, previous.and_then(|p| p.tracing.as_deref()))
                    .map_err(CompileError)?,
            )),
            None => None,
        };
        let by_name = routes
            .iter()
            .map(|(_, _, runtime)| (runtime.name.clone(), runtime.clone()))
            .collect();
        Ok((
            Snapshot {
                generation,
                config,
                listeners,
                upstreams,
                middlewares: named,
                routes: by_name,
                error_pages,
                tracing,
                access_log,
            },
            summary,
        ))
    }

    /// The listener a connection arrived on, by its local address. A listener bound to an
    /// unspecified address (`0.0.0.0`, `[::]`) owns every local address on its port.
    pub fn listener_for(&self, local: Option<SocketAddr>) -> Option<&ListenerRuntime> {
        let Some(local) = local else {
            return self.listeners.first();
        };
        self.listeners
            .iter()
            .find(|l| l.address == local)
            .or_else(|| {
                self.listeners
                    .iter()
                    .find(|l| l.address.port() == local.port() && l.address.ip().is_unspecified())
            })
    }
}

/// The pool's policy with the route's overrides.
fn route_upstream(route: &Route, pool: &Arc<UpstreamPool>) -> RouteUpstream {
    let base = pool.timeouts;
    let timeouts = Timeouts {
        connect: route.connect_timeout.unwrap_or(base.connect),
        read: route.read_timeout.unwrap_or(base.read),
        write: route.write_timeout.unwrap_or(base.write),
        idle: route.idle_timeout.or(base.idle),
    };
    RouteUpstream {
        pool: pool.clone(),
        custom_timeouts: timeouts != base,
        timeouts,
        total_timeout: route.timeout,
        retry: route
            .retries
            .as_ref()
            .map_or_else(|| pool.retry.clone(), RetryPolicy::new),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pylon_upstream::dns::DnsSettings;

    fn config(api_server: &str, extra_route: bool) -> Config {
        let mut text = format!(
            r#"
listeners: [{{ name: web, address: "127.0.0.1:8080" }}]
upstreams:
  api: {{ servers: ["{api_server}"] }}
  web: {{ servers: ["127.0.0.1:9002"] }}
middlewares:
  ids: {{ request_id: {{}} }}
routes:
  - {{ name: api, rule: "PathPrefix(`/api`)", upstream: api, middlewares: [ids] }}
  - {{ name: web, rule: "PathPrefix(`/`)", upstream: web, middlewares: [{{ request_id: {{}} }}] }}
"#
        );
        if extra_route {
            text.push_str("  - { name: new, rule: \"Path(`/new`)\", upstream: web }\n");
        }
        pylon_config::load_str(
            &text,
            pylon_config::Format::Yaml,
            std::path::Path::new("t.yaml"),
        )
        .unwrap()
    }

    #[test]
    fn a_reload_keeps_what_did_not_change_and_names_what_did() {
        let resolver = Resolver::new(DnsSettings::default()).unwrap();
        let first = Snapshot::compile(&config("127.0.0.1:9001", false), 1, &resolver).unwrap();
        let (next, summary) = Snapshot::compile_next(
            Arc::new(config("127.0.0.1:9009", true)),
            2,
            &resolver,
            Some(&first),
        )
        .unwrap();
        assert_eq!(
            summary.to_string(),
            "routes: +1 ~0 -0; upstreams: api rebuilt, web kept; middlewares: ids kept"
        );
        assert!(!Arc::ptr_eq(
            &first.upstreams["api"],
            &next.upstreams["api"]
        ));
        assert!(Arc::ptr_eq(&first.upstreams["web"], &next.upstreams["web"]));
        assert!(Arc::ptr_eq(
            &first.middlewares["ids"],
            &next.middlewares["ids"]
        ));
        // The unchanged route with an inline middleware keeps that instance (and its state).
        let chain =
            |s: &Snapshot, r: &str| Arc::as_ptr(s.routes[r].chain.first().unwrap()).cast::<()>();
        assert_eq!(chain(&first, "web"), chain(&next, "web"));

        let (_, same) =
            Snapshot::compile_next(next.config.clone(), 3, &resolver, Some(&next)).unwrap();
        assert!(same.is_empty(), "{same}");
    }
}

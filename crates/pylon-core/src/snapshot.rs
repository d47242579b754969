//! The runtime snapshot: everything a request needs, compiled from a validated config and
//! swapped whole behind `arc-swap`.
//!
//! A request loads the snapshot once (in `new_ctx`) and sees one consistent world for its
//! whole life, even if a reload swaps in a new one meanwhile. Related tables (listeners,
//! their routers, the pools the routes point at) live in this one value, never in two swaps
//! that could disagree.

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
    pub listeners: Vec<ListenerRuntime>,
    pub upstreams: HashMap<String, Arc<UpstreamPool>>,
    /// Bodies for Pylon's own error responses.
    pub error_pages: ErrorPages,
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
        let mut upstreams: HashMap<String, Arc<UpstreamPool>> = HashMap::new();
        for (name, def) in &config.upstreams {
            let pool = UpstreamPool::build(name, def, resolver).map_err(CompileError)?;
            upstreams.insert(name.clone(), Arc::new(pool));
        }

        let mut named: Named = HashMap::new();
        for (name, def) in &config.middlewares {
            let mw =
                compile_one(def).map_err(|e| CompileError(format!("middleware `{name}`: {e}")))?;
            named.insert(name.clone(), mw);
        }

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
            let chain = Chain::compile(&route.middlewares, &named)
                .map_err(|e| CompileError(format!("route `{}`: {e}", route.name)))?;
            let runtime = Arc::new(RouteRuntime {
                name: Arc::from(route.name.as_str()),
                target,
                chain,
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

        Ok(Snapshot {
            generation,
            listeners,
            upstreams,
            error_pages: ErrorPages::new(&config.error_pages).map_err(CompileError)?,
        })
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

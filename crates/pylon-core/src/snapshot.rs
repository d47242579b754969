//! The runtime snapshot: everything a request needs, compiled from a validated config and
//! swapped whole behind `arc-swap`.
//!
//! A request loads the snapshot once (in `new_ctx`) and sees one consistent world for its
//! whole life, even if a reload swaps in a new one meanwhile. Related tables (listeners,
//! their routers, the pools the routes point at) live in this one value, never in two swaps
//! that could disagree.

use crate::respond::PreparedResponse;
use crate::upstream::UpstreamPool;
use arc_swap::ArcSwap;
use pylon_config::Config;
use pylon_rules::{Router, Rule};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where a matched route sends the request.
#[derive(Debug)]
pub enum RouteTarget {
    /// Proxy to a server of this pool.
    Upstream(Arc<UpstreamPool>),
    /// Answer directly with a fixed response.
    Respond(Box<PreparedResponse>),
}

/// A compiled route.
#[derive(Debug)]
pub struct RouteRuntime {
    pub name: String,
    pub target: RouteTarget,
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
}

/// The shared, swappable handle every service reads from.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// A config that passed validation but could not be compiled (should not happen; kept so a
/// reload can never panic on an inconsistency between validation and compilation).
#[derive(Debug, thiserror::Error)]
#[error("cannot compile the config: {0}")]
pub struct CompileError(pub String);

impl Snapshot {
    /// Compiles a validated config.
    pub fn compile(config: &Config, generation: u64) -> Result<Snapshot, CompileError> {
        let upstreams: HashMap<String, Arc<UpstreamPool>> = config
            .upstreams
            .iter()
            .map(|(name, def)| (name.clone(), Arc::new(UpstreamPool::new(name, def))))
            .collect();

        let mut routes = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            let rule = Rule::parse(&route.rule)
                .map_err(|e| CompileError(format!("route `{}`: rule {e}", route.name)))?;
            let target = match (&route.upstream, &route.respond) {
                (Some(name), None) => {
                    let pool = upstreams.get(name).ok_or_else(|| {
                        CompileError(format!("route `{}`: unknown upstream `{name}`", route.name))
                    })?;
                    RouteTarget::Upstream(pool.clone())
                }
                (None, Some(respond)) => RouteTarget::Respond(Box::new(
                    PreparedResponse::new(respond)
                        .map_err(|e| CompileError(format!("route `{}`: {e}", route.name)))?,
                )),
                _ => {
                    return Err(CompileError(format!(
                        "route `{}` needs exactly one of `upstream` and `respond`",
                        route.name
                    )))
                }
            };
            let runtime = Arc::new(RouteRuntime {
                name: route.name.clone(),
                target,
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

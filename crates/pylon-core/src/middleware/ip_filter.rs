//! The `ip_filter` middleware: resolves the client's address (behind `trusted_proxies`) for
//! the rest of the chain, then refuses clients in `deny`, or outside `allow` when set, with
//! 403 in the shared error format.

use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::middleware::{parse_cidr, IpFilter as Config};

use super::{Flow, Hooks, Middleware, RequestState};
use crate::client_ip::{canonical, in_nets, TrustedProxies};

#[derive(Debug)]
struct IpFilter {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    proxies: TrustedProxies,
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    let nets = |list: &[String]| {
        list.iter()
            .map(|t| parse_cidr(t))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Arc::new(IpFilter {
        allow: nets(&def.allow)?,
        deny: nets(&def.deny)?,
        proxies: TrustedProxies::new(nets(&def.trusted_proxies)?, def.depth),
    }))
}

#[async_trait]
impl Middleware for IpFilter {
    fn hooks(&self) -> Hooks {
        Hooks {
            request_now: true,
            ..Hooks::default()
        }
    }

    fn request_now(&self, session: &mut Session, state: &mut RequestState) -> Result<Flow> {
        if !self.proxies.is_empty() {
            if let Some(peer) = state.peer_ip {
                state.client_ip = Some(self.proxies.resolve(peer, session.req_header()));
            }
        }
        // Without `trusted_proxies` the address resolved so far (the peer, or what an
        // earlier `ip_filter` read) is judged.
        let client = state.client_ip.map(canonical);
        let refused = match client {
            Some(ip) => {
                in_nets(&self.deny, ip) || (!self.allow.is_empty() && !in_nets(&self.allow, ip))
            }
            // No address (not an IP connection): only an allow list can refuse it.
            None => !self.allow.is_empty(),
        };
        Ok(if refused {
            Flow::Reject(403, "client address not allowed".into())
        } else {
            Flow::Continue
        })
    }
}

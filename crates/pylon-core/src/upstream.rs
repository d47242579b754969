//! Upstream pools: the servers of one named upstream, their prebuilt Pingora peers, and the
//! balancer that picks one per request.
//!
//! Peers are built once when the snapshot is compiled (address, timeouts, keep-alive), so the
//! hot path only clones one. Health checks and the other balancing algorithms hang off this
//! type in later work; the pool is shared by `Arc` so an unchanged pool can survive a reload.

use crate::balance::SmoothRoundRobin;
use pingora::upstreams::peer::HttpPeer;
use pylon_config::Upstream;
use std::net::SocketAddr;

/// One server of a pool.
#[derive(Debug)]
pub struct ServerEntry {
    pub address: SocketAddr,
    pub weight: u32,
    /// The peer handed to Pingora, with the pool's timeouts applied.
    pub peer: HttpPeer,
}

/// A named pool of servers with its balancer.
#[derive(Debug)]
pub struct UpstreamPool {
    pub name: String,
    pub servers: Vec<ServerEntry>,
    balancer: SmoothRoundRobin,
}

impl UpstreamPool {
    /// Builds the pool from its config definition.
    pub fn new(name: &str, def: &Upstream) -> Self {
        let servers: Vec<ServerEntry> = def
            .servers
            .iter()
            .map(|s| {
                let mut peer = HttpPeer::new(s.address, false, String::new());
                peer.options.connection_timeout = Some(def.connect_timeout);
                peer.options.read_timeout = Some(def.read_timeout);
                peer.options.write_timeout = Some(def.write_timeout);
                ServerEntry {
                    address: s.address,
                    weight: s.weight,
                    peer,
                }
            })
            .collect();
        let weights: Vec<u32> = servers.iter().map(|s| s.weight).collect();
        UpstreamPool {
            name: name.to_string(),
            balancer: SmoothRoundRobin::new(&weights),
            servers,
        }
    }

    /// Picks the next server, or `None` when the pool is empty.
    #[inline]
    pub fn select(&self) -> Option<&ServerEntry> {
        self.balancer.next().and_then(|i| self.servers.get(i))
    }
}

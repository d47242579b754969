//! Pylon's upstream machinery, independent of routing and of the proxy itself:
//!
//! - [`server`]: the live state of one upstream server (in-flight requests, latency,
//!   health), shared by `Arc` so it survives reloads and DNS refreshes;
//! - [`balance`]: the balancing algorithms, which pick among the usable servers;
//! - [`health`]: active probes (a Pingora background service) and passive outlier detection;
//! - [`dns`]: resolving server host names (hosts file, then DNS).
//!
//! `pylon-core` builds pools from these pieces and drives them from the proxy phases.

pub mod balance;
pub mod dns;
pub mod health;
pub mod server;

pub use server::ServerState;

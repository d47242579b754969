//! Black-box tests: the real `pylon` binary against real origin servers on loopback.
//!
//! One test binary (one link, shared by all modules); each module covers one capability.

#![allow(clippy::unwrap_used)]

mod harness;

mod access_log;
mod admin;
mod balancing;
mod cli;
mod ctl;
mod etcd;
mod health;
mod metrics;
mod middlewares;
mod mw_api_key;
mod mw_basic_auth;
mod mw_concurrency_limit;
mod mw_cors;
mod mw_forward_auth;
mod mw_ip_filter;
mod mw_jwt;
mod mw_limits;
mod mw_rate_limit;
mod mw_redirect;
mod mw_respond;
mod mw_static;
mod mw_transform;
mod notifications;
mod proxying;
mod quickstart;
mod reload;
mod resilience;
mod routing;
mod tracing;
mod upgrade;
mod upstream_tls;

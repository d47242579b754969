//! Black-box tests: the real `pylon` binary against real origin servers on loopback.
//!
//! One test binary (one link, shared by all modules); each module covers one capability.

#![allow(clippy::unwrap_used)]

mod harness;

mod balancing;
mod cli;
mod proxying;
mod quickstart;
mod resilience;
mod routing;
mod upstream_tls;

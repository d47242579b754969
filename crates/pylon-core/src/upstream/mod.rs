//! Upstream pools as the proxy uses them: endpoints with prebuilt peers, selection over the
//! healthy set, retry policy and budget, and the background work that keeps pools current
//! (DNS refresh). The algorithms and health machinery themselves live in `pylon-upstream`.

pub mod budget;
pub mod dns_refresh;
pub mod peer;
pub mod policy;
pub mod pool;

pub use peer::Timeouts;
pub use policy::RetryPolicy;
pub use pool::{Endpoint, SelectError, Selection, UpstreamPool};

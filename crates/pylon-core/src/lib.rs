//! Pylon's runtime: the compiled [`Snapshot`] (routers, upstream pools with their policies),
//! the background services that keep pools current, and the one `ProxyHttp` implementation
//! that reads them.

pub mod access_log;
pub mod apply;
pub mod client_ip;
pub mod errors;
pub mod forwarded;
pub mod hash_key;
pub mod header_names;
pub mod hop_by_hop;
pub mod measured;
pub mod metrics;
pub mod middleware;
pub mod notify;
pub mod proxy;
pub mod request_id;
pub mod request_view;
pub mod respond;
pub mod snapshot;
pub mod tracing;
pub mod upstream;

pub use proxy::PylonProxy;
pub use snapshot::{SharedSnapshot, Snapshot};

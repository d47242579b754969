//! Pylon's runtime: the compiled [`Snapshot`] (routers, upstream pools), the balancer, and
//! the one `ProxyHttp` implementation that reads them.

pub mod balance;
pub mod forwarded;
pub mod proxy;
pub mod request_id;
pub mod request_view;
pub mod respond;
pub mod snapshot;
pub mod upstream;

pub use proxy::PylonProxy;
pub use snapshot::{SharedSnapshot, Snapshot};

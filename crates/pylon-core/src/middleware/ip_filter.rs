//! The `ip_filter` middleware. PLACEHOLDER: not implemented yet; the config is refused at
//! compile time so no key parses and does nothing.

use std::sync::Arc;

use super::Middleware;

pub fn compile(_def: &pylon_config::middleware::IpFilter) -> Result<Arc<dyn Middleware>, String> {
    Err("the `ip_filter` middleware is not implemented yet".into())
}

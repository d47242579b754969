//! The `limits` middleware. PLACEHOLDER: not implemented yet; the config is refused at
//! compile time so no key parses and does nothing.

use std::sync::Arc;

use super::Middleware;

pub fn compile(_def: &pylon_config::middleware::Limits) -> Result<Arc<dyn Middleware>, String> {
    Err("the `limits` middleware is not implemented yet".into())
}

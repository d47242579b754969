//! The `redirect` middleware. PLACEHOLDER: not implemented yet; the config is refused at
//! compile time so no key parses and does nothing.

use std::sync::Arc;

use super::Middleware;

pub fn compile(_def: &pylon_config::middleware::Redirect) -> Result<Arc<dyn Middleware>, String> {
    Err("the `redirect` middleware is not implemented yet".into())
}

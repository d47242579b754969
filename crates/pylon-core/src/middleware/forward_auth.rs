//! The `forward_auth` middleware.

use std::sync::Arc;

use pylon_config::middleware::ForwardAuth as Config;

use super::Middleware;

pub fn compile(_def: &Config) -> Result<Arc<dyn Middleware>, String> {
    Err("`forward_auth` is not built yet".to_string())
}

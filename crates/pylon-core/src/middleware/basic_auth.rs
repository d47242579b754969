//! The `basic_auth` middleware.

use std::sync::Arc;

use pylon_config::middleware::BasicAuth as Config;

use super::Middleware;

pub fn compile(_def: &Config) -> Result<Arc<dyn Middleware>, String> {
    Err("`basic_auth` is not built yet".to_string())
}

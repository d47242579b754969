//! The `rate_limit` middleware.

use std::sync::Arc;

use pylon_config::middleware::RateLimit as Config;

use super::Middleware;

pub fn compile(_def: &Config) -> Result<Arc<dyn Middleware>, String> {
    Err("`rate_limit` is not built yet".to_string())
}

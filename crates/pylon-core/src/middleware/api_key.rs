//! The `api_key` middleware.

use std::sync::Arc;

use pylon_config::middleware::ApiKey as Config;

use super::Middleware;

pub fn compile(_def: &Config) -> Result<Arc<dyn Middleware>, String> {
    Err("`api_key` is not built yet".to_string())
}

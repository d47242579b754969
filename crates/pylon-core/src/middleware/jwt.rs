//! The `jwt` middleware.

use std::sync::Arc;

use pylon_config::middleware::Jwt as Config;

use super::Middleware;

pub fn compile(_def: &Config) -> Result<Arc<dyn Middleware>, String> {
    Err("`jwt` is not built yet".to_string())
}

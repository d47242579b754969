//! The `concurrency_limit` middleware.

use std::sync::Arc;

use pylon_config::middleware::ConcurrencyLimit as Config;

use super::Middleware;

pub fn compile(_def: &Config) -> Result<Arc<dyn Middleware>, String> {
    Err("`concurrency_limit` is not built yet".to_string())
}

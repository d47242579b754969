//! The `concurrency_limit` middleware's settings.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rate_limit::LimitKey;
use crate::duration::DurationSchema;
use crate::error::ConfigError;
use crate::validate::Spot;

/// How long a request waits for a free slot when `queue_timeout` is not set.
pub const DEFAULT_CONCURRENCY_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);

/// At most N requests in flight per key; the excess waits, then 503.
///
/// A request holds its slot from this middleware's request side until it is over (answered,
/// failed or abandoned by the client). A request finding every slot of its key taken waits
/// up to `queue_timeout`, first come first served, then gets 503.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyLimit {
    /// Requests of one key in flight at once. At least 1.
    pub max: u32,
    /// What the slots belong to: `client_ip` (default), `header:NAME`, `consumer`, `route`,
    /// or a list of these.
    #[serde(default)]
    pub key: LimitKey,
    /// How long a request waits for a slot before 503 (`0s`: no waiting). Default 1s.
    #[serde(default = "default_queue_timeout", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub queue_timeout: Duration,
}

fn default_queue_timeout() -> Duration {
    DEFAULT_CONCURRENCY_QUEUE_TIMEOUT
}

impl ConcurrencyLimit {
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        spot.at_least("max", self.max, 1, errors);
        self.key.validate(&spot.key("key"), errors);
    }
}

#[cfg(test)]
mod tests {
    fn errors(settings: &str) -> String {
        let text = format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nupstreams: {{ app: {{ servers: [\"127.0.0.1:9000\"] }} }}\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares:\n      - concurrency_limit: {settings}\n"
        );
        super::super::load_errors(&text)
    }

    #[test]
    fn concurrency_limit_settings_are_checked() {
        assert_eq!(errors("{ max: 2 }"), "");
        assert_eq!(
            errors("{ max: 2, key: [route, \"header:X-Tenant\"], queue_timeout: 250ms }"),
            ""
        );
        let e = errors("{ max: 0, key: [tenant], queue_timeout: soon }");
        assert!(e.contains("concurrency_limit.queue_timeout"), "{e}");
        let e = errors("{ max: 0, key: [tenant] }");
        assert!(
            e.contains("t.yaml:8:35: routes[0].middlewares[0].concurrency_limit.max: max must be at least 1, found 0"),
            "{e}"
        );
        assert!(
            e.contains("concurrency_limit.key[0]: expected `client_ip`"),
            "{e}"
        );
        let e = errors("{ queue_timeout: 1s }");
        assert!(e.contains("max"), "{e}");
    }
}

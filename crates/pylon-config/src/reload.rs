//! The `reload:` section: how a running Pylon notices that its config changed.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::DurationSchema;

/// How often the config files are looked at by default.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest interval honoured: a smaller one is raised to this.
pub const MIN_WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// Live reload. A running Pylon re-reads its config when a config file (or, for a config
/// directory, any file in it, or a `.env` it read) changes, and on SIGHUP; a config that
/// fails validation is refused and the running one keeps serving. `server`, `listeners` and
/// `dns` are read at start only: changing them needs a restart or `pylon -u`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfig {
    /// Watch the config files for changes. SIGHUP reloads either way. Default: true.
    #[serde(default = "default_watch")]
    pub watch: bool,
    /// How often the files are looked at (their size, modification time and inode), at
    /// least 100ms; a change is applied once the files stop changing for one interval, so
    /// a half-written file is not read. Default: 1s.
    #[serde(default = "default_interval", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub interval: Duration,
}

fn default_watch() -> bool {
    true
}

fn default_interval() -> Duration {
    DEFAULT_WATCH_INTERVAL
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig {
            watch: true,
            interval: DEFAULT_WATCH_INTERVAL,
        }
    }
}

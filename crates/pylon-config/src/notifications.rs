//! The `notifications:` section: webhooks Pylon POSTs to when something an operator cares
//! about happens (a server goes down, a config is applied or refused, the process starts or
//! stops). Reloads with the rest of the config: the targets of a change take effect for the
//! next event.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::DurationSchema;
use crate::error::ConfigError;
use crate::loader::Piece;
use crate::validate::Spot;

/// Attempts after the first failed delivery, by default.
pub const DEFAULT_NOTIFY_RETRIES: u32 = 3;
/// How long one delivery may take, by default.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);
/// The most retries a target may ask for.
pub const MAX_NOTIFY_RETRIES: u32 = 10;

/// A webhook: where events are POSTed, which ones, and in what shape.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    /// `http://` or `https://` URL the events are POSTed to (a Slack or Discord incoming
    /// webhook, or any endpoint that takes JSON). `${VAR}` keeps a secret URL out of the
    /// file.
    pub url: String,
    /// The events sent to this URL. Default: all of them.
    #[serde(default = "NotifyEvent::all")]
    pub events: Vec<NotifyEvent>,
    /// The body: `json` (Pylon's event object), `slack` (`{"text": …}`) or `discord`
    /// (`{"content": …}`). Default: json.
    #[serde(default)]
    pub format: NotifyFormat,
    /// Extra request headers (an `Authorization` the endpoint wants).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Attempts after a failed delivery (a connection error, a timeout or a status other
    /// than 2xx), waiting 0.5s, 1s, 2s, … between them. At most 10. Default: 3.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// How long one attempt may take. Default: 5s.
    #[serde(default = "default_timeout", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub timeout: Duration,
}

fn default_retries() -> u32 {
    DEFAULT_NOTIFY_RETRIES
}

fn default_timeout() -> Duration {
    DEFAULT_NOTIFY_TIMEOUT
}

/// Something that happened, that a webhook may subscribe to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A server of an upstream went down or came back (active health check), or was
    /// ejected by passive health.
    UpstreamHealth,
    /// A new config is serving (file change, SIGHUP, admin API or etcd).
    ConfigApplied,
    /// A reload was refused; the running config keeps serving. Carries the errors.
    ConfigRejected,
    /// The process started serving.
    Started,
    /// The process received SIGTERM, SIGINT or SIGQUIT (upgrade) and is draining.
    Stopping,
    /// A TLS certificate was loaded, renewed or is about to expire. Reserved: Pylon serves
    /// no TLS certificates of its own yet, so a webhook that lists it is refused at load
    /// rather than left waiting for events that never come.
    Certificate,
}

impl NotifyEvent {
    /// Every event Pylon sends, the default subscription.
    pub fn all() -> Vec<NotifyEvent> {
        use NotifyEvent::*;
        vec![
            UpstreamHealth,
            ConfigApplied,
            ConfigRejected,
            Started,
            Stopping,
        ]
    }

    /// The name as written in configs and payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::UpstreamHealth => "upstream_health",
            NotifyEvent::ConfigApplied => "config_applied",
            NotifyEvent::ConfigRejected => "config_rejected",
            NotifyEvent::Started => "started",
            NotifyEvent::Stopping => "stopping",
            NotifyEvent::Certificate => "certificate",
        }
    }
}

/// The shape of a webhook's body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyFormat {
    /// `{"event", "time", "host", "version", "message", "data"}`.
    #[default]
    Json,
    /// A Slack incoming webhook: `{"text": "…"}`.
    Slack,
    /// A Discord webhook: `{"content": "…"}`.
    Discord,
}

/// Checks every webhook of `notifications:`.
pub(crate) fn validate(piece: &Piece<'_, Vec<Notification>>, errors: &mut Vec<ConfigError>) {
    let spot = Spot::new(&piece.doc.file, piece.node, piece.path.clone());
    for (i, target) in piece.value.iter().enumerate() {
        let item = spot.item(i);
        if let Err(message) = check_url(&target.url) {
            errors.push(item.key("url").error(message));
        }
        if target.events.is_empty() {
            errors.push(item.key("events").error(
                "an empty `events` list sends nothing: list the events, or leave `events` out for all of them",
            ));
        }
        if let Some(i) = target
            .events
            .iter()
            .position(|e| *e == NotifyEvent::Certificate)
        {
            errors.push(item.key("events").item(i).error(
                "no `certificate` events exist yet: Pylon serves no TLS certificates of its own; remove it",
            ));
        }
        item.within("retries", target.retries, (0, MAX_NOTIFY_RETRIES), errors);
        if target.timeout.is_zero() {
            errors.push(item.key("timeout").error("timeout must be more than 0"));
        }
        crate::validate::headers(&item.key("headers"), errors);
    }
}

/// A webhook URL: `http` or `https`, with a host.
fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("not a URL ({e}): expected `https://hooks.example.com/…`"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(format!(
                "scheme `{other}` is not supported: use http or https"
            ))
        }
        None => return Err("expected an absolute URL starting with http:// or https://".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_http_or_https_and_a_host() {
        assert!(check_url("https://hooks.slack.com/services/T/B/X").is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("ftp://example.com/x")
            .expect_err("refused")
            .contains("scheme `ftp`"));
        assert!(check_url("/relative")
            .expect_err("refused")
            .contains("absolute URL"));
        assert!(check_url("not a url")
            .expect_err("refused")
            .contains("not a URL"));
    }

    #[test]
    fn event_names_round_trip() {
        for event in NotifyEvent::all()
            .into_iter()
            .chain([NotifyEvent::Certificate])
        {
            let json = serde_json::to_string(&event).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", event.as_str()));
        }
    }
}

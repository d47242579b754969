//! The body of a webhook POST, in the target's format: Pylon's JSON event object, or the
//! one-field message Slack (`text`) and Discord (`content`) incoming webhooks take.

use bytes::Bytes;
use pylon_config::NotifyFormat;
use serde_json::json;

use super::Event;

/// The body for `event` in `format`; `host` names the machine.
pub fn body(format: NotifyFormat, event: &Event, host: &str) -> Bytes {
    let value = match format {
        NotifyFormat::Json => json!({
            "event": event.kind.as_str(),
            "time": rfc3339(event),
            "host": host,
            "version": env!("CARGO_PKG_VERSION"),
            "message": event.message,
            "data": event.data,
        }),
        NotifyFormat::Slack => json!({ "text": line(event, host) }),
        NotifyFormat::Discord => json!({ "content": line(event, host) }),
    };
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

/// "[pylon@web-1] config_applied: config generation 3 applied …".
fn line(event: &Event, host: &str) -> String {
    format!("[pylon@{host}] {}: {}", event.kind.as_str(), event.message)
}

/// The event's time as RFC 3339 UTC with milliseconds, as the access log writes it.
fn rfc3339(event: &Event) -> String {
    let mut out = Vec::with_capacity(24);
    crate::access_log::write_time(&mut out, event.at);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pylon_config::NotifyEvent;
    use std::time::{Duration, UNIX_EPOCH};

    fn event() -> Event {
        Event {
            kind: NotifyEvent::ConfigApplied,
            at: UNIX_EPOCH + Duration::from_millis(1_763_780_000_123),
            message: "config generation 2 applied".into(),
            data: json!({ "generation": 2 }),
        }
    }

    fn parse(body: &Bytes) -> serde_json::Value {
        serde_json::from_slice(body).expect("a JSON body")
    }

    #[test]
    fn json_body_carries_event_time_and_data() {
        let v = parse(&body(NotifyFormat::Json, &event(), "web-1"));
        assert_eq!(v["event"], "config_applied");
        assert_eq!(v["time"], "2025-11-22T02:53:20.123Z");
        assert_eq!(v["host"], "web-1");
        assert_eq!(v["data"]["generation"], 2);
        assert_eq!(v["message"], "config generation 2 applied");
    }

    #[test]
    fn slack_and_discord_get_one_line() {
        let slack = parse(&body(NotifyFormat::Slack, &event(), "web-1"));
        assert_eq!(
            slack["text"],
            "[pylon@web-1] config_applied: config generation 2 applied"
        );
        let discord = parse(&body(NotifyFormat::Discord, &event(), "web-1"));
        assert_eq!(discord["content"], slack["text"]);
    }
}

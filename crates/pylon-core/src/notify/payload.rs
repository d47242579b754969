//! The body of a webhook POST, in the target's format: Pylon's JSON event object, or the
//! one-field message Slack (`text`) and Discord (`content`) incoming webhooks take.

use std::time::UNIX_EPOCH;

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

/// The event's time as RFC 3339 UTC with milliseconds.
fn rfc3339(event: &Event) -> String {
    let since = event.at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pylon_config::NotifyEvent;
    use std::time::Duration;

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

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
    }
}

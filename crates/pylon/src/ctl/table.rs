//! Human output of `pylon ctl`: aligned tables of resources, key/value lines for the status
//! and for the report of a write (the diff).

use serde_json::Value;

/// Columns aligned on the widest cell; the last column is not padded.
fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A scalar as text (`-` when absent).
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// NAME, RULE, TARGET (the upstream, or `respond STATUS`), PRIORITY.
pub fn routes(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|route| {
            let target = if let Some(upstream) = route["upstream"].as_str() {
                upstream.to_string()
            } else if !route["respond"].is_null() {
                match &route["respond"]["status"] {
                    Value::Null => "respond".to_string(),
                    status => format!("respond {}", text(status)),
                }
            } else {
                "-".to_string()
            };
            vec![
                text(&route["name"]),
                text(&route["rule"]),
                target,
                text(&route["priority"]),
            ]
        })
        .collect();
    render(&["NAME", "RULE", "TARGET", "PRIORITY"], &rows)
}

/// NAME, SERVERS (addresses, `*WEIGHT` when not 1), BALANCE.
pub fn upstreams(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|upstream| {
            let servers: Vec<String> = upstream["servers"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|server| match server {
                    Value::Object(map) => {
                        let address = text(map.get("address").unwrap_or(&Value::Null));
                        match map.get("weight").and_then(Value::as_u64) {
                            Some(weight) if weight != 1 => format!("{address}*{weight}"),
                            _ => address,
                        }
                    }
                    other => text(other),
                })
                .collect();
            vec![
                text(&upstream["name"]),
                servers.join(","),
                text(&upstream["balance"]),
            ]
        })
        .collect();
    render(&["NAME", "SERVERS", "BALANCE"], &rows)
}

/// NAME, TYPE (the middleware's key).
pub fn middlewares(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|middleware| {
            let kinds: Vec<&str> = middleware
                .as_object()
                .map(|map| {
                    map.keys()
                        .map(String::as_str)
                        .filter(|k| *k != "name")
                        .collect()
                })
                .unwrap_or_default();
            vec![text(&middleware["name"]), kinds.join(",")]
        })
        .collect();
    render(&["NAME", "TYPE"], &rows)
}

/// `GET /status` as key/value lines.
pub fn status(status: &Value) -> String {
    let listeners: Vec<String> = status["listeners"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|l| format!("{} {}", text(&l["name"]), text(&l["address"])))
        .collect();
    let config = &status["config"];
    let mut config_line = format!("{} {}", text(&config["mode"]), text(&config["path"]));
    if let Some(file) = config["api_file"].as_str() {
        config_line.push_str(&format!(" (API writes {file})"));
    }
    if config["writable"] == Value::Bool(false) {
        config_line.push_str(" read-only");
        if let Some(reason) = config["read_only_reason"].as_str() {
            config_line.push_str(&format!(": {reason}"));
        }
    }
    let mut rows = vec![
        vec!["version".to_string(), text(&status["version"])],
        vec![
            "uptime".to_string(),
            format!("{}s", text(&status["uptime_seconds"])),
        ],
        vec!["generation".to_string(), text(&status["generation"])],
        vec!["listeners".to_string(), listeners.join(", ")],
        vec!["admin".to_string(), text(&status["admin_listen"])],
        vec!["routes".to_string(), text(&status["routes"])],
        vec!["upstreams".to_string(), text(&status["upstreams"])],
        vec!["middlewares".to_string(), text(&status["middlewares"])],
        vec!["config".to_string(), config_line],
    ];
    let reload = &status["last_reload"];
    if !reload.is_null() {
        let outcome = if reload["ok"] == Value::Bool(true) {
            "ok"
        } else {
            "refused"
        };
        rows.push(vec![
            "last reload".to_string(),
            format!(
                "{outcome} ({}, generation {})",
                text(&reload["trigger"]),
                text(&reload["generation"])
            ),
        ]);
        for error in reload["errors"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            rows.push(vec![String::new(), text(error)]);
        }
    }
    let mut out = String::new();
    let width = rows.iter().map(|r| r[0].len()).max().unwrap_or(0);
    for row in rows {
        out.push_str(format!("{:width$}  {}", row[0], row[1]).trim_end());
        out.push('\n');
    }
    out
}

/// The report of a write (`PUT /config`, or any write with `?dry_run=true`): what was done
/// and the diff.
pub fn report(report: &Value) -> String {
    let mut out = String::new();
    if report["dry_run"] == Value::Bool(true) {
        out.push_str("dry run: nothing was changed\n");
    } else {
        out.push_str(&format!(
            "applied: generation {}\n",
            text(&report["generation"])
        ));
    }
    if report["unchanged"] == Value::Bool(true) {
        out.push_str("no change\n");
    }
    let changes = &report["changes"];
    if let Some(summary) = changes["summary"].as_str() {
        out.push_str(&format!("changes: {summary}\n"));
    }
    let restart: Vec<String> = report["needs_restart"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(text)
        .collect();
    if !restart.is_empty() {
        out.push_str(&format!(
            "needs a restart to apply: {}\n",
            restart.join(", ")
        ));
    }
    out
}

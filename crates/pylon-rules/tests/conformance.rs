//! Traefik conformance: every case of `tests/conformance/traefik-rules.json` (rule, request,
//! expected result, taken from Traefik's own tests) and `traefik-priority.json` (which of
//! several routes wins) is run, and every one must pass. The cases whose notes mark them a
//! "GO ARTIFACT" (a header key no real connection produces) are run with the expectation
//! inverted, which is what a wire-level gateway must do (see `docs/rules.md`, "Where Pylon
//! differs"); they are listed in the summary.
#![allow(clippy::unwrap_used)]

mod common;

use common::{request_from_case, TestRequest};
use pylon_rules::{Router, Rule};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/conformance/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn notes(case: &Value) -> Vec<String> {
    case.get("notes")
        .and_then(Value::as_array)
        .map(|n| {
            n.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn describe(case: &Value, req: Option<&TestRequest>) -> String {
    let source = case["source"].as_str().unwrap_or("?");
    let rule = case["rule"].as_str().unwrap_or("?");
    match req {
        Some(r) => format!(
            "{source}\n    rule:    {rule}\n    request: {} host={:?} path={:?} query={:?} headers={:?} client_ip={:?}",
            r.method,
            r.host,
            r.path,
            r.query,
            r.headers
                .iter()
                .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
                .collect::<Vec<_>>(),
            r.client_ip
        ),
        None => format!("{source}\n    rule:    {rule}"),
    }
}

#[test]
fn traefik_rule_cases() {
    let data = load("traefik-rules.json");
    assert!(data.get("license").is_some(), "keep the license field");
    let cases = data["cases"].as_array().unwrap();
    let (mut passed, mut inverted, mut failures) = (0, Vec::new(), Vec::new());

    for (i, case) in cases.iter().enumerate() {
        let rule_text = case["rule"].as_str().unwrap();
        let artifact = notes(case).iter().any(|n| n.contains("GO ARTIFACT"));
        let parsed = Rule::parse(rule_text);
        let outcome = match (&case["expect"], case.get("request")) {
            (Value::String(s), _) if s == "parse_error" => match parsed {
                Err(_) => Ok(()),
                Ok(_) => Err(format!(
                    "#{i} {}\n    expected a parse error, the rule was accepted",
                    describe(case, None)
                )),
            },
            (Value::Bool(traefik), Some(r)) if !r.is_null() => {
                let req = request_from_case(r).unwrap();
                let expect = &(*traefik != artifact);
                if artifact {
                    inverted.push(format!(
                        "#{i} {}\n    Traefik's test: {traefik}, on the wire: {expect}",
                        describe(case, Some(&req))
                    ));
                }
                match parsed {
                    Err(e) => Err(format!(
                        "#{i} {}\n    expected {expect}, got a parse error: {e}",
                        describe(case, Some(&req))
                    )),
                    Ok(rule) => {
                        let got = rule.matches(&req);
                        // The router must agree with the rule on its own.
                        let routed = Router::new(vec![(rule, 0, ())]).find(&req).is_some();
                        if got == *expect && routed == *expect {
                            Ok(())
                        } else {
                            Err(format!(
                                "#{i} {}\n    expected {expect}, Rule::matches gave {got}, Router::find gave {routed}",
                                describe(case, Some(&req))
                            ))
                        }
                    }
                }
            }
            other => panic!("case #{i} has an unexpected shape: {other:?}"),
        };
        match outcome {
            Ok(()) => passed += 1,
            Err(f) => failures.push(f),
        }
    }

    println!(
        "traefik-rules.json: {} cases, {passed} passed ({} of them GO ARTIFACT cases run inverted), {} failed",
        cases.len(),
        inverted.len(),
        failures.len()
    );
    for s in &inverted {
        println!("  inverted {s}");
    }
    assert!(
        failures.is_empty(),
        "{} conformance case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(passed, cases.len());
}

/// Traefik breaks priority ties by provider precedence; Pylon has no providers and breaks
/// them by declaration order. The cases that rely on providers are run with the routes
/// declared in provider-precedence order (what a config merging providers would do), so
/// every case checks the router's tie rule: earlier wins.
#[test]
fn traefik_priority_cases() {
    let data = load("traefik-priority.json");
    assert!(data.get("license").is_some(), "keep the license field");
    let cases = data["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    let mut reordered = 0;

    for (i, case) in cases.iter().enumerate() {
        let precedence: Vec<&str> = case["providers_precedence"]
            .as_array()
            .map(|p| p.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut routes: Vec<&Value> = case["routes"].as_array().unwrap().iter().collect();
        let rank = |r: &Value| {
            let provider = r["provider"].as_str().unwrap_or("");
            precedence
                .iter()
                .position(|p| *p == provider)
                .unwrap_or(precedence.len())
        };
        let before: Vec<&str> = routes.iter().map(|r| r["id"].as_str().unwrap()).collect();
        routes.sort_by_key(|r| rank(r));
        let after: Vec<&str> = routes.iter().map(|r| r["id"].as_str().unwrap()).collect();
        if before != after {
            reordered += 1;
        }

        let mut entries = Vec::new();
        for r in &routes {
            let rule = Rule::parse(r["rule"].as_str().unwrap()).unwrap();
            let configured = r["priority"].as_i64().unwrap();
            let priority = if configured != 0 {
                configured
            } else {
                rule.default_priority()
            };
            let effective = r["effective_priority"].as_i64().unwrap();
            if priority != effective {
                failures.push(format!(
                    "#{i} {}: route {} has priority {priority}, Traefik's effective_priority is {effective}",
                    case["source"], r["id"]
                ));
            }
            entries.push((rule, priority, r["id"].as_str().unwrap().to_string()));
        }
        let req = request_from_case(&case["request"]).unwrap();
        let got = Router::new(entries).find(&req).cloned();
        let want = case["expect_route"].as_str().unwrap();
        if got.as_deref() != Some(want) {
            failures.push(format!(
                "#{i} {}\n    routes: {:?}\n    request: {req:?}\n    expected {want}, got {got:?}",
                case["source"], case["routes"]
            ));
        }
    }
    println!(
        "traefik-priority.json: {} cases, {} passed, {reordered} declared in provider-precedence order",
        cases.len(),
        cases.len() - failures.len()
    );
    assert!(
        failures.is_empty(),
        "priority case(s) failed:\n{}",
        failures.join("\n")
    );
}

//! The JSON Schema describes what users write.

use serde_json::Value;

fn def<'a>(schema: &'a Value, name: &str) -> &'a Value {
    &schema["definitions"][name]
}

#[test]
fn schema_has_the_expected_shape() {
    let s = pylon_config::json_schema();
    assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(s["title"], "Pylon configuration");
    assert_eq!(s["additionalProperties"], false);
    assert_eq!(s["properties"]["$schema"]["type"], "string");
    for key in ["server", "listeners", "upstreams", "routes"] {
        assert!(s["properties"][key].is_object(), "{key}");
    }

    let server = def(&s, "ServerConfig");
    for key in [
        "threads",
        "work_stealing",
        "grace_period",
        "graceful_shutdown_timeout",
        "upstream_keepalive_pool_size",
        "preserve_header_case",
        "pid_file",
        "error_log",
        "daemon",
        "upgrade_sock",
        "user",
        "group",
    ] {
        assert!(
            server["properties"][key]["description"].is_string(),
            "server.{key}"
        );
    }

    let listener = def(&s, "Listener");
    assert_eq!(listener["required"], serde_json::json!(["name", "address"]));
    assert_eq!(def(&s, "SocketAddr")["type"], "string");

    // Durations: a string like "30s" or a number of seconds, not serde's {secs, nanos}.
    let duration = def(&s, "Duration");
    assert_eq!(duration["anyOf"][0]["type"], "string");
    assert_eq!(duration["anyOf"][1]["type"], "number");
    let upstream = def(&s, "Upstream");
    assert_eq!(
        upstream["properties"]["connect_timeout"]["allOf"][0]["$ref"],
        "#/definitions/Duration"
    );
    assert_eq!(upstream["properties"]["connect_timeout"]["default"], "5s");
    assert_eq!(upstream["properties"]["servers"]["minItems"], 1);

    // A server is an address string or a map.
    let server_item = def(&s, "Server");
    assert_eq!(
        server_item["anyOf"][0]["$ref"],
        "#/definitions/ServerAddress"
    );
    assert_eq!(server_item["anyOf"][1]["$ref"], "#/definitions/ServerMap");
    assert_eq!(def(&s, "ServerMap")["properties"]["weight"]["minimum"], 1);

    let route = def(&s, "Route");
    assert_eq!(
        route["not"]["required"],
        serde_json::json!(["upstream", "respond"])
    );
    assert_eq!(route["additionalProperties"], false);
    assert_eq!(def(&s, "Respond")["properties"]["status"]["maximum"], 599);
}

/// The duration pattern accepts what the loader accepts.
#[test]
fn duration_pattern_matches_examples() {
    let s = pylon_config::json_schema();
    let pattern = s["definitions"]["Duration"]["anyOf"][0]["pattern"]
        .as_str()
        .unwrap()
        .to_string();
    let re = regex::Regex::new(&pattern).unwrap();
    for ok in ["30s", "250ms", "1m30s", "1.5h", "30", "${TIMEOUT}"] {
        assert!(re.is_match(ok), "{ok}");
    }
    for bad in ["fast", "5x", "s"] {
        assert!(!re.is_match(bad), "{bad}");
    }
}

/// Every key of every map in the schema has a description (from its doc comment).
#[test]
fn every_key_is_described() {
    let s = pylon_config::json_schema();
    let mut maps = vec![("Config".to_string(), &s)];
    for (name, def) in s["definitions"].as_object().unwrap() {
        maps.push((name.clone(), def));
    }
    for (name, map) in maps {
        for (key, prop) in map["properties"].as_object().into_iter().flatten() {
            assert!(prop["description"].is_string(), "{name}.{key}");
        }
    }
}

#[test]
fn upstream_options_in_the_schema() {
    let s = pylon_config::json_schema();
    for key in ["dns", "upstream"] {
        assert!(s["properties"][key]["description"].is_string(), "{key}");
    }
    assert_eq!(
        s["not"],
        serde_json::json!({ "required": ["upstream", "routes"] })
    );
    let peer_keys = [
        "tls",
        "sni",
        "verify_cert",
        "verify_hostname",
        "ca_file",
        "client_cert",
        "client_key",
        "alpn",
        "tcp_keepalive",
        "tcp_fast_open",
        "tcp_recv_buf",
        "dscp",
        "h2_ping_interval",
        "max_h2_streams",
        "max_connections",
        "host_header",
    ];
    let upstream = def(&s, "Upstream");
    assert_eq!(upstream["additionalProperties"], false);
    assert_eq!(upstream["required"], serde_json::json!(["servers"]));
    let upstream_keys = [
        "servers",
        "balance",
        "hash_key",
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "idle_timeout",
        "retries",
        "health_check",
        "passive_health",
        "panic_threshold",
        "queue_timeout",
    ];
    for key in upstream_keys.iter().chain(&peer_keys) {
        assert!(upstream["properties"][key].is_object(), "Upstream.{key}");
    }
    assert!(upstream["properties"]["peer"].is_null());
    assert_eq!(
        upstream["properties"].as_object().unwrap().len(),
        upstream_keys.len() + peer_keys.len()
    );
    let server_map = def(&s, "ServerMap");
    assert_eq!(server_map["additionalProperties"], false);
    for key in ["address", "weight"].iter().chain(&peer_keys) {
        assert!(server_map["properties"][key].is_object(), "ServerMap.{key}");
    }
    assert_eq!(upstream["properties"]["panic_threshold"]["maximum"], 100);
    assert_eq!(upstream["properties"]["queue_timeout"]["default"], "1s");
    assert_eq!(upstream["properties"]["dscp"]["maximum"], 63);
    assert_eq!(upstream["properties"]["max_connections"]["minimum"], 1);
    assert_eq!(def(&s, "ServerAddress")["type"], "string");

    let values = |name: &str| -> Vec<String> {
        def(&s, name)["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["const"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        values("Balance"),
        [
            "round_robin",
            "random",
            "least_conn",
            "ip_hash",
            "hash",
            "least_time"
        ]
    );
    assert_eq!(values("Alpn"), ["h1", "h2", "h1h2"]);
    assert_eq!(values("CheckType"), ["http", "https", "tcp"]);
    assert_eq!(
        values("LookupStrategy"),
        ["ipv4_then_ipv6", "ipv6_then_ipv4", "ipv4_only", "ipv6_only"]
    );

    let health = def(&s, "HealthCheck");
    assert!(health["properties"]["type"].is_object());
    assert!(health["properties"]["kind"].is_null());
    assert_eq!(
        health["properties"]["expected_status"]["default"],
        serde_json::json!(["2xx", "3xx"])
    );
    let status = def(&s, "StatusMatch");
    assert_eq!(status["anyOf"][0]["type"], "integer");
    assert_eq!(status["anyOf"][1]["type"], "string");
    let passive = def(&s, "PassiveHealth");
    assert_eq!(
        passive["properties"]["failure_statuses"]["default"],
        serde_json::json!([502, 503, 504])
    );
    assert_eq!(passive["properties"]["max_ejection_time"]["default"], "5m");

    let retries = def(&s, "Retries");
    assert_eq!(retries["properties"]["attempts"]["maximum"], 10);
    assert_eq!(
        retries["properties"]["on"]["default"],
        serde_json::json!(["connect_failure"])
    );
    let on = def(&s, "RetryOn");
    assert_eq!(
        on["anyOf"][0]["enum"],
        serde_json::json!(["connect_failure", "timeout", "reset"])
    );
    assert_eq!(on["anyOf"][1]["minimum"], 500);
    assert_eq!(def(&s, "RetryMethods")["anyOf"][1]["type"], "array");
    assert_eq!(
        def(&s, "RetryBudget")["properties"]["ratio"]["default"],
        0.2
    );

    let route = def(&s, "Route");
    for key in [
        "timeout",
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "idle_timeout",
        "retries",
    ] {
        assert!(route["properties"][key]["description"].is_string(), "{key}");
    }
    let dns = def(&s, "DnsConfig");
    assert_eq!(dns["properties"]["hosts_file"]["default"], "/etc/hosts");
    assert_eq!(
        dns["properties"]["nameservers"]["items"]["$ref"],
        "#/definitions/Nameserver"
    );
    assert_eq!(dns["properties"]["attempts"]["minimum"], 1);
}

/// The hash key pattern accepts what the loader accepts.
#[test]
fn hash_key_pattern_matches_examples() {
    let s = pylon_config::json_schema();
    let pattern = s["definitions"]["HashKey"]["pattern"].as_str().unwrap();
    let re = regex::Regex::new(pattern).unwrap();
    for ok in [
        "client_ip",
        "path",
        "header:X-User",
        "cookie:sid",
        "query:user",
        "${KEY}",
    ] {
        assert!(re.is_match(ok), "{ok}");
        if ok != "${KEY}" {
            assert!(pylon_config::HashKey::parse(ok).is_ok(), "{ok}");
        }
    }
    for bad in ["ip", "header:", "header:a b", "query:", "x:y"] {
        assert!(!re.is_match(bad), "{bad}");
        assert!(pylon_config::HashKey::parse(bad).is_err(), "{bad}");
    }
}

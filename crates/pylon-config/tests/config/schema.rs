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
    assert_eq!(route["oneOf"][0]["required"][0], "upstream");
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

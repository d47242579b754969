//! `api_key` through the binary: keys from the config, the environment and a file, in a
//! header or a query parameter; the consumer forwarded; the key taken out of the request
//! (upstream and log never see it, even when the upstream fails); missing, wrong and
//! ambiguous keys refused with 401; bad configs refused by `pylon check`.

use crate::harness::pylon::check_refuses;
use crate::harness::{Client, Origin, Pylon};

struct Setup {
    pylon: Pylon,
    origin: Origin,
}

/// Routes: `/hdr` (header only, the default), `/both` (header and `api_key` query
/// parameter), `/query` (query only), `/down` (a dead upstream, query keys). Keys:
/// `ci-secret-1` (consumer `ci`, from `${CI_KEY}`), `anon-key-2` (no consumer),
/// `web:file+key/3` from `keys.txt` (consumer `web`).
fn setup() -> Setup {
    let origin = Origin::start("app");
    let dead = crate::harness::closed_addr();
    let yaml = format!(
        r#"
listeners: [{{ name: web, address: "@listen0@" }}]
upstreams:
  app: {{ servers: ["{origin}"] }}
  dead: {{ servers: ["{dead}"] }}
middlewares:
  keys:
    api_key:
      keys: [{{ key: "${{CI_KEY}}", consumer: ci }}, {{ key: anon-key-2 }}]
      keys_file: keys.txt
      consumer_header: X-Consumer
  both:
    api_key:
      keys: [{{ key: "${{CI_KEY}}", consumer: ci }}]
      keys_file: keys.txt
      header: X-API-Key
      query: api_key
  query-only:
    api_key: {{ keys: [{{ key: "${{CI_KEY}}", consumer: ci }}], query: api_key }}
  show-consumer:
    headers: {{ request: {{ set: {{ X-Seen-Consumer: "{{consumer}}", X-Seen-Query: "{{query}}" }} }} }}
routes:
  - name: hdr
    rule: "PathPrefix(`/hdr`)"
    upstream: app
    middlewares: [keys, show-consumer]
  - name: both
    rule: "PathPrefix(`/both`)"
    upstream: app
    middlewares: [both, show-consumer]
  - name: query
    rule: "PathPrefix(`/query`)"
    upstream: app
    middlewares: [query-only]
  - name: down
    rule: "PathPrefix(`/down`)"
    upstream: dead
    middlewares: [query-only]
"#,
        origin = origin.address()
    );
    Setup {
        pylon: Pylon::builder(&yaml)
            .env("CI_KEY", "ci-secret-1")
            .file("keys.txt", "# consumer:key\nweb:file+key/3\n")
            .start(),
        origin,
    }
}

fn get(c: &Client, path: &str, headers: &[(&str, &str)]) -> crate::harness::client::Response {
    let mut h = vec![("Host", "localhost")];
    h.extend_from_slice(headers);
    c.request("GET", path, &h)
}

#[test]
fn a_key_in_the_header_passes_as_its_consumer_and_is_taken_out() {
    let s = setup();
    let c = s.pylon.client();
    // From the environment; the client's own X-Consumer is replaced.
    let r = get(
        &c,
        "/hdr/a",
        &[("X-API-Key", "ci-secret-1"), ("X-Consumer", "admin")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.origin_header("x-consumer").as_deref(), Some("ci"));
    assert_eq!(r.origin_header("x-seen-consumer").as_deref(), Some("ci"));
    assert_eq!(r.origin_header("x-api-key"), None);
    // From the file.
    let r = get(&c, "/hdr/a", &[("X-API-Key", "file+key/3")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("x-consumer").as_deref(), Some("web"));
    // A key without a consumer: no consumer header at all, not the client's.
    let r = get(
        &c,
        "/hdr/a",
        &[("X-API-Key", "anon-key-2"), ("X-Consumer", "admin")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("x-consumer"), None);
    assert_eq!(r.origin_header("x-seen-consumer").as_deref(), Some(""));
    // The header route does not read the query: the parameter is left alone.
    let r = get(&c, "/hdr/a?api_key=ci-secret-1", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(s.origin.hits(), 3);
}

#[test]
fn a_key_in_the_query_passes_and_is_taken_out_of_the_uri() {
    let s = setup();
    let c = s.pylon.client();
    let r = get(&c, "/both/p?x=1&api_key=ci-secret-1&y=2", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["query"], "x=1&y=2");
    assert_eq!(r.json()["path"], "/both/p");
    assert_eq!(r.origin_header("x-seen-consumer").as_deref(), Some("ci"));
    // Later middlewares see the query without the key too.
    assert_eq!(r.origin_header("x-seen-query").as_deref(), Some("x=1&y=2"));
    // Percent-encoded, or with the `+` left as is: the file key `file+key/3`.
    for target in [
        "/both/p?api_key=file%2Bkey%2F3",
        "/both/p?api_key=file+key/3",
    ] {
        let r = get(&c, target, &[]);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.json()["query"], "", "{target}");
        assert_eq!(r.origin_header("x-seen-consumer").as_deref(), Some("web"));
    }
    // The header still works on this route.
    let r = get(&c, "/both/p", &[("X-API-Key", "ci-secret-1")]);
    assert_eq!(r.status, 200);
    // Query only: the header is not read (and not removed: it is not a key here).
    let r = get(&c, "/query", &[("X-API-Key", "ci-secret-1")]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("ApiKey query=\"api_key\"")
    );
}

type Headers<'a> = &'a [(&'a str, &'a str)];

#[test]
fn missing_wrong_and_ambiguous_keys_get_401() {
    let s = setup();
    let c = s.pylon.client();
    let cases: [(&str, Headers, &str); 6] = [
        ("/both", &[], "API key required"),
        ("/both", &[("X-API-Key", "ci-secret-2")], "invalid API key"),
        ("/both", &[("X-API-Key", "ci-secret-")], "invalid API key"),
        ("/both?api_key=CI-SECRET-1", &[], "invalid API key"),
        (
            "/both?api_key=ci-secret-1",
            &[("X-API-Key", "ci-secret-1")],
            "more than one API key",
        ),
        (
            "/both",
            &[("X-API-Key", "ci-secret-1"), ("X-API-Key", "anon-key-2")],
            "more than one API key",
        ),
    ];
    for (target, headers, message) in cases {
        let r = get(&c, target, headers);
        assert_eq!(r.status, 401, "{target} {headers:?}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("ApiKey header=\"X-API-Key\", query=\"api_key\""),
            "{target}"
        );
        assert_eq!(r.json()["error"], message, "{target} {headers:?}");
    }
    let r = get(&c, "/hdr", &[("X-API-Key", "")]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("ApiKey header=\"X-API-Key\"")
    );
    assert_eq!(s.origin.hits(), 0);
}

#[test]
fn a_query_key_never_reaches_the_log_even_when_the_upstream_fails() {
    let s = setup();
    let c = s.pylon.client();
    let r = get(&c, "/down/report?id=7&api_key=ci-secret-1", &[]);
    assert_eq!(r.status, 502);
    let r = get(&c, "/down/report?api_key=not-a-key-9", &[]);
    assert_eq!(r.status, 401);
    let log = s.pylon.log();
    // Pingora's error line for the 502 names the request, without the key.
    assert!(
        log.contains("GET /down/report?id=7, Host: localhost, route: down"),
        "{log}"
    );
    assert!(
        !log.contains("ci-secret-1"),
        "the key is in the log:\n{log}"
    );
    assert!(
        !log.contains("not-a-key-9"),
        "the key is in the log:\n{log}"
    );
    assert!(!log.contains("api_key="), "{log}");
}

#[test]
fn check_refuses_bad_api_key_configs_at_their_place() {
    let base = "listeners: [{ name: web, address: \"127.0.0.1:0\" }]\nupstreams: { app: { servers: [\"127.0.0.1:9\"] } }\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares:\n";
    let text = check_refuses(&format!("{base}      - api_key: {{ keys: [] }}\n"));
    assert!(
        text.contains("pylon.yaml:8:18: routes[0].middlewares[0].api_key: no keys"),
        "{text}"
    );
    let text = check_refuses(&format!(
        "{base}      - api_key:\n          keys: [{{ key: \"${{PYLON_UNSET_TEST_KEY:-}}\" }}, {{ key: \"two words\" }}]\n          keys_file: /no/such/keys.txt\n          header: \"X API Key\"\n          consumer_header: \"X:Consumer\"\n"
    ));
    for want in [
        "pylon.yaml:9:18: routes[0].middlewares[0].api_key.keys[0]: the key is empty (an unset `${VAR}`?)",
        "pylon.yaml:9:56: routes[0].middlewares[0].api_key.keys[1]: a key is printable ASCII without spaces",
        "pylon.yaml:10:22: routes[0].middlewares[0].api_key.keys_file: cannot read /no/such/keys.txt",
        "pylon.yaml:11:19: routes[0].middlewares[0].api_key.header: invalid header name \"X API Key\"",
        "pylon.yaml:12:28: routes[0].middlewares[0].api_key.consumer_header: invalid header name \"X:Consumer\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("two words"), "a key is printed: {text}");
}

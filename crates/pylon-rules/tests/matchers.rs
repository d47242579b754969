//! Each matcher against requests, including the corners where Traefik's semantics are
//! subtle (routing-path decoding, query parsing, host canonicalisation, regex dialect).
#![allow(clippy::unwrap_used)]

mod common;

use common::TestRequest;
use pylon_rules::Rule;

fn matches(rule: &str, req: &TestRequest) -> bool {
    Rule::parse(rule)
        .unwrap_or_else(|e| panic!("{rule}: {e}"))
        .matches(req)
}

fn get(host: &str, target: &str) -> TestRequest {
    TestRequest::get(host, target)
}

fn with_header(mut r: TestRequest, name: &str, value: &str) -> TestRequest {
    r.headers
        .push((name.to_string(), value.as_bytes().to_vec()));
    r
}

#[test]
fn host() {
    let r = "Host(`example.com`)";
    assert!(matches(r, &get("example.com", "/")));
    assert!(matches(r, &get("EXAMPLE.com:8443", "/")));
    assert!(matches(r, &get("example.com.", "/")));
    assert!(!matches(r, &get("www.example.com", "/")));
    assert!(!matches(r, &get("", "/")));
    assert!(matches("Host(`Example.COM.`)", &get("example.com", "/")));
    assert!(matches("Host(`::1`)", &get("[::1]:8080", "/")));
    // The port is never part of the comparison.
    assert!(!matches(
        "Host(`example.com:8080`)",
        &get("example.com:8080", "/")
    ));
}

#[test]
fn host_wildcards() {
    let r = "Host(`*.example.com`)";
    assert!(matches(r, &get("a.example.com", "/")));
    assert!(matches(r, &get("a.b.example.com:80", "/")));
    assert!(matches(r, &get("A.Example.Com.", "/")));
    assert!(!matches(r, &get("example.com", "/")));
    assert!(!matches(r, &get("aexample.com", "/")));
    assert!(!matches(r, &get("a.example.org", "/")));
    assert!(matches("Host(`*`)", &get("localhost", "/")));
    assert!(!matches("Host(`*`)", &get("", "/")));
}

#[test]
fn host_regexp() {
    let r = r"HostRegexp(`^[a-z]+\.example\.com$`)";
    assert!(matches(r, &get("api.example.com", "/")));
    assert!(matches(r, &get("API.example.com:443", "/")));
    assert!(!matches(r, &get("a1.example.com", "/")));
    // Unanchored, like Go's MatchString.
    assert!(matches(
        "HostRegexp(`example`)",
        &get("www.example.org", "/")
    ));
    // Go's literal braces.
    assert!(matches(
        r"HostRegexp(`^{sub}\.example\.com$`)",
        &get("{sub}.example.com", "/")
    ));
    assert!(!matches(
        r"HostRegexp(`^{sub}\.example\.com$`)",
        &get("api.example.com", "/")
    ));
    // Traefik also tests the regex against the (empty) CNAME-flattened host.
    assert!(matches("HostRegexp(`^$`)", &get("example.com", "/")));
}

#[test]
fn path_and_prefix() {
    assert!(matches("Path(`/css`)", &get("h", "/css")));
    assert!(!matches("Path(`/css`)", &get("h", "/css/")));
    assert!(!matches("Path(`/css`)", &get("h", "/CSS")));
    assert!(matches("PathPrefix(`/css`)", &get("h", "/css/main.css")));
    assert!(matches("PathPrefix(`/css`)", &get("h", "/cssx")));
    assert!(!matches("PathPrefix(`/css`)", &get("h", "/js")));
    // Unreserved characters are decoded before matching, reserved ones are not.
    assert!(matches("Path(`/foo bar`)", &get("h", "/foo%20bar")));
    assert!(matches("Path(`/café`)", &get("h", "/caf%C3%A9")));
    assert!(matches("PathPrefix(`/a/`)", &get("h", "/a/b")));
    assert!(!matches("PathPrefix(`/a/`)", &get("h", "/a%2Fb")));
    assert!(matches("Path(`/a%2Fb`)", &get("h", "/a%2fb")));
    assert!(matches("Path(`/100%25`)", &get("h", "/100%25")));
    assert!(!matches("Path(`/100%`)", &get("h", "/100%25")));
    // The query is not part of the path.
    assert!(matches("Path(`/a`)", &get("h", "/a?x=1")));
}

#[test]
fn path_regexp() {
    let r = "PathRegexp(`^/(css|js)/`)";
    assert!(matches(r, &get("h", "/css/a")));
    assert!(!matches(r, &get("h", "/img/a")));
    assert!(matches(r"PathRegexp(`^/v\d+/`)", &get("h", "/v12/x")));
    // \d is ASCII-only, as in Go.
    assert!(!matches(r"PathRegexp(`^/\d$`)", &get("h", "/%D9%A3")));
    assert!(matches("PathRegexp(`^/{id}$`)", &get("h", "/%7Bid%7D")));
}

#[test]
fn method() {
    assert!(matches("Method(`GET`)", &get("h", "/")));
    assert!(matches("Method(`get`)", &get("h", "/")));
    let mut r = get("h", "/");
    r.method = "get".into();
    assert!(!matches("Method(`GET`)", &r));
    r.method = "PURGE".into();
    assert!(matches("Method(`purge`)", &r));
}

#[test]
fn header() {
    let r = with_header(get("h", "/"), "x-env", "prod");
    assert!(matches("Header(`X-Env`, `prod`)", &r));
    assert!(matches("Header(`x-env`, `prod`)", &r));
    assert!(!matches("Header(`X-Env`, `Prod`)", &r));
    assert!(!matches("Header(`X-Env`, `pro`)", &r));
    let r = with_header(with_header(get("h", "/"), "X-Env", "dev"), "X-Env", "prod");
    assert!(matches("Header(`X-Env`, `prod`)", &r));
    assert!(matches("HeaderRegexp(`X-Env`, `^pr`)", &r));
    assert!(!matches("HeaderRegexp(`X-Env`, `^PR`)", &r));
    assert!(matches("HeaderRegexp(`X-Env`, `(?i)^PR`)", &r));
    assert!(!matches("Header(`X-Other`, `prod`)", &r));
    // A comma-separated value is one value.
    let r = with_header(get("h", "/"), "Accept", "a, b");
    assert!(!matches("Header(`Accept`, `b`)", &r));
}

#[test]
fn query() {
    let q = |query: &str| get("h", &format!("/?{query}"));
    assert!(matches("Query(`q`, `traefik`)", &q("a=1&q=traefik")));
    assert!(matches("Query(`q`, `traefik`)", &q("q=x&q=traefik")));
    assert!(!matches("Query(`q`, `traefik`)", &q("q=TRAEFIK")));
    assert!(!matches("Query(`q`, `traefik`)", &q("Q=traefik")));
    assert!(matches("Query(`q`, `a b`)", &q("q=a+b")));
    assert!(matches("Query(`q`, `a b`)", &q("q=a%20b")));
    assert!(matches("Query(`mobile`)", &q("mobile")));
    assert!(matches("Query(`mobile`)", &q("mobile=")));
    assert!(!matches("Query(`mobile`)", &q("mobile=true")));
    assert!(!matches("Query(`mobile`)", &q("")));
    // Go drops pairs that contain `;` or a malformed escape.
    assert!(!matches("Query(`q`, `1`)", &q("q=1;r=2")));
    assert!(!matches("Query(`q`)", &q("q=%zz")));
    assert!(matches("QueryRegexp(`q`, `^(a|b)$`)", &q("q=c&q=b")));
    assert!(!matches("QueryRegexp(`q`, `^(a|b)$`)", &q("q=c")));
    assert!(!matches("QueryRegexp(`q`, `.*`)", &q("r=1")));
    assert!(matches("QueryRegexp(`q`)", &q("q")));
}

#[test]
fn client_ip() {
    let mut r = get("h", "/");
    assert!(!matches("ClientIP(`10.0.0.0/8`)", &r));
    r.client_ip = Some("10.1.2.3".parse().unwrap());
    assert!(matches("ClientIP(`10.0.0.0/8`)", &r));
    assert!(matches("ClientIP(`10.1.2.3`)", &r));
    assert!(!matches("ClientIP(`10.1.2.4`)", &r));
    r.client_ip = Some("::ffff:10.1.2.3".parse().unwrap());
    assert!(matches("ClientIP(`10.0.0.0/8`)", &r));
    r.client_ip = Some("2001:db8::7".parse().unwrap());
    assert!(matches("ClientIP(`2001:db8::/32`)", &r));
    assert!(!matches("ClientIP(`10.0.0.0/8`)", &r));
}

#[test]
fn operators_and_precedence() {
    let r = get("example.org", "/css");
    assert!(matches(
        "Host(`example.com`) || Host(`example.org`) && Path(`/css`)",
        &r
    ));
    assert!(!matches(
        "(Host(`example.com`) || Host(`example.org`)) && Path(`/js`)",
        &r
    ));
    assert!(matches("!Host(`example.com`)", &r));
    assert!(matches("!(Host(`example.com`) && Path(`/css`))", &r));
    assert!(!matches("!(Host(`example.org`) && Path(`/css`))", &r));
    assert!(matches("!!Host(`example.org`)", &r));
    assert!(!matches("!Host(`example.org`) || !Path(`/css`)", &r));
}

#[test]
fn default_priority_and_hosts() {
    let rule = Rule::parse("Host(`a.example.com`) && PathPrefix(`/api`)").unwrap();
    assert_eq!(rule.default_priority(), 43);
    assert_eq!(rule.source(), "Host(`a.example.com`) && PathPrefix(`/api`)");
    let rule = Rule::parse("(Host(`A.com`) || Host(`*.b.com`)) && !Host(`c.com`)").unwrap();
    assert_eq!(rule.hosts(), vec!["a.com", "*.b.com"]);
}

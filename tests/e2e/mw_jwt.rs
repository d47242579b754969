//! The `jwt` middleware through the binary: tokens signed here with real keys, a real
//! origin that echoes what it received, a real JWKS endpoint on loopback. What the client
//! gets (status, `WWW-Authenticate`, error body) and what the upstream gets (claim headers,
//! no token).

mod jwks_server;
mod sign;

use std::time::{Duration, Instant};

use openssl::nid::Nid;
use serde_json::json;

use crate::harness::client::Response;
use crate::harness::pki::Pki;
use crate::harness::pylon::check_refuses;
use crate::harness::{Client, Origin, Pylon};
use jwks_server::JwksServer;
use sign::{jwks, now, token, token_with, SignKey};

const SECRET: &str = "e2e-secret-of-at-least-32-bytes-for-hs256";
const OTHER_SECRET: &str = "another-secret-of-at-least-32-bytes-long";

fn get(c: &Client, target: &str, headers: &[(&str, &str)]) -> Response {
    let mut h = vec![("Host", "localhost")];
    h.extend_from_slice(headers);
    c.request("GET", target, &h)
}

fn bearer(c: &Client, target: &str, token: &str) -> Response {
    get(c, target, &[("Authorization", &format!("Bearer {token}"))])
}

/// A refusal as RFC 6750 and the shared error format describe it.
fn assert_refused(r: &Response, status: u16, code: &str, why: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            format!(r#"Bearer realm="pylon", error="{code}", error_description="{why}""#).as_str()
        ),
        "{why}"
    );
    let expected = if status == 401 {
        format!("invalid token: {why}")
    } else {
        why.to_string()
    };
    assert_eq!(r.json()["error"], expected.as_str());
    assert_eq!(r.json()["status"], status);
}

fn assert_invalid(r: &Response, why: &str) {
    assert_refused(r, 401, "invalid_token", why);
}

/// Claims that pass the main routes: issuer, audience, an hour left.
fn good_claims() -> serde_json::Value {
    json!({ "sub": "alice", "iss": "https://idp.test", "aud": "api", "exp": now() + 3600,
            "roles": ["admin", "dev"], "tenant": 7 })
}

struct Setup {
    pylon: Pylon,
    origin: Origin,
    rsa: SignKey,
}

/// `/hmac` (HS256, issuer and audience, claims as headers, `required_claims`), `/rsa`
/// (RS256 from a PEM file), `/both` (RS256 and HS256 with another secret), `/forward`
/// (the token goes upstream), `/sources` (cookie, then query, then bearer), `/down` (a
/// dead upstream behind a query token).
fn setup() -> Setup {
    let origin = Origin::start("app");
    let dead = crate::harness::closed_addr();
    let rsa = SignKey::rsa();
    let yaml = format!(
        r#"
listeners:
  - {{ name: web, address: "@listen0@" }}
upstreams:
  app: {{ servers: ["{origin}"] }}
  dead: {{ servers: ["{dead}"] }}
middlewares:
  hmac:
    jwt:
      algorithms: [HS256]
      secret: "${{JWT_SECRET}}"
      issuer: https://idp.test
      audience: [web, api]
      claims_to_headers: {{ sub: X-User, roles: X-Roles, tenant: X-Tenant }}
  rsa:
    jwt: {{ algorithms: [RS256], public_key_file: rsa.pem, audience: api, claims_to_headers: {{ sub: X-User }} }}
  both:
    jwt: {{ algorithms: [RS256, HS256], public_key_file: rsa.pem, secret: "{OTHER_SECRET}", audience: api }}
  sources:
    jwt:
      algorithms: [HS256]
      secret: "${{JWT_SECRET}}"
      audience: api
      token_from: [{{ cookie: session }}, {{ query: access_token }}, bearer]
      claims_to_headers: {{ sub: X-User }}
routes:
  - {{ name: hmac, rule: "PathPrefix(`/hmac`)", upstream: app, middlewares: [hmac] }}
  - {{ name: rsa, rule: "PathPrefix(`/rsa`)", upstream: app, middlewares: [rsa] }}
  - {{ name: both, rule: "PathPrefix(`/both`)", upstream: app, middlewares: [both] }}
  - name: scoped
    rule: "PathPrefix(`/scoped`)"
    upstream: app
    middlewares:
      - jwt: {{ algorithms: [HS256], secret: "${{JWT_SECRET}}", audience: api, required_claims: [email] }}
  - name: forward
    rule: "PathPrefix(`/forward`)"
    upstream: app
    middlewares:
      - jwt: {{ algorithms: [HS256], secret: "${{JWT_SECRET}}", audience: api, forward_token: true }}
  - {{ name: sources, rule: "PathPrefix(`/sources`)", upstream: app, middlewares: [sources] }}
  - {{ name: down, rule: "PathPrefix(`/down`)", upstream: dead, middlewares: [sources] }}
"#,
        origin = origin.address()
    );
    let pylon = Pylon::builder(&yaml)
        .env("JWT_SECRET", SECRET)
        .file("rsa.pem", &rsa.public_pem())
        .start();
    Setup { pylon, origin, rsa }
}

fn hs(claims: &serde_json::Value) -> String {
    token("HS256", &SignKey::Hmac(SECRET.into()), claims)
}

#[test]
fn a_valid_token_passes_and_the_upstream_sees_claims_not_the_token() {
    let s = setup();
    let c = s.pylon.client();
    // The client's own X-User is not believed: only the token's claim reaches the upstream.
    let r = get(
        &c,
        "/hmac/me?x=1",
        &[
            ("Authorization", &format!("Bearer {}", hs(&good_claims()))),
            ("X-User", "root"),
            ("X-Tenant", "0"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/hmac/me");
    assert_eq!(r.origin_header("x-user").as_deref(), Some("alice"));
    assert_eq!(r.origin_header("x-roles").as_deref(), Some("admin,dev"));
    assert_eq!(r.origin_header("x-tenant").as_deref(), Some("7"));
    assert_eq!(
        r.origin_header("authorization"),
        None,
        "stripped by default"
    );

    // A claim the token lacks: the header the client sent is removed, none is set.
    let no_roles =
        json!({ "sub": "bob", "iss": "https://idp.test", "aud": "web", "exp": now() + 60 });
    let r = get(
        &c,
        "/hmac",
        &[
            ("Authorization", &format!("Bearer {}", hs(&no_roles))),
            ("X-Roles", "admin"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.origin_header("x-roles"), None);
    assert_eq!(r.origin_header("x-user").as_deref(), Some("bob"));

    let r = bearer(&c, "/rsa", &token("RS256", &s.rsa, &good_claims()));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.origin_header("x-user").as_deref(), Some("alice"));
    assert_eq!(s.origin.hits(), 3);
}

#[test]
fn forward_token_true_keeps_the_authorization_header() {
    let s = setup();
    let t = hs(&good_claims());
    let r = bearer(&s.pylon.client(), "/forward", &t);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.origin_header("authorization"),
        Some(format!("Bearer {t}"))
    );
}

#[test]
fn a_missing_token_is_401_with_a_bare_challenge() {
    let s = setup();
    let c = s.pylon.client();
    for r in [
        get(&c, "/hmac", &[]),
        get(&c, "/hmac", &[("Authorization", "Basic dTpw")]),
    ] {
        assert_eq!(r.status, 401);
        // RFC 6750 §3.1: no error code when the request had no token at all.
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="pylon""#)
        );
        assert_eq!(r.json()["error"], "missing token");
    }
    assert_eq!(s.origin.hits(), 0);
}

#[test]
fn bad_tokens_are_401_invalid_token() {
    let s = setup();
    let c = s.pylon.client();
    let with = |change: serde_json::Value| {
        let mut claims = good_claims();
        for (k, v) in change.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };
    let wrong_key = token("HS256", &SignKey::Hmac(OTHER_SECRET.into()), &good_claims());
    assert_invalid(&bearer(&c, "/hmac", &wrong_key), "invalid signature");
    assert_invalid(
        &bearer(&c, "/hmac", &hs(&with(json!({ "exp": now() - 3600 })))),
        "token expired",
    );
    assert_invalid(
        &bearer(&c, "/hmac", &hs(&with(json!({ "nbf": now() + 3600 })))),
        "token not valid yet",
    );
    assert_invalid(
        &bearer(
            &c,
            "/hmac",
            &hs(&with(json!({ "iss": "https://evil.test" }))),
        ),
        "wrong issuer",
    );
    assert_invalid(
        &bearer(&c, "/hmac", &hs(&with(json!({ "aud": "billing" })))),
        "wrong audience",
    );
    // A payload changed after signing: the signature no longer holds.
    let good = hs(&good_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let admin = sign::b64(with(json!({ "sub": "admin" })).to_string().as_bytes());
    let tampered = format!("{}.{admin}.{}", parts[0], parts[2]);
    assert_invalid(&bearer(&c, "/hmac", &tampered), "invalid signature");
    // `alg: none`, with and without a signature.
    let none = sign::b64(br#"{"alg":"none","typ":"JWT"}"#);
    for sig in ["", parts[2]] {
        let t = format!("{none}.{}.{sig}", parts[1]);
        assert_invalid(&bearer(&c, "/hmac", &t), "token algorithm not allowed");
    }
    assert_invalid(&bearer(&c, "/hmac", "not-a-token"), "malformed token");
    assert_eq!(s.origin.hits(), 0, "nothing reached the upstream");
}

/// A token signed HS256 with the RSA public key's PEM as the secret.
#[test]
fn an_rsa_public_key_used_as_hmac_secret_is_refused() {
    let s = setup();
    let c = s.pylon.client();
    let forged = token(
        "HS256",
        &SignKey::Hmac(s.rsa.public_pem().into_bytes()),
        &good_claims(),
    );
    // Configured for RS256 only.
    assert_invalid(&bearer(&c, "/rsa", &forged), "token algorithm not allowed");
    // Configured for RS256 and HS256 with its own secret.
    assert_invalid(&bearer(&c, "/both", &forged), "invalid signature");
    // The genuine tokens of both kinds pass there.
    let rs = token("RS256", &s.rsa, &good_claims());
    assert_eq!(bearer(&c, "/both", &rs).status, 200);
    let other = token("HS256", &SignKey::Hmac(OTHER_SECRET.into()), &good_claims());
    assert_eq!(bearer(&c, "/both", &other).status, 200);
    assert_eq!(s.origin.hits(), 2);
}

#[test]
fn a_valid_token_without_a_required_claim_is_403_insufficient_scope() {
    let s = setup();
    let c = s.pylon.client();
    let r = bearer(&c, "/scoped", &hs(&good_claims()));
    assert_refused(
        &r,
        403,
        "insufficient_scope",
        "token lacks the required claim `email`",
    );
    let mut claims = good_claims();
    claims["email"] = json!("alice@example.com");
    assert_eq!(bearer(&c, "/scoped", &hs(&claims)).status, 200);
}

#[test]
fn cookie_and_query_sources_are_read_in_order_and_removed() {
    let s = setup();
    let c = s.pylon.client();
    let t = hs(&good_claims());
    let r = get(
        &c,
        "/sources",
        &[("Cookie", &format!("theme=dark; session={t}; lang=en"))],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.origin_header("x-user").as_deref(), Some("alice"));
    assert_eq!(
        r.origin_header("cookie").as_deref(),
        Some("theme=dark; lang=en")
    );

    let r = get(&c, &format!("/sources/q?a=1&access_token={t}&b=2"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["query"], "a=1&b=2");
    assert_eq!(r.origin_header("x-user").as_deref(), Some("alice"));

    // The cookie comes first: a bad cookie is not rescued by a good bearer token.
    let r = get(
        &c,
        "/sources",
        &[
            ("Cookie", "session=bad"),
            ("Authorization", &format!("Bearer {t}")),
        ],
    );
    assert_invalid(&r, "malformed token");
    // A token given twice in one place is a bad request.
    let r = get(
        &c,
        &format!("/sources?access_token={t}&access_token={t}"),
        &[],
    );
    assert_refused(
        &r,
        400,
        "invalid_request",
        "the token parameter is given twice",
    );
}

/// Pingora logs failed requests with their request line: a query token must be gone from
/// it, on a 502 as on a 401.
#[test]
fn a_query_token_never_reaches_the_log() {
    let s = setup();
    let c = s.pylon.client();
    let t = hs(&good_claims());
    let r = get(&c, &format!("/down/x?access_token={t}&keep=1"), &[]);
    assert_eq!(r.status, 502, "{}", r.text());
    let expired = hs(&json!({ "sub": "a", "aud": "api", "exp": now() - 7200 }));
    let r = get(&c, &format!("/down/y?access_token={expired}"), &[]);
    assert_eq!(r.status, 401);
    let signature = |t: &str| t.rsplit('.').next().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.pylon.log().contains("/down/x?keep=1") {
        assert!(
            Instant::now() < deadline,
            "no log line for the 502:\n{}",
            s.pylon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = s.pylon.log();
    assert!(!log.contains(&signature(&t)), "{log}");
    assert!(!log.contains(&signature(&expired)), "{log}");
    assert!(!log.contains("access_token"), "{log}");
}

#[test]
fn every_algorithm_family_verifies() {
    let origin = Origin::start("app");
    let keys: Vec<(&str, SignKey)> = vec![
        (
            "HS384",
            SignKey::Hmac(format!("{SECRET}{SECRET}").into_bytes()),
        ),
        (
            "HS512",
            SignKey::Hmac(format!("{SECRET}{SECRET}").into_bytes()),
        ),
        ("RS512", SignKey::rsa()),
        ("PS256", SignKey::rsa()),
        ("PS384", SignKey::rsa()),
        ("ES256", SignKey::ec(Nid::X9_62_PRIME256V1)),
        ("ES384", SignKey::ec(Nid::SECP384R1)),
        ("EdDSA", SignKey::ed()),
    ];
    let mut routes = String::new();
    let mut builder_files = Vec::new();
    for (alg, key) in &keys {
        let settings = match key {
            SignKey::Hmac(secret) => {
                format!("secret: \"{}\"", String::from_utf8_lossy(secret))
            }
            _ => {
                builder_files.push((format!("{alg}.pem"), key.public_pem()));
                format!("public_key_file: {alg}.pem")
            }
        };
        routes.push_str(&format!(
            "  - {{ name: {alg}, rule: \"Path(`/{alg}`)\", upstream: app, middlewares: [{{ jwt: {{ algorithms: [{alg}], {settings} }} }}] }}\n"
        ));
    }
    let yaml = format!(
        "listeners:\n  - {{ name: web, address: \"@listen0@\" }}\nupstreams:\n  app: {{ servers: [\"{}\"] }}\nroutes:\n{routes}",
        origin.address()
    );
    let mut builder = Pylon::builder(&yaml);
    for (name, pem) in &builder_files {
        builder = builder.file(name, pem);
    }
    let pylon = builder.start();
    let c = pylon.client();
    let claims = json!({ "sub": "alice", "exp": now() + 600 });
    for (alg, key) in &keys {
        let r = bearer(&c, &format!("/{alg}"), &token(alg, key, &claims));
        assert_eq!(r.status, 200, "{alg}: {}", r.text());
        // Another key of the same type does not pass.
        let other = match key {
            SignKey::Hmac(_) => SignKey::Hmac(b"x".repeat(64)),
            SignKey::Rsa(_) => SignKey::rsa(),
            SignKey::Ec(_, 32) => SignKey::ec(Nid::X9_62_PRIME256V1),
            SignKey::Ec(_, _) => SignKey::ec(Nid::SECP384R1),
            SignKey::Ed(_) => SignKey::ed(),
        };
        let r = bearer(&c, &format!("/{alg}"), &token(alg, &other, &claims));
        assert_invalid(&r, "invalid signature");
    }
}

/// A JWKS route: RS256 and ES256 keys chosen by `kid`, short refresh intervals.
fn jwks_yaml(origin: &Origin, url: &str, refresh: &str) -> String {
    format!(
        r#"
listeners:
  - {{ name: web, address: "@listen0@" }}
upstreams:
  app: {{ servers: ["{}"] }}
routes:
  - name: jwks
    rule: "PathPrefix(`/`)"
    upstream: app
    middlewares:
      - jwt: {{ algorithms: [RS256, ES256], jwks_url: "{url}", jwks_refresh: {refresh}, jwks_cooldown: 1s, claims_to_headers: {{ sub: X-User }} }}
"#,
        origin.address()
    )
}

fn jwks_pylon(origin: &Origin, server: &JwksServer, refresh: &str) -> Pylon {
    Pylon::start(&jwks_yaml(origin, &server.url(), refresh))
}

/// Polls `f` until it returns true, for at most 15 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn jwks_keys_are_chosen_by_kid_and_a_rotation_is_picked_up() {
    let origin = Origin::start("app");
    let (k1, k2, e1) = (
        SignKey::rsa(),
        SignKey::rsa(),
        SignKey::ec(Nid::X9_62_PRIME256V1),
    );
    let server = JwksServer::start(&jwks(&[("k1", &k1), ("e1", &e1)]));
    let pylon = jwks_pylon(&origin, &server, "1h");
    let c = pylon.client();
    let claims = json!({ "sub": "alice", "exp": now() + 600 });
    let t1 = token_with("RS256", &k1, json!({ "kid": "k1" }), &claims);
    let r = bearer(&c, "/", &t1);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.origin_header("x-user").as_deref(), Some("alice"));
    let te = token_with("ES256", &e1, json!({ "kid": "e1" }), &claims);
    assert_eq!(bearer(&c, "/", &te).status, 200);
    // Signed by k2 while naming k1: checked with k1, refused.
    let lying = token_with("RS256", &k2, json!({ "kid": "k1" }), &claims);
    assert_invalid(&bearer(&c, "/", &lying), "invalid signature");

    // The IdP rotates: k2 joins, k1 leaves. A token naming k2 makes Pylon fetch again.
    server.set(200, &jwks(&[("k2", &k2), ("e1", &e1)]));
    let t2 = token_with("RS256", &k2, json!({ "kid": "k2" }), &claims);
    eventually("the k2 token passes", || bearer(&c, "/", &t2).status == 200);
    assert!(server.hits() >= 2);
    // k1 is gone, its token (verified and cached before) with it.
    assert_invalid(&bearer(&c, "/", &t1), "no key for this token");
    assert!(
        pylon.log().contains("key(s) (kid k2, e1)"),
        "{}",
        pylon.log()
    );
}

#[test]
fn a_failed_jwks_fetch_keeps_the_last_good_keys() {
    let origin = Origin::start("app");
    let k1 = SignKey::rsa();
    let server = JwksServer::start(&jwks(&[("k1", &k1)]));
    let pylon = jwks_pylon(&origin, &server, "1s");
    let c = pylon.client();
    let claims = json!({ "sub": "alice", "exp": now() + 600 });
    let t1 = token_with("RS256", &k1, json!({ "kid": "k1" }), &claims);
    assert_eq!(bearer(&c, "/", &t1).status, 200);
    server.set(500, "down");
    eventually("a failed refresh is logged", || {
        pylon.log().contains("keeping the 1 key(s) fetched before")
    });
    let r = bearer(&c, "/", &t1);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(pylon.log().contains("status 500"), "{}", pylon.log());
}

#[test]
fn an_unreachable_jwks_at_start_gives_401_until_it_answers() {
    let origin = Origin::start("app");
    let k1 = SignKey::rsa();
    let server = JwksServer::start("");
    server.set(503, "starting");
    let pylon = jwks_pylon(&origin, &server, "1h");
    let c = pylon.client();
    let claims = json!({ "sub": "alice", "exp": now() + 600 });
    let t1 = token_with("RS256", &k1, json!({ "kid": "k1" }), &claims);
    assert_invalid(&bearer(&c, "/", &t1), "no key for this token");
    eventually("the empty start is logged", || {
        pylon.log().contains("no keys yet, so tokens get 401")
    });
    server.set(200, &jwks(&[("k1", &k1)]));
    eventually("the token passes once the JWKS answers", || {
        bearer(&c, "/", &t1).status == 200
    });
    assert_eq!(origin.hits(), 1);
}

/// Over https the certificate is checked against the system roots (OpenSSL's, which
/// `SSL_CERT_FILE` names) and the host name: the test CA is trusted by one Pylon only.
#[test]
fn an_https_jwks_is_used_only_with_a_trusted_certificate() {
    let origin = Origin::start("app");
    let pki = Pki::generate(&["localhost"], "unused");
    let k1 = SignKey::rsa();
    let server = JwksServer::start_tls(&jwks(&[("k1", &k1)]), &pki.server_cert, &pki.server_key);
    let yaml = jwks_yaml(&origin, &server.url(), "1h");
    let claims = json!({ "sub": "alice", "exp": now() + 600 });
    let t1 = token_with("RS256", &k1, json!({ "kid": "k1" }), &claims);

    let trusting = Pylon::builder(&yaml)
        .env("SSL_CERT_FILE", pki.ca_file.to_str().unwrap())
        .start();
    let r = bearer(&trusting.client(), "/", &t1);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), trusting.log());

    let hits = server.hits();
    let other = Pylon::start(&yaml);
    assert_invalid(&bearer(&other.client(), "/", &t1), "no key for this token");
    eventually("the refused certificate is logged", || {
        other
            .log()
            .contains("cannot fetch the JWKS at https://localhost")
    });
    assert_eq!(
        server.hits(),
        hits,
        "no request went over an unverified connection"
    );
}

#[test]
fn check_does_not_fetch_the_jwks() {
    let server = JwksServer::start(&jwks(&[("k1", &SignKey::rsa())]));
    let dir = crate::harness::tempdir::TempDir::new("jwt-check");
    let path = dir.write(
        "pylon.yaml",
        &format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:1\" }}]\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    respond: {{ status: 204 }}\n    middlewares: [{{ jwt: {{ algorithms: [RS256], jwks_url: \"{}\" }} }}]\n",
            server.url()
        ),
    );
    let out = crate::harness::pylon::run_cli(&["check", "-c", path.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.hits(), 0, "check is offline");
}

/// Typing errors (an unknown algorithm, `none`) are reported first, all at once; the checks
/// of keys, secrets, URLs and headers follow on a config that types.
#[test]
fn check_refuses_bad_jwt_settings_with_file_line_column() {
    let head = "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    respond: { status: 204 }\n    middlewares:\n";
    let out = check_refuses(
        "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nmiddlewares:\n  a:\n    jwt: { algorithms: [RS257] }\n  b:\n    jwt: { algorithms: [HS256, none] }\nroutes:\n  - { name: r, rule: \"PathPrefix(`/`)\", respond: { status: 204 }, middlewares: [a, b] }\n",
    );
    for expected in [
        "pylon.yaml:4:25: middlewares.a.jwt.algorithms[0]: unknown algorithm \"RS257\"",
        "pylon.yaml:6:32: middlewares.b.jwt.algorithms[1]: `none` is never accepted",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let out = check_refuses(&format!(
        r#"{head}      - jwt: {{ algorithms: [HS256] }}
      - jwt: {{ algorithms: [RS256] }}
      - jwt: {{ algorithms: [RS256], public_key_file: /no/such/pylon/key.pem }}
      - jwt: {{ algorithms: [ES256], public_key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n" }}
      - jwt: {{ algorithms: [RS256], jwks_url: "http://idp.example/jwks" }}
      - jwt: {{ algorithms: [HS256], secret: "0123456789abcdef0123456789abcdef", claims_to_headers: {{ sub: "X User" }} }}
"#
    ));
    for expected in [
        "pylon.yaml:7:29: routes[0].middlewares[0].jwt.algorithms[0]: HS256 needs `secret`",
        "pylon.yaml:8:29: routes[0].middlewares[1].jwt.algorithms[0]: RS256 needs a public key",
        "pylon.yaml:9:54: routes[0].middlewares[2].jwt.public_key_file: cannot read /no/such/pylon/key.pem",
        "pylon.yaml:10:49: routes[0].middlewares[3].jwt.public_key: the PEM public key does not parse",
        "pylon.yaml:11:47: routes[0].middlewares[4].jwt.jwks_url: invalid jwks_url",
        "pylon.yaml:12:107: routes[0].middlewares[5].jwt.claims_to_headers.sub: invalid header name \"X User\"",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

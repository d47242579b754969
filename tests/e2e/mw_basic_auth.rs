//! `basic_auth` through the binary: users with bcrypt, argon2 and SHA-crypt hashes (inline
//! and from an htpasswd file) get through as themselves; missing, wrong and malformed
//! credentials get 401 with the realm; bad configs are refused by `pylon check`; passwords
//! reach neither the upstream nor the log; a slow hash check does not stall other requests.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::harness::pylon::check_refuses;
use crate::harness::{Client, Origin, Pylon};

/// Password `secret` for every user: bcrypt `$2y$` and `$2b$` and argon2id made with the
/// crates Pylon verifies with, SHA-256/512-crypt made by `openssl passwd -5/-6`.
const ANN_BCRYPT: &str = "$2y$05$KBCwKxOzLha2MUDgW0PjXeGy8zDyKFegpVV4y0qPBUgij10WNyKY6";
const BOB_ARGON2: &str =
    "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$GMv1V/a9uBNqF+93SqBH3JLZiqfe1V1xP9SfOSAqqRE";
const CID_SHA256: &str = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
const DEE_SHA512: &str = "$6$saltstring$AIsRs/Ee56G/tC8MEHhvReZTfx8u3rXXMl6eYrjCG9ibix19DxoMBLogdTET5Ukw9Sf7eZTITsuk0Ry5qulYz.";
const EVE_BCRYPT_2B: &str = "$2b$05$KBCwKxOzLha2MUDgW0PjXeGy8zDyKFegpVV4y0qPBUgij10WNyKY6";
/// Password `slowpass`, bcrypt cost 13: a check takes long enough to watch other
/// requests pass meanwhile.
const SLOW_BCRYPT: &str = "$2y$13$XkTiW0HfMRe1LhSyKxGvK.hKeHm6Ut8ZjQweCsYPLzWFBZTUQVk8e";

/// Base64 (standard, padded) of `text`, for `Authorization: Basic`.
fn b64(text: &str) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", b64(&format!("{user}:{password}")))
}

struct Setup {
    pylon: Pylon,
    origin: Origin,
}

/// Routes: `/staff` (every hash format, inline and from `users.htpasswd`, realm `staff`,
/// `X-Auth-User` and `{consumer}` upstream), `/keep` (`remove_header: false`), `/plain`
/// (`allow_plaintext`), `/down` (a dead upstream), `/slow` (a slow hash) and `/free` (no
/// auth).
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
  staff:
    basic_auth:
      users: ["ann:{ANN_BCRYPT}", "bob:{BOB_ARGON2}", "cid:{CID_SHA256}", "dee:{DEE_SHA512}"]
      users_file: users.htpasswd
      realm: staff
      user_header: X-Auth-User
  show-consumer:
    headers: {{ request: {{ set: {{ X-Consumer: "{{consumer}}" }} }} }}
routes:
  - name: staff
    rule: "PathPrefix(`/staff`)"
    upstream: app
    middlewares: [staff, show-consumer]
  - name: keep
    rule: "PathPrefix(`/keep`)"
    upstream: app
    middlewares: [{{ basic_auth: {{ users: ["ann:{ANN_BCRYPT}"], remove_header: false }} }}]
  - name: plain
    rule: "PathPrefix(`/plain`)"
    upstream: app
    middlewares: [{{ basic_auth: {{ users: ["pat:letmein"], allow_plaintext: true }} }}]
  - name: down
    rule: "PathPrefix(`/down`)"
    upstream: dead
    middlewares: [staff]
  - name: slow
    rule: "PathPrefix(`/slow`)"
    upstream: app
    middlewares: [{{ basic_auth: {{ users: ["sam:{SLOW_BCRYPT}"] }} }}]
  - name: free
    rule: "PathPrefix(`/free`)"
    upstream: app
"#,
        origin = origin.address()
    );
    let users = format!("# from a file\neve:{EVE_BCRYPT_2B}\n");
    Setup {
        pylon: Pylon::builder(&yaml).file("users.htpasswd", &users).start(),
        origin,
    }
}

fn get(c: &Client, path: &str, headers: &[(&str, &str)]) -> crate::harness::client::Response {
    let mut h = vec![("Host", "localhost")];
    h.extend_from_slice(headers);
    c.request("GET", path, &h)
}

#[test]
fn every_hash_format_lets_its_user_in_as_that_user() {
    let s = setup();
    let c = s.pylon.client();
    for user in ["ann", "bob", "cid", "dee", "eve"] {
        let auth = basic(user, "secret");
        // A client cannot name itself: its X-Auth-User is replaced.
        let r = get(
            &c,
            "/staff/x",
            &[("Authorization", &auth), ("X-Auth-User", "root")],
        );
        assert_eq!(r.status, 200, "{user}: {}", r.text());
        assert_eq!(r.origin_header("x-auth-user").as_deref(), Some(user));
        assert_eq!(r.origin_header("x-consumer").as_deref(), Some(user));
        // The password does not go upstream.
        assert_eq!(r.origin_header("authorization"), None, "{user}");
    }
    // A second request with the same credentials (answered from the cache) is the same.
    let r = get(
        &c,
        "/staff/x",
        &[("Authorization", &basic("ann", "secret"))],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("x-auth-user").as_deref(), Some("ann"));
    assert_eq!(s.origin.hits(), 6);
}

#[test]
fn missing_wrong_and_malformed_credentials_get_401_with_the_realm() {
    let s = setup();
    let c = s.pylon.client();
    let bearer = "Bearer abc".to_string();
    let no_colon = format!("Basic {}", b64("ann"));
    let cases: [(Option<&str>, &str); 7] = [
        (None, "authentication required"),
        (Some(&basic("ann", "wrong")), "invalid credentials"),
        (Some(&basic("ann", "secret ")), "invalid credentials"),
        (Some(&basic("zed", "secret")), "invalid credentials"),
        (Some(&bearer), "Basic credentials required"),
        (
            Some("Basic not*base64"),
            "malformed credentials: not base64",
        ),
        (
            Some(&no_colon),
            "malformed credentials: no `:` between user and password",
        ),
    ];
    for (auth, message) in cases {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let r = get(&c, "/staff", &headers);
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"staff\", charset=\"UTF-8\""),
            "{auth:?}"
        );
        assert_eq!(r.json()["error"], message, "{auth:?}");
    }
    // Two Authorization headers are ambiguous: refused, even when one is right.
    let good = basic("ann", "secret");
    let r = get(
        &c,
        "/staff",
        &[("Authorization", &good), ("Authorization", &good)],
    );
    assert_eq!(r.status, 401);
    // Browsers get the same refusal as a page.
    let r = get(&c, "/staff", &[("Accept", "text/html")]);
    assert_eq!(r.status, 401);
    assert!(r.text().contains("authentication required"), "{}", r.text());
    assert_eq!(s.origin.hits(), 0);
}

#[test]
fn remove_header_false_keeps_authorization_and_plaintext_works_when_allowed() {
    let s = setup();
    let c = s.pylon.client();
    let auth = basic("ann", "secret");
    let r = get(&c, "/keep", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("authorization"), Some(auth));
    // Default realm, and no user header unless one is configured.
    let r = get(&c, "/keep", &[]);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"pylon\", charset=\"UTF-8\"")
    );
    let r = get(&c, "/plain", &[("Authorization", &basic("pat", "letmein"))]);
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("x-auth-user"), None);
    assert_eq!(
        get(
            &c,
            "/plain",
            &[("Authorization", &basic("pat", "letmeout"))]
        )
        .status,
        401
    );
}

#[test]
fn passwords_never_reach_the_log() {
    let s = setup();
    let auth = basic("ann", "secret");
    let r = get(&s.pylon.client(), "/down/x", &[("Authorization", &auth)]);
    assert_eq!(r.status, 502);
    let wrong = basic("ann", "wrongpass");
    assert_eq!(
        get(&s.pylon.client(), "/down/x", &[("Authorization", &wrong)]).status,
        401
    );
    let log = s.pylon.log();
    // The 502 was logged (so the log is being looked at), without the credentials.
    assert!(
        log.contains("GET /down/x") && log.contains("route: down"),
        "{log}"
    );
    for secret in [&auth[6..], &wrong[6..], "secret", "wrongpass"] {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
}

#[test]
fn a_slow_hash_check_does_not_stall_other_requests() {
    // One worker thread (the default): a check run on it would hold every other request.
    let s = setup();
    let addr = s.pylon.addr();
    let slow_done: Arc<Mutex<Option<Instant>>> = Arc::default();
    let done = slow_done.clone();
    let slow = std::thread::spawn(move || {
        let r = get(
            &Client::new(addr),
            "/slow",
            &[("Authorization", &basic("sam", "wrong"))],
        );
        *done.lock().unwrap() = Some(Instant::now());
        r.status
    });
    // Let the slow request arrive; its check then runs for seconds on a debug build.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = get(&s.pylon.client(), "/free", &[]);
    let fast_done = Instant::now();
    assert_eq!(r.status, 200);
    assert_eq!(slow.join().unwrap(), 401);
    let slow_done = slow_done.lock().unwrap().unwrap();
    assert!(
        fast_done < slow_done,
        "the request without auth waited for the slow check to finish"
    );
}

#[test]
fn check_refuses_plaintext_unknown_hashes_and_unreadable_files_at_their_place() {
    let base = "listeners: [{ name: web, address: \"127.0.0.1:0\" }]\nupstreams: { app: { servers: [\"127.0.0.1:9\"] } }\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares:\n";
    let text = check_refuses(&format!(
        "{base}      - basic_auth: {{ users: [\"ann:hunter2\"] }}\n"
    ));
    assert!(
        text.contains("pylon.yaml:8:31: routes[0].middlewares[0].basic_auth.users[0]: user `ann`: not a password hash (a plain-text password?)"),
        "{text}"
    );
    assert!(text.contains("allow_plaintext: true"), "{text}");
    assert!(!text.contains("hunter2"), "the password is printed: {text}");
    let text = check_refuses(&format!(
        "{base}      - basic_auth:\n          users: [\"ann:$apr1$x$y\", \"bob:$2y$05$short\"]\n          users_file: /no/such/users.htpasswd\n          user_header: \"X User\"\n"
    ));
    for want in [
        "pylon.yaml:9:19: routes[0].middlewares[0].basic_auth.users[0]: user `ann`: MD5-crypt",
        "pylon.yaml:9:36: routes[0].middlewares[0].basic_auth.users[1]: user `bob`: not a valid bcrypt hash",
        "pylon.yaml:10:23: routes[0].middlewares[0].basic_auth.users_file: cannot read /no/such/users.htpasswd",
        "pylon.yaml:11:24: routes[0].middlewares[0].basic_auth.user_header: invalid header name \"X User\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

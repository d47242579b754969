#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;

use super::super::load_errors;
use super::*;

/// The errors of a config whose only route uses `jwt: SETTINGS` (written on line 8, from
/// column 14).
fn errors(settings: &str) -> String {
    load_errors(&format!(
        "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nupstreams: {{ app: {{ servers: [\"127.0.0.1:9000\"] }} }}\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares:\n      - jwt: {settings}\n"
    ))
}

/// A file in the temp dir, named for this process and test.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("pylon-jwt-config-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

fn rsa_pem() -> String {
    let key = Rsa::generate(2048).unwrap();
    String::from_utf8(key.public_key_to_pem().unwrap()).unwrap()
}

/// A PEM as a YAML double-quoted scalar.
fn quoted(pem: &str) -> String {
    format!("{pem:?}")
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn valid_settings_load() {
    let file = temp_file("ok.pem", rsa_pem().as_bytes());
    for ok in [
        format!("{{ algorithms: [HS256], secret: {SECRET}, audience: api }}"),
        format!(
            "{{ algorithms: [RS256, PS256], public_key_file: \"{}\", issuer: [a, b] }}",
            file.display()
        ),
        format!(
            "{{ algorithms: [RS256, HS256], secret: {SECRET}, public_key: {} }}",
            quoted(&rsa_pem())
        ),
        "{ algorithms: [RS256, ES256, EdDSA], jwks_url: \"https://idp.example/jwks.json\", jwks_refresh: 1m, jwks_cooldown: 5s }".into(),
        "{ algorithms: [ES384], jwks_url: \"http://127.0.0.1:9/k\", token_from: [bearer, { cookie: session }, { query: access_token }], claims_to_headers: { sub: X-User, roles: X-Roles }, required_claims: [email], consumer_claim: client_id, forward_token: true, realm: api, cache_size: 0, cache_ttl: 5s, leeway: 0s, require_exp: false }".into(),
    ] {
        assert_eq!(errors(&ok), "", "{ok}");
    }
    std::fs::remove_file(file).unwrap();
}

#[test]
fn defaults_are_named() {
    let text = "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nupstreams: { app: { servers: [\"127.0.0.1:9000\"] } }\nmiddlewares:\n  m:\n    jwt: { algorithms: [ES256], jwks_url: \"https://idp.example/jwks\" }\nroutes:\n  - { name: r, rule: \"PathPrefix(`/`)\", upstream: app, middlewares: [m] }\n";
    let config = crate::load_str(text, crate::Format::Yaml, Path::new("t.yaml")).unwrap();
    let crate::Middleware::Jwt(jwt) = &config.middlewares["m"] else {
        panic!("not a jwt middleware");
    };
    let expected = Jwt {
        algorithms: vec![Algorithm::ES256],
        jwks_url: Some("https://idp.example/jwks".into()),
        ..Jwt::default()
    };
    assert_eq!(jwt, &expected);
    assert_eq!(jwt.leeway, DEFAULT_LEEWAY);
    assert!(jwt.require_exp);
    assert!(!jwt.forward_token);
    assert_eq!(jwt.token_from, vec![TokenSource::Bearer]);
    assert_eq!(jwt.consumer_claim, "sub");
}

#[test]
fn algorithms_are_checked() {
    let e = errors("{ algorithms: [RS256, none], jwks_url: \"https://i.example/k\" }");
    assert!(
        e.contains(
            "t.yaml:8:36: routes[0].middlewares[0].jwt.algorithms[1]: `none` is never accepted"
        ),
        "{e}"
    );
    let e = errors("{ algorithms: [rs256], jwks_url: \"https://i.example/k\" }");
    assert!(e.contains("did you mean `RS256`?"), "{e}");
    let e = errors("{ algorithms: [HS1] }");
    assert!(
        e.contains("unknown algorithm \"HS1\": use one of HS256"),
        "{e}"
    );
    let e = errors("{ jwks_url: \"https://i.example/k\" }");
    assert!(
        e.contains("jwt.algorithms: list the accepted algorithms"),
        "{e}"
    );
}

#[test]
fn secrets_are_checked_without_being_shown() {
    let e = errors("{ algorithms: [HS256, HS384] }");
    assert!(
        e.contains("t.yaml:8:29: routes[0].middlewares[0].jwt.algorithms[0]: HS256 needs `secret`"),
        "{e}"
    );
    assert!(e.contains("jwt.algorithms[1]: HS384 needs `secret`"), "{e}");
    let e = errors("{ algorithms: [HS512], secret: short-secret-value }");
    assert!(
        e.contains("jwt.secret: HS512 needs a secret of at least 64 bytes (RFC 7518 §3.2); this one has 18"),
        "{e}"
    );
    assert!(!e.contains("short-secret-value"), "{e}");
    let e = errors(&format!(
        "{{ algorithms: [RS256], secret: {SECRET}, jwks_url: \"https://i.example/k\" }}"
    ));
    assert!(
        e.contains("jwt.secret: `secret` is only used by HS256"),
        "{e}"
    );
}

#[test]
fn public_keys_are_read_parsed_and_matched_to_the_algorithms() {
    let e = errors("{ algorithms: [RS256] }");
    assert!(
        e.contains("jwt.algorithms[0]: RS256 needs a public key: set `public_key`, `public_key_file` or `jwks_url`"),
        "{e}"
    );
    let e = errors("{ algorithms: [RS256], public_key_file: /no/such/key.pem }");
    assert!(
        e.contains("t.yaml:8:54: routes[0].middlewares[0].jwt.public_key_file: cannot read /no/such/key.pem"),
        "{e}"
    );
    let e = errors("{ algorithms: [RS256], public_key: \"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n\" }");
    assert!(
        e.contains("jwt.public_key: the PEM public key does not parse"),
        "{e}"
    );
    let e = errors("{ algorithms: [RS256], public_key: hello }");
    assert!(e.contains("jwt.public_key: not a PEM public key"), "{e}");

    // An RSA key listed for ES256: refused at the algorithm.
    let file = temp_file("rsa.pem", rsa_pem().as_bytes());
    let e = errors(&format!(
        "{{ algorithms: [RS256, ES256], public_key_file: \"{}\" }}",
        file.display()
    ));
    assert!(
        e.contains(
            "jwt.algorithms[1]: ES256 needs an EC P-256 key, but `public_key_file` is an RSA key"
        ),
        "{e}"
    );
    assert!(!e.contains("algorithms[0]"), "{e}");
    std::fs::remove_file(file).unwrap();

    let group = EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
    let ec = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let pem = String::from_utf8(ec.public_key_to_pem().unwrap()).unwrap();
    let e = errors(&format!(
        "{{ algorithms: [ES256], public_key: {} }}",
        quoted(&pem)
    ));
    assert!(
        e.contains("ES256 needs an EC P-256 key, but `public_key` is an EC P-384 key"),
        "{e}"
    );
    let private = String::from_utf8(ec.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let e = errors(&format!(
        "{{ algorithms: [ES384], public_key: {} }}",
        quoted(&private)
    ));
    assert!(
        e.contains("jwt.public_key: this PEM holds a private key"),
        "{e}"
    );

    let e = errors(&format!(
        "{{ algorithms: [RS256], public_key: {}, jwks_url: \"https://i.example/k\" }}",
        quoted(&rsa_pem())
    ));
    assert!(
        e.contains("jwt.jwks_url: write one of `public_key`, `public_key_file` or `jwks_url`, not public_key and jwks_url"),
        "{e}"
    );
    let e = errors(&format!(
        "{{ algorithms: [HS256], secret: {SECRET}, jwks_url: \"https://i.example/k\" }}"
    ));
    assert!(
        e.contains("jwt.jwks_url: `jwks_url` is only used by RS*"),
        "{e}"
    );
}

#[test]
fn jwks_urls_are_checked() {
    let e = errors("{ algorithms: [RS256], jwks_url: \"http://idp.example/jwks\" }");
    assert!(
        e.contains("t.yaml:8:47: routes[0].middlewares[0].jwt.jwks_url: invalid jwks_url \"http://idp.example/jwks\": http:// is allowed for loopback hosts only"),
        "{e}"
    );
    let e = errors("{ algorithms: [RS256], jwks_url: \"idp.example/jwks\" }");
    assert!(e.contains("use an https:// URL"), "{e}");
    let e = errors(
        "{ algorithms: [RS256], jwks_url: \"https://i.example/k\", jwks_refresh: 0s, jwks_cooldown: 0.5 }",
    );
    assert!(
        e.contains("jwt.jwks_refresh: jwks_refresh must be at least 1s"),
        "{e}"
    );
    assert!(
        e.contains("jwt.jwks_cooldown: jwks_cooldown must be at least 1s"),
        "{e}"
    );
}

#[test]
fn claims_headers_and_sources_are_checked() {
    let base = format!("algorithms: [HS256], secret: {SECRET}");
    let e = errors(&format!(
        "{{ {base}, claims_to_headers: {{ sub: \"X User\", a: Content-Length, b: X-A, c: x-a }}, required_claims: [\"\"], consumer_claim: \"\" }}"
    ));
    assert!(
        e.contains("jwt.claims_to_headers.sub: invalid header name \"X User\""),
        "{e}"
    );
    assert!(
        e.contains("jwt.claims_to_headers.a: `Content-Length` cannot carry a claim"),
        "{e}"
    );
    assert!(
        e.contains("jwt.claims_to_headers.c: header `x-a` is already given to another claim"),
        "{e}"
    );
    assert!(
        e.contains("jwt.required_claims[0]: an empty claim name"),
        "{e}"
    );
    assert!(e.contains("jwt.consumer_claim: an empty claim name"), "{e}");

    let e = errors(&format!(
        "{{ {base}, token_from: [bearer, {{ cookie: \"a b\" }}, bearer, {{ header: X }}] }}"
    ));
    assert!(e.contains("jwt.token_from[3]"), "{e}");
    let e = errors(&format!(
        "{{ {base}, token_from: [bearer, {{ cookie: \"a b\" }}, bearer] }}"
    ));
    assert!(
        e.contains("jwt.token_from[1].cookie: invalid cookie name \"a b\""),
        "{e}"
    );
    assert!(
        e.contains("jwt.token_from[2]: this source is already listed"),
        "{e}"
    );
    let e = errors(&format!("{{ {base}, token_from: [], realm: 'a\"b' }}"));
    assert!(
        e.contains("jwt.token_from: list at least one source"),
        "{e}"
    );
    assert!(e.contains("jwt.realm: invalid realm"), "{e}");
    let e = errors(&format!("{{ {base}, issuer: [], audience: [a, \"\"] }}"));
    assert!(e.contains("jwt.issuer: list at least one issuer"), "{e}");
    assert!(e.contains("jwt.audience[1]: an empty audience"), "{e}");
}

/// The `## jwt` section of docs/security.md: every YAML example loads (a file it names that
/// is not on this machine aside; `${JWT_SECRET}` is set for it).
#[test]
fn security_md_jwt_examples_load() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/security.md"),
    )
    .unwrap();
    let start = page.find("\n## `jwt`").expect("a ## `jwt` section");
    let section = &page[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut examples = 0;
    let mut block: Option<String> = None;
    for line in section.lines() {
        match (line.strip_prefix("```"), block.take()) {
            (Some("yaml"), None) => block = Some(String::new()),
            (Some(_), Some(text)) => {
                examples += 1;
                check_example(&text);
            }
            (Some(_), None) => block = Some("not yaml".into()),
            (None, Some(mut text)) => {
                text.push_str(line);
                text.push('\n');
                block = Some(text);
            }
            (None, None) => {}
        }
    }
    assert!(examples >= 3, "the jwt section shows its examples");
}

fn check_example(text: &str) {
    if text.starts_with("not yaml") {
        return;
    }
    let mut full = String::new();
    if !text.contains("listeners:") {
        full.push_str("listeners:\n  - { name: web, address: \"127.0.0.1:8080\" }\n");
    }
    full.push_str(&text.replace("${JWT_SECRET}", "an-example-secret-of-32-bytes-or-more"));
    if let Err(errors) = crate::load_str(&full, crate::Format::Yaml, Path::new("doc.yaml")) {
        let unexpected: Vec<_> = errors
            .iter()
            .filter(|e| !e.message.starts_with("cannot read /"))
            .collect();
        assert!(
            unexpected.is_empty(),
            "docs/security.md jwt example does not load:\n{text}\n{errors}"
        );
    }
}

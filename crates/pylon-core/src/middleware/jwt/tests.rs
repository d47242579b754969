//! The verifier without a network or a proxy: algorithms, confusion attacks, claims, the
//! cache with an injected clock, JWKS parsing and `kid` selection.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use openssl::nid::Nid;
use pylon_config::middleware::{Algorithm, Jwt as Config, StringList};
use serde_json::{json, Value};

use super::keys::{parse_jwks, Key};
use super::testkit::{b64, signature, token, token_with, SignKey};
use super::verify::{Failure, Verifier};
use super::{quotable, unix_now};

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// A fixed "now" for tests with an injected clock.
const NOW: f64 = 1_700_000_000.0;

fn claims() -> Value {
    json!({ "sub": "alice", "exp": NOW + 3600.0 })
}

fn hmac_config() -> Config {
    Config {
        algorithms: vec![Algorithm::HS256],
        secret: Some(SECRET.into()),
        ..Config::default()
    }
}

fn key_config(alg: Algorithm, key: &SignKey) -> Config {
    Config {
        algorithms: vec![alg],
        public_key: Some(key.public_pem()),
        ..Config::default()
    }
}

fn reason(result: Result<Arc<super::Verified>, Failure>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(Failure::Invalid(why)) => why.into_owned(),
        Err(other) => format!("{other:?}"),
    }
}

#[test]
fn every_algorithm_verifies_and_a_changed_byte_does_not() {
    let rsa = SignKey::rsa();
    let cases: Vec<(Algorithm, SignKey)> = vec![
        (Algorithm::HS256, SignKey::Hmac(SECRET.into())),
        (Algorithm::HS384, SignKey::Hmac(SECRET.into())),
        (Algorithm::HS512, SignKey::Hmac(SECRET.into())),
        (Algorithm::ES256, SignKey::ec(Nid::X9_62_PRIME256V1)),
        (Algorithm::ES384, SignKey::ec(Nid::SECP384R1)),
        (Algorithm::ES512, SignKey::ec(Nid::SECP521R1)),
        (Algorithm::EdDSA, SignKey::ed()),
    ];
    let rsa_algs = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];
    let check = |alg: Algorithm, key: &SignKey, config: Config| {
        let v = Verifier::new(&config).unwrap();
        let t = token(alg.name(), key, &claims());
        assert_eq!(reason(v.check(&t, NOW)), "ok", "{alg}");
        // A payload changed after signing.
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        parts[1] = b64(json!({ "sub": "mallory", "exp": NOW + 3600.0 })
            .to_string()
            .as_bytes());
        assert_eq!(
            reason(v.check(&parts.join("."), NOW)),
            "invalid signature",
            "{alg}"
        );
        // A signature changed in its last byte.
        let t2 = {
            let mut p: Vec<String> = t.split('.').map(str::to_string).collect();
            let mut s = super::verify::b64(&p[2]).unwrap();
            *s.last_mut().unwrap() ^= 1;
            p[2] = b64(&s);
            p.join(".")
        };
        assert_eq!(reason(v.check(&t2, NOW)), "invalid signature", "{alg}");
    };
    for (alg, key) in &cases {
        let config = match key {
            SignKey::Hmac(_) => Config {
                algorithms: vec![*alg],
                secret: Some(SECRET.into()),
                ..Config::default()
            },
            _ => key_config(*alg, key),
        };
        check(*alg, key, config);
    }
    for alg in rsa_algs {
        check(alg, &rsa, key_config(alg, &rsa));
    }
}

#[test]
fn alg_none_and_unlisted_algorithms_are_refused() {
    let v = Verifier::new(&hmac_config()).unwrap();
    for alg in ["none", "None", "NONE", "HS384", "hs256", ""] {
        let header = b64(json!({ "alg": alg, "typ": "JWT" }).to_string().as_bytes());
        let payload = b64(claims().to_string().as_bytes());
        for sig in ["", "AAAA"] {
            let t = format!("{header}.{payload}.{sig}");
            assert_eq!(
                reason(v.check(&t, NOW)),
                "token algorithm not allowed",
                "{alg}"
            );
        }
    }
    let t = format!(
        "{}.{}.",
        b64(br#"{"typ":"JWT"}"#),
        b64(claims().to_string().as_bytes())
    );
    assert_eq!(reason(v.check(&t, NOW)), "token algorithm not allowed");
}

/// The classic confusion: a token signed HS256 with the RSA public key's PEM as secret.
#[test]
fn an_rsa_public_key_is_never_an_hmac_secret() {
    let rsa = SignKey::rsa();
    let forged_key = SignKey::Hmac(rsa.public_pem().into_bytes());
    let forged = token("HS256", &forged_key, &claims());
    // RS256 only: HS256 is not accepted at all.
    let v = Verifier::new(&key_config(Algorithm::RS256, &rsa)).unwrap();
    assert_eq!(reason(v.check(&forged, NOW)), "token algorithm not allowed");
    // RS256 and HS256 with a different secret: HS256 is checked with the secret only.
    let both = Config {
        algorithms: vec![Algorithm::RS256, Algorithm::HS256],
        secret: Some(SECRET.into()),
        public_key: Some(rsa.public_pem()),
        ..Config::default()
    };
    let v = Verifier::new(&both).unwrap();
    assert_eq!(reason(v.check(&forged, NOW)), "invalid signature");
    // Both real tokens pass there.
    assert_eq!(reason(v.check(&token("RS256", &rsa, &claims()), NOW)), "ok");
    let hs = token("HS256", &SignKey::Hmac(SECRET.into()), &claims());
    assert_eq!(reason(v.check(&hs, NOW)), "ok");
    // And an RS256 header on an HMAC signature is not checked with the secret.
    let header = b64(br#"{"alg":"RS256"}"#);
    let payload = b64(claims().to_string().as_bytes());
    let mac = signature(
        "HS256",
        &SignKey::Hmac(SECRET.into()),
        format!("{header}.{payload}").as_bytes(),
    );
    let t = format!("{header}.{payload}.{}", b64(&mac));
    assert_eq!(reason(v.check(&t, NOW)), "invalid signature");
}

#[test]
fn a_key_verifies_only_its_own_algorithm_family() {
    let rsa = SignKey::rsa();
    let key = Key::public(
        None,
        None,
        openssl::pkey::PKey::public_key_from_pem(rsa.public_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    let data = b"a.b";
    let sig = signature("RS256", &rsa, data);
    assert!(key.verify(Algorithm::RS256, data, &sig));
    assert!(!key.verify(Algorithm::PS256, data, &sig));
    assert!(!key.verify(Algorithm::HS256, data, &sig));
    assert!(!key.verify(Algorithm::ES256, data, &sig));
    let secret = Key::hmac(SECRET.as_bytes()).unwrap();
    let mac = signature("HS256", &SignKey::Hmac(SECRET.into()), data);
    assert!(secret.verify(Algorithm::HS256, data, &mac));
    assert!(!secret.verify(Algorithm::RS256, data, &mac));
    assert!(!secret.verify(Algorithm::HS512, data, &mac));
}

#[test]
fn malformed_tokens_are_refused() {
    let v = Verifier::new(&hmac_config()).unwrap();
    let good = token("HS256", &SignKey::Hmac(SECRET.into()), &claims());
    for (t, why) in [
        ("", "malformed token"),
        ("abc", "malformed token"),
        ("a.b", "malformed token"),
        ("a.b.c.d", "malformed token"),
        ("a.b.c.d.e", "encrypted tokens (JWE) are not supported"),
        ("!!.e30.AAAA", "malformed token header"),
        (&format!("{good}="), "malformed token signature"),
    ] {
        assert_eq!(reason(v.check(t, NOW)), why, "{t}");
    }
    let crit = token_with(
        "HS256",
        &SignKey::Hmac(SECRET.into()),
        json!({ "crit": ["exp"] }),
        &claims(),
    );
    assert_eq!(
        reason(v.check(&crit, NOW)),
        "unsupported critical header parameter"
    );
    let long = "a".repeat(super::verify::MAX_TOKEN_LEN + 1);
    assert_eq!(reason(v.check(&long, NOW)), "token too long");
    // A payload that is not an object, signed correctly.
    let header = b64(br#"{"alg":"HS256"}"#);
    let payload = b64(b"[1]");
    let mac = signature(
        "HS256",
        &SignKey::Hmac(SECRET.into()),
        format!("{header}.{payload}").as_bytes(),
    );
    let t = format!("{header}.{payload}.{}", b64(&mac));
    assert_eq!(reason(v.check(&t, NOW)), "malformed token payload");
}

#[test]
fn times_are_checked_with_leeway() {
    let key = SignKey::Hmac(SECRET.into());
    let v = Verifier::new(&Config {
        cache_size: 0,
        ..hmac_config()
    })
    .unwrap();
    let at = |c: Value| reason(v.check(&token("HS256", &key, &c), NOW));
    assert_eq!(
        at(json!({ "exp": NOW - 30.0 })),
        "ok",
        "within the 60s leeway"
    );
    assert_eq!(at(json!({ "exp": NOW - 61.0 })), "token expired");
    assert_eq!(at(json!({ "exp": NOW + 10.0, "nbf": NOW + 30.0 })), "ok");
    assert_eq!(
        at(json!({ "exp": NOW + 999.0, "nbf": NOW + 61.0 })),
        "token not valid yet"
    );
    assert_eq!(
        at(json!({ "exp": NOW + 999.0, "iat": NOW + 120.0 })),
        "token issued in the future"
    );
    assert_eq!(at(json!({ "sub": "x" })), "token has no exp");
    assert_eq!(
        at(json!({ "exp": "tomorrow" })),
        "claim `exp` is not a number"
    );
    assert_eq!(
        at(json!({ "exp": NOW + 0.5 })),
        "ok",
        "fractions are dates too"
    );

    let lax = Verifier::new(&Config {
        require_exp: false,
        leeway: Duration::ZERO,
        ..hmac_config()
    })
    .unwrap();
    let at = |c: Value| reason(lax.check(&token("HS256", &key, &c), NOW));
    assert_eq!(at(json!({ "sub": "x" })), "ok");
    assert_eq!(at(json!({ "exp": NOW - 1.0 })), "token expired");
    assert_eq!(
        at(json!({ "exp": NOW })),
        "token expired",
        "exp is exclusive"
    );
}

#[test]
fn issuer_audience_and_required_claims() {
    let key = SignKey::Hmac(SECRET.into());
    let v = Verifier::new(&Config {
        issuer: Some(StringList(vec!["https://a".into(), "https://b".into()])),
        audience: Some(StringList(vec!["api".into()])),
        required_claims: vec!["email".into()],
        ..hmac_config()
    })
    .unwrap();
    let exp = NOW + 100.0;
    let at = |c: Value| reason(v.check(&token("HS256", &key, &c), NOW));
    let ok = json!({ "exp": exp, "iss": "https://b", "aud": "api", "email": "a@x" });
    assert_eq!(at(ok), "ok");
    assert_eq!(
        at(json!({ "exp": exp, "iss": "https://b", "aud": ["web", "api"], "email": "a@x" })),
        "ok"
    );
    assert_eq!(
        at(json!({ "exp": exp, "iss": "https://c", "aud": "api", "email": "a@x" })),
        "wrong issuer"
    );
    assert_eq!(
        at(json!({ "exp": exp, "aud": "api", "email": "a@x" })),
        "wrong issuer"
    );
    assert_eq!(
        at(json!({ "exp": exp, "iss": "https://a", "aud": ["web"], "email": "a@x" })),
        "wrong audience"
    );
    assert_eq!(
        at(json!({ "exp": exp, "iss": "https://a", "email": "a@x" })),
        "wrong audience"
    );
    assert_eq!(
        at(json!({ "exp": exp, "iss": "https://a", "aud": "api", "email": null })),
        "Insufficient(\"token lacks the required claim `email`\")"
    );
    // No audience configured: a token addressed to someone is not for us.
    let open = Verifier::new(&hmac_config()).unwrap();
    let t = token("HS256", &key, &json!({ "exp": exp, "aud": "other" }));
    assert_eq!(reason(open.check(&t, NOW)), "wrong audience");
}

#[test]
fn claims_become_headers_and_the_consumer() {
    let key = SignKey::Hmac(SECRET.into());
    let mut config = hmac_config();
    for (claim, header) in [
        ("sub", "X-User"),
        ("n", "X-N"),
        ("admin", "X-Admin"),
        ("roles", "X-Roles"),
        ("org", "X-Org"),
        ("absent", "X-Absent"),
        ("bad", "X-Bad"),
    ] {
        config.claims_to_headers.insert(claim.into(), header.into());
    }
    config.consumer_claim = "client".into();
    let v = Verifier::new(&config).unwrap();
    let c = json!({
        "exp": NOW + 100.0, "sub": "alice", "n": 42, "admin": true,
        "roles": ["a", "b", 3], "org": { "id": 1 }, "client": "svc-1"
    });
    let got = v.check(&token("HS256", &key, &c), NOW).unwrap();
    let headers: Vec<(String, String)> = got
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let expect = [
        ("x-admin", "true"),
        ("x-n", "42"),
        ("x-org", "{\"id\":1}"),
        ("x-roles", "a,b,3"),
        ("x-user", "alice"),
    ];
    assert_eq!(
        headers,
        expect.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
    assert_eq!(got.consumer.as_deref(), Some("svc-1"));
    let c = json!({ "exp": NOW + 100.0, "bad": "a\r\nX-Evil: 1" });
    assert_eq!(
        reason(v.check(&token("HS256", &key, &c), NOW)),
        "claim `bad` cannot be sent as a header"
    );
}

/// The cache with an injected clock: a hit is the same verified value; it still expires.
#[test]
fn a_cached_token_still_expires() {
    let key = SignKey::Hmac(SECRET.into());
    let v = Verifier::new(&Config {
        leeway: Duration::from_secs(5),
        cache_ttl: Duration::from_secs(60),
        ..hmac_config()
    })
    .unwrap();
    let exp = NOW + 30.0;
    let t = token("HS256", &key, &json!({ "exp": exp, "nbf": NOW - 1.0 }));
    let first = v.check(&t, NOW).unwrap();
    assert_eq!(v.cached(), 1);
    let again = v.check(&t, NOW + 29.0).unwrap();
    assert!(Arc::ptr_eq(&first, &again), "a hit");
    // Past `exp` the entry is gone; within the leeway the token is verified afresh.
    let after = v.check(&t, NOW + 31.0).unwrap();
    assert!(!Arc::ptr_eq(&first, &after), "re-verified past exp");
    assert_eq!(reason(v.check(&t, exp + 5.0)), "token expired");
    assert_eq!(reason(v.check(&t, exp + 3600.0)), "token expired");

    // The TTL bounds a long-lived token.
    let t = token("HS256", &key, &json!({ "exp": NOW + 86_400.0 }));
    let first = v.check(&t, NOW).unwrap();
    assert!(Arc::ptr_eq(&first, &v.check(&t, NOW + 59.0).unwrap()));
    assert!(!Arc::ptr_eq(&first, &v.check(&t, NOW + 61.0).unwrap()));

    // A token refused is not cached, and the cache is bounded.
    let small = Verifier::new(&Config {
        cache_size: 3,
        ..hmac_config()
    })
    .unwrap();
    for i in 0..10 {
        let t = token("HS256", &key, &json!({ "exp": NOW + 100.0, "i": i }));
        small.check(&t, NOW).unwrap();
    }
    assert_eq!(small.cached(), 3);
    let bad = token("HS256", &SignKey::Hmac(b"x".repeat(32)), &claims());
    let v = Verifier::new(&hmac_config()).unwrap();
    assert!(v.check(&bad, NOW).is_err());
    assert_eq!(v.cached(), 0);
}

fn jwk_rsa(kid: &str, key: &SignKey) -> Value {
    let SignKey::Rsa(k) = key else { panic!() };
    let rsa = k.rsa().unwrap();
    json!({ "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec()) })
}

fn jwk_ec(kid: &str, key: &SignKey) -> Value {
    let SignKey::Ec(k, n) = key else { panic!() };
    let ec = k.ec_key().unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let (mut x, mut y) = (
        openssl::bn::BigNum::new().unwrap(),
        openssl::bn::BigNum::new().unwrap(),
    );
    ec.public_key()
        .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
        .unwrap();
    json!({ "kty": "EC", "kid": kid, "crv": "P-256",
        "x": b64(&x.to_vec_padded(*n as i32).unwrap()), "y": b64(&y.to_vec_padded(*n as i32).unwrap()) })
}

fn jwk_ed(kid: &str, key: &SignKey) -> Value {
    let SignKey::Ed(k) = key else { panic!() };
    json!({ "kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(&k.raw_public_key().unwrap()) })
}

#[test]
fn jwks_documents_are_read_strictly() {
    let rsa = SignKey::rsa();
    let ec = SignKey::ec(Nid::X9_62_PRIME256V1);
    let ed = SignKey::ed();
    let mut enc = jwk_rsa("enc", &rsa);
    enc["use"] = json!("enc");
    let mut wrong_alg = jwk_rsa("wrong", &rsa);
    wrong_alg["alg"] = json!("ES256");
    let mut off_curve = jwk_ec("off", &ec);
    off_curve["y"] = off_curve["x"].clone();
    let doc = json!({ "keys": [
        jwk_rsa("r1", &rsa), jwk_ec("e1", &ec), jwk_ed("d1", &ed),
        { "kty": "oct", "kid": "s", "k": b64(SECRET.as_bytes()) },
        enc, wrong_alg, off_curve,
        { "kty": "RSA", "kid": "bad-n", "n": "!!", "e": "AQAB" },
    ]});
    let all = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
    let parsed = parse_jwks(doc.to_string().as_bytes(), &all).unwrap();
    let kids: Vec<_> = parsed.keys.iter().map(|k| k.kid.clone().unwrap()).collect();
    assert_eq!(kids, ["r1", "e1", "d1"]);
    let notes = parsed.skipped.join("\n");
    for expected in [
        "key `s`: symmetric (`oct`) keys are never taken from a URL",
        "key `enc`: not a signature key",
        "key `wrong`: ES256 needs an EC P-256 key, but the key is an RSA key",
        "key `off`: the EC key is not on its curve",
        "key `bad-n`: `n` is not base64url",
    ] {
        assert!(notes.contains(expected), "{notes}");
    }
    // Keys no configured algorithm uses are left out.
    let rs_only = parse_jwks(doc.to_string().as_bytes(), &[Algorithm::RS256]).unwrap();
    assert_eq!(rs_only.keys.len(), 1);
    assert!(parse_jwks(b"{}", &all).is_err());
    assert!(parse_jwks(b"not json", &all).is_err());
}

#[test]
fn jwks_keys_are_chosen_by_kid_and_type() {
    let one = SignKey::rsa();
    let two = SignKey::rsa();
    let ec = SignKey::ec(Nid::X9_62_PRIME256V1);
    let v = Verifier::new(&Config {
        algorithms: vec![Algorithm::RS256, Algorithm::ES256],
        jwks_url: Some("http://127.0.0.1:9/jwks".into()),
        ..Config::default()
    })
    .unwrap();
    let jwks = v.jwks().unwrap();
    // Before any fetch: no key for anything.
    let t1 = token_with("RS256", &one, json!({ "kid": "k1" }), &claims());
    assert_eq!(v.check(&t1, NOW).unwrap_err(), Failure::NoKey);

    let doc = json!({ "keys": [jwk_rsa("k1", &one), jwk_rsa("k2", &two), jwk_ec("k3", &ec)] });
    let algs = [Algorithm::RS256, Algorithm::ES256];
    jwks.set_keys(parse_jwks(doc.to_string().as_bytes(), &algs).unwrap().keys);
    assert_eq!(reason(v.check(&t1, NOW)), "ok");
    let t2 = token_with("RS256", &two, json!({ "kid": "k2" }), &claims());
    assert_eq!(reason(v.check(&t2, NOW)), "ok");
    // Signed by k2 but naming k1: checked with k1 only.
    let lying = token_with("RS256", &two, json!({ "kid": "k1" }), &claims());
    assert_eq!(reason(v.check(&lying, NOW)), "invalid signature");
    let unknown = token_with("RS256", &two, json!({ "kid": "k9" }), &claims());
    assert_eq!(v.check(&unknown, NOW).unwrap_err(), Failure::NoKey);
    // An RSA kid with an ES256 header: no key of that type has that kid.
    let mixed = token_with("ES256", &ec, json!({ "kid": "k1" }), &claims());
    assert_eq!(v.check(&mixed, NOW).unwrap_err(), Failure::NoKey);
    let e = token_with("ES256", &ec, json!({ "kid": "k3" }), &claims());
    assert_eq!(reason(v.check(&e, NOW)), "ok");
    // No kid: every key of the type is tried.
    assert_eq!(reason(v.check(&token("RS256", &two, &claims()), NOW)), "ok");

    // Rotation: k1 leaves the set; its token, cached a moment ago, is checked again.
    assert_eq!(reason(v.check(&t1, NOW)), "ok");
    let doc = json!({ "keys": [jwk_rsa("k2", &two)] });
    jwks.set_keys(parse_jwks(doc.to_string().as_bytes(), &algs).unwrap().keys);
    assert_eq!(v.check(&t1, NOW).unwrap_err(), Failure::NoKey);
}

#[test]
fn real_clock_tokens_pass() {
    let key = SignKey::Hmac(SECRET.into());
    let v = Verifier::new(&hmac_config()).unwrap();
    let t = token("HS256", &key, &json!({ "exp": unix_now() + 600.0 }));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert!(rt.block_on(v.verify(&t)).is_ok());
}

#[test]
fn descriptions_stay_inside_their_quotes() {
    assert_eq!(quotable("claim `a\"b\\c` é"), "claim `a?b?c` ?");
}

/// Middlewares naming one JWKS URL with the same settings share its keys (a reload that
/// keeps them keeps the keys); once no middleware holds it, the set is gone.
#[test]
fn a_jwks_is_shared_while_a_middleware_holds_it() {
    let config = |cooldown: u64| Config {
        algorithms: vec![Algorithm::RS256],
        jwks_url: Some("http://127.0.0.1:9/shared".into()),
        jwks_cooldown: Duration::from_secs(cooldown),
        ..Config::default()
    };
    let rsa = SignKey::rsa();
    let a = Verifier::new(&config(10)).unwrap();
    let doc = json!({ "keys": [jwk_rsa("k1", &rsa)] });
    a.jwks().unwrap().set_keys(
        parse_jwks(doc.to_string().as_bytes(), &[Algorithm::RS256])
            .unwrap()
            .keys,
    );
    let b = Verifier::new(&config(10)).unwrap();
    assert!(Arc::ptr_eq(a.jwks().unwrap(), b.jwks().unwrap()));
    let t = token_with("RS256", &rsa, json!({ "kid": "k1" }), &claims());
    assert_eq!(
        reason(b.check(&t, NOW)),
        "ok",
        "the new one starts with the keys"
    );
    let other = Verifier::new(&config(11)).unwrap();
    assert!(!Arc::ptr_eq(a.jwks().unwrap(), other.jwks().unwrap()));
    drop((a, b));
    let fresh = Verifier::new(&config(10)).unwrap();
    assert!(fresh.jwks().unwrap().keys().keys.is_empty());
}

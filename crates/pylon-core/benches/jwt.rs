//! Cost of one `jwt` check per request: the full verification (`uncached`) beside a hit of
//! the verified-token cache (`cached`), for RS256 and HS256; ES256 and EdDSA uncached for
//! reference.
//!
//! The token is realistic: a 2048-bit RSA key, issuer, audience, expiry, roles, ~280 bytes
//! of claims, two claims forwarded as headers. `uncached` runs a verifier with the cache
//! off (`cache_size: 0`): base64url, header JSON, signature, payload JSON, claim checks,
//! header values. A real cache miss adds one SHA-256 of the token and an insert. `cached`
//! is what a repeated token costs: SHA-256, a sharded LRU lookup, the `exp`/`nbf` re-check
//! against the clock.
//!
//! Run: `cargo bench -p pylon-core --bench jwt -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use pylon_config::middleware::{Algorithm, Jwt, StringList};
use pylon_core::middleware::jwt::{unix_now, Verifier};
use serde_json::json;

const SECRET: &str = "a-benchmark-secret-of-32-bytes-or-more";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token signed with `sign` (which gets the signing input and returns the JWS signature).
fn token(alg: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let header = json!({ "alg": alg, "typ": "JWT", "kid": "bench-1" });
    let claims = json!({
        "iss": "https://idp.example", "aud": "api", "sub": "user-1234567890",
        "exp": unix_now() as i64 + 86_400, "iat": unix_now() as i64, "nbf": unix_now() as i64 - 1,
        "scope": "read write", "roles": ["admin", "dev", "ops"], "email": "user@example.com",
        "jti": "0123456789abcdef0123456789abcdef"
    });
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = sign(signed.as_bytes());
    format!("{signed}.{}", b64(&sig))
}

fn sign_with(key: &PKey<Private>, data: &[u8]) -> Vec<u8> {
    Signer::new(MessageDigest::sha256(), key)
        .and_then(|mut s| s.sign_oneshot_to_vec(data))
        .expect("sign")
}

fn config(alg: Algorithm, cache_size: usize) -> Jwt {
    let mut def = Jwt {
        algorithms: vec![alg],
        issuer: Some(StringList(vec!["https://idp.example".into()])),
        audience: Some(StringList(vec!["api".into()])),
        cache_size,
        ..Jwt::default()
    };
    def.claims_to_headers.insert("sub".into(), "X-User".into());
    def.claims_to_headers
        .insert("roles".into(), "X-Roles".into());
    def
}

/// One algorithm's verifier settings and a token it accepts.
struct Case {
    name: &'static str,
    alg: Algorithm,
    secret: Option<String>,
    public_key: Option<String>,
    token: String,
}

fn cases() -> Vec<Case> {
    let rsa = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");
    let rs_token = token("RS256", |d| sign_with(&rsa, d));
    let hmac = PKey::hmac(SECRET.as_bytes()).expect("hmac");
    let hs_token = token("HS256", |d| sign_with(&hmac, d));
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    let ec = PKey::from_ec_key(EcKey::generate(&group).expect("ec")).expect("pkey");
    let es_token = token("ES256", |d| {
        let sig = EcdsaSig::from_der(&sign_with(&ec, d)).expect("der");
        let mut raw = sig.r().to_vec_padded(32).expect("r");
        raw.extend(sig.s().to_vec_padded(32).expect("s"));
        raw
    });
    let ed = PKey::generate_ed25519().expect("ed25519");
    let ed_token = token("EdDSA", |d| {
        Signer::new_without_digest(&ed)
            .and_then(|mut s| s.sign_oneshot_to_vec(d))
            .expect("sign")
    });
    let pem = |k: &PKey<Private>| String::from_utf8(k.public_key_to_pem().expect("pem")).ok();
    let case = |name, alg, secret: Option<&str>, public_key, token| Case {
        name,
        alg,
        secret: secret.map(str::to_string),
        public_key,
        token,
    };
    vec![
        case("RS256", Algorithm::RS256, None, pem(&rsa), rs_token),
        case("HS256", Algorithm::HS256, Some(SECRET), None, hs_token),
        case("ES256", Algorithm::ES256, None, pem(&ec), es_token),
        case("EdDSA", Algorithm::EdDSA, None, pem(&ed), ed_token),
    ]
}

fn jwt(c: &mut Criterion) {
    for Case {
        name,
        alg,
        secret,
        public_key,
        token,
    } in cases()
    {
        let build = |cache_size| {
            Verifier::new(&Jwt {
                secret: secret.clone(),
                public_key: public_key.clone(),
                ..config(alg, cache_size)
            })
            .expect("verifier")
        };
        let uncached = build(0);
        let now = unix_now();
        assert!(uncached.check(&token, now).is_ok(), "{name} verifies");
        c.bench_function(&format!("jwt/{name}/uncached"), |b| {
            b.iter(|| uncached.check(black_box(&token), now))
        });
        if matches!(alg, Algorithm::RS256 | Algorithm::HS256) {
            let cached = build(10_000);
            assert!(cached.check(&token, now).is_ok());
            c.bench_function(&format!("jwt/{name}/cached"), |b| {
                b.iter(|| cached.check(black_box(&token), now))
            });
        }
    }
}

criterion_group!(benches, jwt);
criterion_main!(benches);

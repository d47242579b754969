//! Keys and a token signer for the `jwt` tests, with the same OpenSSL Pylon verifies with
//! (RSA, EC P-256/P-384, Ed25519, HMAC), and the keys as JWKs. The signer is the unit
//! tests' own kit, shared by path so that both suites sign tokens the same way.

#[path = "../../../crates/pylon-core/src/middleware/jwt/testkit.rs"]
mod kit;

pub use kit::*;
use serde_json::{json, Value};

/// The public key as a JWK (RFC 7517) with this `kid`.
pub fn jwk(kid: &str, key: &SignKey) -> Value {
    match key {
        SignKey::Hmac(_) => panic!("no public half"),
        SignKey::Rsa(k) => {
            let rsa = k.rsa().unwrap();
            json!({ "kty": "RSA", "kid": kid, "use": "sig",
                "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec()) })
        }
        SignKey::Ec(k, n) => {
            let ec = k.ec_key().unwrap();
            let mut ctx = openssl::bn::BigNumContext::new().unwrap();
            let mut x = openssl::bn::BigNum::new().unwrap();
            let mut y = openssl::bn::BigNum::new().unwrap();
            ec.public_key()
                .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
                .unwrap();
            let crv = match n {
                32 => "P-256",
                48 => "P-384",
                _ => "P-521",
            };
            json!({ "kty": "EC", "kid": kid, "crv": crv,
                "x": b64(&x.to_vec_padded(*n as i32).unwrap()),
                "y": b64(&y.to_vec_padded(*n as i32).unwrap()) })
        }
        SignKey::Ed(k) => {
            json!({ "kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(&k.raw_public_key().unwrap()) })
        }
    }
}

/// A JWKS document of these (kid, key) pairs.
pub fn jwks(keys: &[(&str, &SignKey)]) -> String {
    let list: Vec<Value> = keys.iter().map(|(kid, key)| jwk(kid, key)).collect();
    json!({ "keys": list }).to_string()
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

//! Test keys and a token signer, for the unit tests; the e2e suite includes this file too
//! (`tests/e2e/mw_jwt/sign.rs`), so it uses nothing from this crate.

#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};
use serde_json::{json, Value};

/// A signing key of some type.
pub enum SignKey {
    Hmac(Vec<u8>),
    Rsa(PKey<Private>),
    Ec(PKey<Private>, usize),
    Ed(PKey<Private>),
}

impl SignKey {
    pub fn rsa() -> SignKey {
        SignKey::Rsa(PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap())
    }

    pub fn ec(nid: Nid) -> SignKey {
        let n = match nid {
            Nid::X9_62_PRIME256V1 => 32,
            Nid::SECP384R1 => 48,
            _ => 66,
        };
        let group = EcGroup::from_curve_name(nid).unwrap();
        SignKey::Ec(
            PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap(),
            n,
        )
    }

    pub fn ed() -> SignKey {
        SignKey::Ed(PKey::generate_ed25519().unwrap())
    }

    /// The public key, PEM.
    pub fn public_pem(&self) -> String {
        let pem = match self {
            SignKey::Hmac(_) => panic!("no public half"),
            SignKey::Rsa(k) | SignKey::Ec(k, _) | SignKey::Ed(k) => k.public_key_to_pem().unwrap(),
        };
        String::from_utf8(pem).unwrap()
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn md(alg: &str) -> MessageDigest {
    match &alg[2..] {
        "384" => MessageDigest::sha384(),
        "512" => MessageDigest::sha512(),
        _ => MessageDigest::sha256(),
    }
}

/// The signature of `data` with `alg` and `key`, as JWS carries it.
pub fn signature(alg: &str, key: &SignKey, data: &[u8]) -> Vec<u8> {
    match key {
        SignKey::Hmac(secret) => {
            let k = PKey::hmac(secret).unwrap();
            Signer::new(md(alg), &k)
                .unwrap()
                .sign_oneshot_to_vec(data)
                .unwrap()
        }
        SignKey::Rsa(k) => {
            let mut s = Signer::new(md(alg), k).unwrap();
            if alg.starts_with("PS") {
                s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
                s.set_rsa_mgf1_md(md(alg)).unwrap();
                s.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
            }
            s.sign_oneshot_to_vec(data).unwrap()
        }
        SignKey::Ec(k, n) => {
            let der = Signer::new(md(alg), k)
                .unwrap()
                .sign_oneshot_to_vec(data)
                .unwrap();
            let sig = EcdsaSig::from_der(&der).unwrap();
            let mut out = sig.r().to_vec_padded(*n as i32).unwrap();
            out.extend(sig.s().to_vec_padded(*n as i32).unwrap());
            out
        }
        SignKey::Ed(k) => Signer::new_without_digest(k)
            .unwrap()
            .sign_oneshot_to_vec(data)
            .unwrap(),
    }
}

/// A token with header `{"alg", "typ": "JWT"}` plus `extra`, and `claims`.
pub fn token_with(alg: &str, key: &SignKey, extra: Value, claims: &Value) -> String {
    let mut header = json!({ "alg": alg, "typ": "JWT" });
    if let (Some(h), Some(e)) = (header.as_object_mut(), extra.as_object()) {
        h.extend(e.clone());
    }
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = signature(alg, key, signed.as_bytes());
    format!("{signed}.{}", b64(&sig))
}

pub fn token(alg: &str, key: &SignKey, claims: &Value) -> String {
    token_with(alg, key, json!({}), claims)
}

//! Verification keys and the signature check itself.
//!
//! A [`Key`] carries its [`KeyType`], and [`Key::verify`] refuses any algorithm whose
//! [`Algorithm::key_type`] is not that type: this is where algorithm confusion (an RSA public
//! key used as an HMAC secret, an `ES256` token checked with a P-384 key) is stopped, whatever
//! the caller selected. HMAC keys are built only from the configured `secret`
//! ([`Key::hmac`]); JWKS `oct` keys are skipped, and no public key ever becomes a secret.
//!
//! Signatures follow RFC 7518: `HS*` is HMAC compared in constant time; `RS*` is RSASSA
//! PKCS#1 v1.5 and `PS*` RSASSA-PSS with MGF1 of the same hash and a salt as long as the
//! hash; `ES*` signatures are the raw `r || s` of the curve's size, turned into DER for
//! OpenSSL; `EdDSA` is Ed25519 (RFC 8037).

use std::fmt;
use std::sync::Arc;

use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use pylon_config::middleware::{key_type_of, Algorithm, Curve, Hash, KeyType};
use serde_json::Value;

/// The most keys taken from one JWKS; the rest are ignored (and logged).
pub const MAX_JWKS_KEYS: usize = 64;

/// The key material: a secret only ever from the config.
enum Material {
    Secret(PKey<Private>),
    Public(PKey<Public>),
}

/// One verification key.
pub struct Key {
    /// `kid`, for keys from a JWKS.
    pub kid: Option<String>,
    /// The JWK's `alg`: when set, the only algorithm this key verifies.
    pub alg: Option<Algorithm>,
    pub kind: KeyType,
    material: Material,
    /// What identifies the key across fetches (kid, alg, DER), to tell a changed set.
    fingerprint: Vec<u8>,
}

impl fmt::Debug for Key {
    // Never the material: a secret must not reach a log through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

fn digest(hash: Hash) -> MessageDigest {
    match hash {
        Hash::Sha256 => MessageDigest::sha256(),
        Hash::Sha384 => MessageDigest::sha384(),
        Hash::Sha512 => MessageDigest::sha512(),
    }
}

impl Key {
    /// The HMAC key of the configured `secret`.
    pub fn hmac(secret: &[u8]) -> Result<Key, String> {
        let key = PKey::hmac(secret).map_err(|e| format!("cannot use the secret: {e}"))?;
        Ok(Key {
            kid: None,
            alg: None,
            kind: KeyType::Hmac,
            material: Material::Secret(key),
            fingerprint: Vec::new(),
        })
    }

    /// A public key; its type is read from the key, never assumed.
    pub fn public(
        kid: Option<String>,
        alg: Option<Algorithm>,
        key: PKey<Public>,
    ) -> Result<Key, String> {
        let kind = key_type_of(&key)?;
        if let Some(a) = alg {
            if a.key_type() != kind {
                return Err(format!("{a} needs {}, but the key is {kind}", a.key_type()));
            }
        }
        let mut fingerprint = Vec::new();
        fingerprint.extend_from_slice(kid.as_deref().unwrap_or("").as_bytes());
        fingerprint.push(0);
        fingerprint.extend_from_slice(alg.map_or("", Algorithm::name).as_bytes());
        fingerprint.push(0);
        fingerprint.extend(key.public_key_to_der().map_err(|e| e.to_string())?);
        Ok(Key {
            kid,
            alg,
            kind,
            material: Material::Public(key),
            fingerprint,
        })
    }

    /// Whether this key may check a token with `alg` and `kid`. A key without a `kid` (a
    /// configured one) fits any `kid`.
    pub fn fits(&self, alg: Algorithm, kid: Option<&str>) -> bool {
        alg.key_type() == self.kind
            && self.alg.is_none_or(|a| a == alg)
            && match (&self.kid, kid) {
                (Some(mine), Some(theirs)) => mine == theirs,
                (Some(_), None) | (None, _) => true,
            }
    }

    pub fn fingerprint(&self) -> &[u8] {
        &self.fingerprint
    }

    /// Whether `signature` is a valid `alg` signature of `signed` by this key. Any
    /// mismatch of algorithm and key type is `false`, before any cryptography.
    pub fn verify(&self, alg: Algorithm, signed: &[u8], signature: &[u8]) -> bool {
        if alg.key_type() != self.kind || self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        // OpenSSL errors (a malformed signature) are a failed check, nothing more.
        match (&self.material, alg.hash()) {
            (Material::Secret(key), Some(hash)) => verify_hmac(key, hash, signed, signature),
            (Material::Public(key), hash) => match self.kind {
                KeyType::Rsa => hash.is_some_and(|h| {
                    verify_rsa(key, h, alg_is_pss(alg), signed, signature).unwrap_or(false)
                }),
                KeyType::Ec(curve) => hash.is_some_and(|h| {
                    verify_ecdsa(key, curve, h, signed, signature).unwrap_or(false)
                }),
                KeyType::Ed25519 => verify_ed25519(key, signed, signature).unwrap_or(false),
                KeyType::Hmac => false,
            },
            (Material::Secret(_), None) => false,
        }
    }
}

fn alg_is_pss(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512)
}

fn verify_hmac(key: &PKey<Private>, hash: Hash, signed: &[u8], signature: &[u8]) -> bool {
    if signature.len() != hash.size() {
        return false;
    }
    let Ok(mut signer) = Signer::new(digest(hash), key) else {
        return false;
    };
    match signer.sign_oneshot_to_vec(signed) {
        // Constant time: how much of a guess matched must not show in the timing.
        Ok(mac) => openssl::memcmp::eq(&mac, signature),
        Err(_) => false,
    }
}

fn verify_rsa(
    key: &PKey<Public>,
    hash: Hash,
    pss: bool,
    signed: &[u8],
    signature: &[u8],
) -> Result<bool, openssl::error::ErrorStack> {
    // RFC 7518 §3.3/3.5: the signature is exactly as long as the modulus.
    if signature.len() != key.size() {
        return Ok(false);
    }
    let md = digest(hash);
    let mut verifier = Verifier::new(md, key)?;
    if pss {
        verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
        verifier.set_rsa_mgf1_md(md)?;
        verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
    } else {
        verifier.set_rsa_padding(Padding::PKCS1)?;
    }
    verifier.verify_oneshot(signature, signed)
}

/// The byte length of a coordinate (and of `r`, `s`) on `curve`.
pub fn curve_len(curve: Curve) -> usize {
    match curve {
        Curve::P256 => 32,
        Curve::P384 => 48,
        Curve::P521 => 66,
    }
}

fn curve_nid(curve: Curve) -> Nid {
    match curve {
        Curve::P256 => Nid::X9_62_PRIME256V1,
        Curve::P384 => Nid::SECP384R1,
        Curve::P521 => Nid::SECP521R1,
    }
}

fn verify_ecdsa(
    key: &PKey<Public>,
    curve: Curve,
    hash: Hash,
    signed: &[u8],
    signature: &[u8],
) -> Result<bool, openssl::error::ErrorStack> {
    // JWS carries `r || s`, each the curve's size (RFC 7518 §3.4); OpenSSL wants DER.
    let n = curve_len(curve);
    if signature.len() != 2 * n {
        return Ok(false);
    }
    let r = BigNum::from_slice(&signature[..n])?;
    let s = BigNum::from_slice(&signature[n..])?;
    let der = EcdsaSig::from_private_components(r, s)?.to_der()?;
    Verifier::new(digest(hash), key)?.verify_oneshot(&der, signed)
}

fn verify_ed25519(
    key: &PKey<Public>,
    signed: &[u8],
    signature: &[u8],
) -> Result<bool, openssl::error::ErrorStack> {
    if signature.len() != 64 {
        return Ok(false);
    }
    Verifier::new_without_digest(key)?.verify_oneshot(signature, signed)
}

/// The usable keys of a JWKS document, and a note for each key skipped.
#[derive(Debug, Default)]
pub struct ParsedJwks {
    pub keys: Vec<Arc<Key>>,
    pub skipped: Vec<String>,
}

/// Reads a JWK Set (RFC 7517). Keys are kept when they can verify one of `allowed`: `use`
/// is `sig` or absent, `key_ops` (when present) has `verify`, a known `alg` (when present)
/// matching the key type. `oct` (symmetric) keys are never taken from a URL.
pub fn parse_jwks(body: &[u8], allowed: &[Algorithm]) -> Result<ParsedJwks, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    let Some(list) = doc.get("keys").and_then(Value::as_array) else {
        return Err("the JWKS has no `keys` array".into());
    };
    let mut out = ParsedJwks::default();
    for (i, jwk) in list.iter().enumerate() {
        if out.keys.len() == MAX_JWKS_KEYS {
            out.skipped.push(format!(
                "keys after the first {MAX_JWKS_KEYS} usable ones are ignored"
            ));
            break;
        }
        let kid = jwk.get("kid").and_then(Value::as_str);
        let name = kid.map_or_else(|| format!("key {i}"), |k| format!("key `{k}`"));
        match parse_jwk(jwk, allowed) {
            Ok(key) => out.keys.push(Arc::new(key)),
            Err(why) => out.skipped.push(format!("{name}: {why}")),
        }
    }
    Ok(out)
}

fn parse_jwk(jwk: &Value, allowed: &[Algorithm]) -> Result<Key, String> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    if let Some(u) = jwk.get("use") {
        if u.as_str() != Some("sig") {
            return Err("not a signature key (`use`)".into());
        }
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verify = ops
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify")));
        if !verify {
            return Err("`key_ops` has no `verify`".into());
        }
    }
    let alg = match jwk.get("alg") {
        None => None,
        Some(a) => {
            let name = a.as_str().unwrap_or("");
            let alg = Algorithm::from_name(name)
                .ok_or_else(|| format!("algorithm {name:?} is not supported"))?;
            Some(alg)
        }
    };
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err("`kid` is not a string".into()),
    };
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        let text = field(name).ok_or_else(|| format!("no `{name}`"))?;
        super::verify::b64(text).ok_or_else(|| format!("`{name}` is not base64url"))
    };
    let key = match field("kty") {
        Some("RSA") => {
            let n = BigNum::from_slice(&bytes("n")?).map_err(|e| e.to_string())?;
            let e = BigNum::from_slice(&bytes("e")?).map_err(|e| e.to_string())?;
            Rsa::from_public_components(n, e)
                .and_then(PKey::from_rsa)
                .map_err(|_| "the RSA key does not parse".to_string())?
        }
        Some("EC") => {
            let curve = match field("crv") {
                Some("P-256") => Curve::P256,
                Some("P-384") => Curve::P384,
                Some("P-521") => Curve::P521,
                other => return Err(format!("curve {other:?} is not supported")),
            };
            let (x, y) = (bytes("x")?, bytes("y")?);
            let n = curve_len(curve);
            if x.len() != n || y.len() != n {
                return Err(format!("coordinates of {n} bytes expected"));
            }
            ec_public_key(curve, &x, &y).map_err(|_| "the EC key is not on its curve")?
        }
        Some("OKP") => {
            if field("crv") != Some("Ed25519") {
                return Err(format!("OKP curve {:?} is not supported", field("crv")));
            }
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err("an Ed25519 key has 32 bytes".into());
            }
            PKey::public_key_from_raw_bytes(&x, Id::ED25519)
                .map_err(|_| "the Ed25519 key does not parse")?
        }
        Some("oct") => return Err("symmetric (`oct`) keys are never taken from a URL".into()),
        other => return Err(format!("key type {other:?} is not supported")),
    };
    let key = Key::public(kid, alg, key)?;
    if !allowed.iter().any(|a| key.fits(*a, None)) {
        return Err("no algorithm in `algorithms` uses it".into());
    }
    Ok(key)
}

fn ec_public_key(
    curve: Curve,
    x: &[u8],
    y: &[u8],
) -> Result<PKey<Public>, openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(curve_nid(curve))?;
    let x = BigNum::from_slice(x)?;
    let y = BigNum::from_slice(y)?;
    let key = EcKey::from_public_key_affine_coordinates(&group, &x, &y)?;
    // On the curve and not the point at infinity: an invalid point must never verify.
    key.check_key()?;
    PKey::from_ec_key(key)
}

//! What the `jwt` middleware's keys are: the signature algorithms, the key type each one
//! needs, public keys read from PEM, and the JWKS URL. The runtime builds its keys with these
//! same functions, so what `pylon check` accepts is exactly what `run` serves with.
//!
//! The one rule against algorithm confusion starts here: every key has a [`KeyType`], and a
//! token's `alg` may only be verified with a key of the type [`Algorithm::key_type`] names.
//! An HMAC key is only ever the configured `secret`; public key material never becomes one.

use std::fmt;
use std::net::IpAddr;

use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Smallest RSA modulus accepted, in bits (NIST SP 800-131A; RFC 7518 §3.3 asks for 2048).
pub const MIN_RSA_BITS: u32 = 2048;

/// A JWS signature algorithm (RFC 7518, RFC 8037). `none` is not one: unsigned tokens are
/// never accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

/// The elliptic curves of the `ES*` algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
}

/// What kind of key verifies an algorithm. A token is only ever checked with a key of the
/// type its `alg` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// A shared secret (`HS*`): only the configured `secret`.
    Hmac,
    /// An RSA public key (`RS*`, `PS*`), at least [`MIN_RSA_BITS`].
    Rsa,
    /// An EC public key on this curve (`ES256` P-256, `ES384` P-384, `ES512` P-521).
    Ec(Curve),
    /// An Ed25519 public key (`EdDSA`).
    Ed25519,
}

/// The hash an algorithm signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// The digest size in bytes.
    pub fn size(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

impl Algorithm {
    pub const ALL: [Algorithm; 13] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
    ];

    /// The `alg` value, as in tokens (case matters).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// The algorithm a token's `alg` names, compared exactly (JWS names are case-sensitive).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The only key type that may verify this algorithm.
    pub fn key_type(self) -> KeyType {
        use Algorithm::*;
        match self {
            HS256 | HS384 | HS512 => KeyType::Hmac,
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => KeyType::Rsa,
            ES256 => KeyType::Ec(Curve::P256),
            ES384 => KeyType::Ec(Curve::P384),
            ES512 => KeyType::Ec(Curve::P521),
            EdDSA => KeyType::Ed25519,
        }
    }

    /// The hash signed; `None` for EdDSA, which hashes internally.
    pub fn hash(self) -> Option<Hash> {
        use Algorithm::*;
        match self {
            HS256 | RS256 | PS256 | ES256 => Some(Hash::Sha256),
            HS384 | RS384 | PS384 | ES384 => Some(Hash::Sha384),
            HS512 | RS512 | PS512 | ES512 => Some(Hash::Sha512),
            EdDSA => None,
        }
    }

    /// Whether the algorithm uses a shared secret (`HS*`).
    pub fn is_hmac(self) -> bool {
        self.key_type() == KeyType::Hmac
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Hmac => "a shared secret",
            KeyType::Rsa => "an RSA key",
            KeyType::Ec(Curve::P256) => "an EC P-256 key",
            KeyType::Ec(Curve::P384) => "an EC P-384 key",
            KeyType::Ec(Curve::P521) => "an EC P-521 key",
            KeyType::Ed25519 => "an Ed25519 key",
        })
    }
}

/// The list of algorithms, for messages.
fn all_names() -> String {
    Algorithm::ALL.map(Algorithm::name).join(", ")
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Algorithm;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an algorithm: {}", all_names())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Algorithm, E> {
                if let Some(alg) = Algorithm::from_name(v) {
                    return Ok(alg);
                }
                if v.eq_ignore_ascii_case("none") {
                    return Err(E::custom(
                        "`none` is never accepted: an unsigned token would let anyone in",
                    ));
                }
                Err(
                    match Algorithm::ALL
                        .into_iter()
                        .find(|a| a.name().eq_ignore_ascii_case(v))
                    {
                        Some(a) => E::custom(format_args!(
                        "unknown algorithm {v:?}, did you mean `{a}`? (names are case-sensitive)"
                    )),
                        None => E::custom(format_args!(
                            "unknown algorithm {v:?}: use one of {}",
                            all_names()
                        )),
                    },
                )
            }
        }
        d.deserialize_str(V)
    }
}

impl JsonSchema for Algorithm {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "JwtAlgorithm".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        json_schema!({
            "description": "A JWS algorithm (`none` is never accepted).",
            "type": "string",
            "enum": names
        })
    }
}

/// Reads a public key from PEM: a `PUBLIC KEY` (SubjectPublicKeyInfo), an `RSA PUBLIC KEY`
/// (PKCS#1) or a `CERTIFICATE` (its key; the certificate itself is not checked). Refuses
/// private keys (give the public half), RSA keys under [`MIN_RSA_BITS`] and key types no
/// algorithm uses.
pub fn parse_public_key(pem: &[u8]) -> Result<(PKey<Public>, KeyType), String> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("PRIVATE KEY-----") {
        return Err(
            "this PEM holds a private key: give the public key (`openssl pkey -pubout`)".into(),
        );
    }
    let key = if text.contains("-----BEGIN CERTIFICATE-----") {
        X509::from_pem(pem)
            .and_then(|cert| cert.public_key())
            .map_err(|_| "the PEM certificate does not parse".to_string())?
    } else if text.contains("-----BEGIN RSA PUBLIC KEY-----") {
        Rsa::public_key_from_pem_pkcs1(pem)
            .and_then(PKey::from_rsa)
            .map_err(|_| "the PEM RSA public key does not parse".to_string())?
    } else if text.contains("-----BEGIN PUBLIC KEY-----") {
        PKey::public_key_from_pem(pem)
            .map_err(|_| "the PEM public key does not parse".to_string())?
    } else {
        return Err(
            "not a PEM public key: expected -----BEGIN PUBLIC KEY----- (or RSA PUBLIC KEY, or CERTIFICATE)"
                .into(),
        );
    };
    let kind = key_type_of(&key)?;
    Ok((key, kind))
}

/// The type of a public key, refusing the ones no algorithm uses and short RSA keys.
pub fn key_type_of(key: &PKey<Public>) -> Result<KeyType, String> {
    match key.id() {
        Id::RSA => {
            if key.bits() < MIN_RSA_BITS {
                return Err(format!(
                    "the RSA key has {} bits; at least {MIN_RSA_BITS} are required",
                    key.bits()
                ));
            }
            // A public exponent of 1 (or an even one) makes "signatures" anyone can forge.
            let rsa = key.rsa().map_err(|_| "the RSA key does not parse")?;
            let e = rsa.e();
            if e.num_bits() < 2 || !e.is_bit_set(0) {
                return Err("the RSA key's public exponent is not an odd number above 1".into());
            }
            Ok(KeyType::Rsa)
        }
        Id::EC => {
            let ec = key.ec_key().map_err(|_| "the EC key does not parse")?;
            match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) => Ok(KeyType::Ec(Curve::P256)),
                Some(Nid::SECP384R1) => Ok(KeyType::Ec(Curve::P384)),
                Some(Nid::SECP521R1) => Ok(KeyType::Ec(Curve::P521)),
                _ => Err(
                    "the EC key is on a curve no algorithm uses (P-256, P-384 and P-521 are)"
                        .into(),
                ),
            }
        }
        Id::ED25519 => Ok(KeyType::Ed25519),
        _ => {
            Err("unsupported key type: use an RSA, EC (P-256, P-384, P-521) or Ed25519 key".into())
        }
    }
}

/// Where the JWKS is fetched from, parsed. Plain `http` is allowed for loopback hosts only:
/// keys fetched in the clear from elsewhere could be swapped on the way, and whoever swaps
/// them signs tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksUrl {
    /// `https`.
    pub tls: bool,
    /// The host, without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl JwksUrl {
    pub fn parse(text: &str) -> Result<JwksUrl, String> {
        let bad = |why: &str| Err(format!("invalid jwks_url {text:?}: {why}"));
        let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return bad("use an https:// URL (http:// only for loopback)");
        };
        if text.contains('#') {
            return bad("a URL to fetch has no #fragment");
        }
        if text.bytes().any(|b| b <= b' ' || b == 0x7f || b >= 0x80) {
            return bad("spaces and non-ASCII characters must be percent-encoded");
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return bad("credentials in the URL are not supported");
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return bad("unclosed `[`");
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return bad("not an IPv6 address between `[` and `]`");
            }
            (host, after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let valid_host = !host.is_empty()
            && (host.contains(':')
                || host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
        if !valid_host {
            return bad("no valid host");
        }
        let port = match port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return bad("the port is not a number from 1 to 65535"),
            },
        };
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        let url = JwksUrl {
            tls,
            host: host.to_ascii_lowercase(),
            port,
            path,
        };
        if tls && url.host.parse::<IpAddr>().is_ok() {
            return bad("use a host name with https://: the certificate is checked against it");
        }
        if !tls && !url.is_loopback() {
            return bad(
                "http:// is allowed for loopback hosts only (localhost, 127.0.0.0/8, ::1); keys fetched in the clear could be replaced on the way: use https://",
            );
        }
        Ok(url)
    }

    /// Whether the host is `localhost` or a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self.host.ends_with(".localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The `Host` header: the host, bracketed when IPv6, with the port unless it is the
    /// scheme's default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for JwksUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use openssl::ec::{EcGroup, EcKey};

    #[test]
    fn algorithms_bind_to_one_key_type() {
        assert_eq!(Algorithm::HS256.key_type(), KeyType::Hmac);
        assert_eq!(Algorithm::PS384.key_type(), KeyType::Rsa);
        assert_eq!(Algorithm::ES384.key_type(), KeyType::Ec(Curve::P384));
        assert_eq!(Algorithm::EdDSA.key_type(), KeyType::Ed25519);
        assert_eq!(Algorithm::from_name("RS256"), Some(Algorithm::RS256));
        assert_eq!(Algorithm::from_name("rs256"), None);
        assert_eq!(Algorithm::from_name("none"), None);
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
        }
    }

    #[test]
    fn public_keys_from_pem() {
        let rsa = Rsa::generate(2048).unwrap();
        let pem = rsa.public_key_to_pem().unwrap();
        assert_eq!(parse_public_key(&pem).unwrap().1, KeyType::Rsa);
        let pkcs1 = rsa.public_key_to_pem_pkcs1().unwrap();
        assert_eq!(parse_public_key(&pkcs1).unwrap().1, KeyType::Rsa);
        let private = rsa.private_key_to_pem().unwrap();
        assert!(parse_public_key(&private)
            .unwrap_err()
            .contains("private key"));
        let e1 = Rsa::from_public_components(
            rsa.n().to_owned().unwrap(),
            openssl::bn::BigNum::from_u32(1).unwrap(),
        )
        .unwrap();
        let e1 = PKey::from_rsa(e1).unwrap().public_key_to_pem().unwrap();
        assert!(parse_public_key(&e1).unwrap_err().contains("exponent"));
        let short = Rsa::generate(1024).unwrap().public_key_to_pem().unwrap();
        assert!(parse_public_key(&short).unwrap_err().contains("1024 bits"));

        let group = EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
        let ec = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let pem = ec.public_key_to_pem().unwrap();
        assert_eq!(parse_public_key(&pem).unwrap().1, KeyType::Ec(Curve::P384));
        let group = EcGroup::from_curve_name(Nid::SECP256K1).unwrap();
        let k1 = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        assert!(parse_public_key(&k1.public_key_to_pem().unwrap())
            .unwrap_err()
            .contains("curve"));

        let ed = PKey::generate_ed25519().unwrap();
        let pem = ed.public_key_to_pem().unwrap();
        assert_eq!(parse_public_key(&pem).unwrap().1, KeyType::Ed25519);

        assert!(parse_public_key(b"hello")
            .unwrap_err()
            .contains("not a PEM"));
        let garbage = b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert!(parse_public_key(garbage)
            .unwrap_err()
            .contains("does not parse"));
    }

    #[test]
    fn jwks_urls() {
        let u = JwksUrl::parse("https://idp.example/.well-known/jwks.json").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "idp.example", 443, "/.well-known/jwks.json")
        );
        assert_eq!(u.authority(), "idp.example");
        let u = JwksUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.port, u.path.as_str()), (8080, "/"));
        assert_eq!(u.authority(), "127.0.0.1:8080");
        let u = JwksUrl::parse("http://[::1]:9/k?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.path.as_str()), ("::1", "/k?x=1"));
        assert_eq!(u.to_string(), "http://[::1]:9/k?x=1");
        assert!(JwksUrl::parse("http://localhost/jwks").is_ok());
        for (bad, why) in [
            ("http://idp.example/jwks", "loopback"),
            ("ftp://idp.example/jwks", "https://"),
            ("https:///jwks", "host"),
            ("https://u:p@idp.example/", "credentials"),
            ("https://idp.example:0/", "port"),
            ("https://idp.example:99999/", "port"),
            ("https://idp.example/a b", "percent-encoded"),
            ("https://idp.example/#x", "fragment"),
            ("https://[::1/", "unclosed"),
            ("https://10.0.0.1/jwks", "host name"),
        ] {
            let e = JwksUrl::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}

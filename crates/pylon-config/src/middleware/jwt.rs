//! The `jwt` middleware's settings and their checks. Everything that can be known offline is
//! checked at load, with the spot it is about: algorithms, the secret, public keys (read and
//! parsed, and matched against the algorithms), the JWKS URL, header names. The JWKS itself is
//! fetched only by `run`, never by `pylon check`.

mod keys;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::headers::check_header_name;
use crate::duration::DurationSchema;
use crate::error::ConfigError;
use crate::validate::{is_tchar, Spot};

pub use keys::{
    key_type_of, parse_public_key, Algorithm, Curve, Hash, JwksUrl, KeyType, MIN_RSA_BITS,
};

/// Default `jwks_refresh`: how often the JWKS is fetched again.
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);
/// Default `jwks_cooldown`: the least time between two fetches that tokens (an unknown
/// `kid`) or failures trigger.
pub const DEFAULT_JWKS_COOLDOWN: Duration = Duration::from_secs(10);
/// Default `leeway` on `exp`, `nbf` and `iat`, for clocks that disagree a little.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Default `cache_size`: verified tokens kept.
const DEFAULT_CACHE_SIZE: usize = 10_000;
/// Default `cache_ttl`: how long a verified token is kept at most.
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// Default `realm` of `WWW-Authenticate`.
const DEFAULT_REALM: &str = "pylon";
/// Default `consumer_claim`.
pub const DEFAULT_CONSUMER_CLAIM: &str = "sub";
/// The least `jwks_refresh` and `jwks_cooldown`: an IdP is not to be hammered.
pub const MIN_JWKS_INTERVAL: Duration = Duration::from_secs(1);

/// Request headers a claim may not be forwarded as: they frame the message or belong to
/// the connection, and a claim must never change how the request is read.
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "expect",
];

/// JSON Web Tokens: signature, time and audience checks, claims forwarded as headers.
///
/// The token is read from the first source of `token_from` that has one (default:
/// `Authorization: Bearer`). Its `alg` must be listed in `algorithms` and is verified only
/// with a key of that algorithm's type: `HS*` with `secret`; `RS*`/`PS*`/`ES*`/`EdDSA` with
/// `public_key`, `public_key_file` or the keys of `jwks_url`. Failures get 401 with
/// `WWW-Authenticate: Bearer` (RFC 6750); a valid token lacking a `required_claims` claim
/// gets 403.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Jwt {
    /// The `alg` values accepted: HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384,
    /// PS512, ES256, ES384, ES512, EdDSA (Ed25519). Required.
    #[serde(default)]
    pub algorithms: Vec<Algorithm>,
    /// The shared secret of `HS*` tokens, as bytes of the text (use `${VAR}`). At least as
    /// long as the hash: 32 bytes for HS256, 48 for HS384, 64 for HS512 (RFC 7518 §3.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// A public key in PEM (`PUBLIC KEY`, `RSA PUBLIC KEY` or a `CERTIFICATE`), for the
    /// `RS*`/`PS*`/`ES*`/`EdDSA` algorithms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// A file holding the PEM public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_file: Option<PathBuf>,
    /// An `https://` URL of a JSON Web Key Set (`http://` for loopback only), fetched at start
    /// and every `jwks_refresh`; a token naming an unknown `kid` makes Pylon fetch it again
    /// (at most once per `jwks_cooldown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// How often the JWKS is fetched again. Default: 5m.
    #[serde(default = "default_jwks_refresh", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub jwks_refresh: Duration,
    /// The least time between two fetches triggered by unknown `kid`s or by failures.
    /// Default: 10s.
    #[serde(default = "default_jwks_cooldown", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub jwks_cooldown: Duration,
    /// Accepted `iss` values (one or a list); the claim is required when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<StringList>,
    /// Accepted `aud` values (one or a list): the token's `aud` must name one. When not
    /// set, tokens carrying an `aud` are refused (RFC 7519 §4.1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<StringList>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`. Default: 60s.
    #[serde(default = "default_leeway", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub leeway: Duration,
    /// Refuse tokens without `exp`. Default: true.
    #[serde(default = "yes")]
    pub require_exp: bool,
    /// Claims a token must carry (not null); a valid token without one gets 403.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_claims: Vec<String>,
    /// Claims sent upstream as request headers (`{ sub: X-User }`): strings as they are,
    /// numbers and booleans as JSON writes them, arrays joined with `,`, objects as JSON. The
    /// named headers are always removed from the client's request first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims_to_headers: BTreeMap<String, String>,
    /// The claim that names the consumer (for `rate_limit` by consumer, and logs).
    /// Default: `sub`.
    #[serde(default = "default_consumer_claim")]
    pub consumer_claim: String,
    /// Where the token is looked for, in order; the first source that has one is used.
    /// Default: `[bearer]` (`Authorization: Bearer …`).
    #[serde(default = "default_token_from")]
    pub token_from: Vec<TokenSource>,
    /// Send the token upstream where the client put it. Default: false (it is removed;
    /// the upstream gets the claims it needs as headers). A token in the query is always
    /// removed, so it never reaches logs.
    #[serde(default)]
    pub forward_token: bool,
    /// The `realm` of `WWW-Authenticate`. Default: `pylon`.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Verified tokens remembered, so a repeated token skips the signature check; 0 turns the
    /// cache off. Default: 10000.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
    /// How long a verified token is remembered at most (never past its `exp`). Default: 1m.
    #[serde(default = "default_cache_ttl", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub cache_ttl: Duration,
}

impl Default for Jwt {
    fn default() -> Self {
        Jwt {
            algorithms: Vec::new(),
            secret: None,
            public_key: None,
            public_key_file: None,
            jwks_url: None,
            jwks_refresh: DEFAULT_JWKS_REFRESH,
            jwks_cooldown: DEFAULT_JWKS_COOLDOWN,
            issuer: None,
            audience: None,
            leeway: DEFAULT_LEEWAY,
            require_exp: true,
            required_claims: Vec::new(),
            claims_to_headers: BTreeMap::new(),
            consumer_claim: default_consumer_claim(),
            token_from: default_token_from(),
            forward_token: false,
            realm: default_realm(),
            cache_size: DEFAULT_CACHE_SIZE,
            cache_ttl: DEFAULT_CACHE_TTL,
        }
    }
}

fn default_jwks_refresh() -> Duration {
    DEFAULT_JWKS_REFRESH
}
fn default_jwks_cooldown() -> Duration {
    DEFAULT_JWKS_COOLDOWN
}
fn default_leeway() -> Duration {
    DEFAULT_LEEWAY
}
fn default_cache_ttl() -> Duration {
    DEFAULT_CACHE_TTL
}
fn default_cache_size() -> usize {
    DEFAULT_CACHE_SIZE
}
fn default_realm() -> String {
    DEFAULT_REALM.to_string()
}
fn default_consumer_claim() -> String {
    DEFAULT_CONSUMER_CLAIM.to_string()
}
fn default_token_from() -> Vec<TokenSource> {
    vec![TokenSource::Bearer]
}
fn yes() -> bool {
    true
}

/// Where a token may be.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenSource {
    /// `Authorization: Bearer TOKEN`.
    Bearer,
    /// The cookie of this name.
    Cookie(String),
    /// The query parameter of this name (removed before anything else sees the request).
    Query(String),
}

/// One string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringList(pub Vec<String>);

impl Serialize for StringList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    out.push(item);
                }
                Ok(StringList(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for StringList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StringList".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "One string, or a list of strings.",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" }, "minItems": 1 }
            ]
        })
    }
}

/// Why `text` cannot be written inside a quoted `WWW-Authenticate` parameter, if it cannot.
fn quoted_problem(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        Some("must not be empty")
    } else if !text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        Some("use printable ASCII without `\"` or `\\`")
    } else {
        None
    }
}

impl Jwt {
    /// Whether any configured algorithm needs a public key.
    pub fn needs_public_keys(&self) -> bool {
        self.algorithms.iter().any(|a| !a.is_hmac())
    }

    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        self.validate_algorithms(spot, errors);
        self.validate_claims(spot, errors);
        self.validate_sources(spot, errors);
        if let Some(problem) = quoted_problem(&self.realm) {
            errors.push(spot.key("realm").error(format!("invalid realm: {problem}")));
        }
        for key in ["jwks_refresh", "jwks_cooldown"] {
            let value = if key == "jwks_refresh" {
                self.jwks_refresh
            } else {
                self.jwks_cooldown
            };
            if value < MIN_JWKS_INTERVAL {
                errors.push(spot.key(key).error(format!("{key} must be at least 1s")));
            }
        }
    }

    /// Algorithms, and the keys each one needs: present, readable, parsed, of its type.
    fn validate_algorithms(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        let algs = spot.key("algorithms");
        if self.algorithms.is_empty() {
            errors.push(algs.error(
                "list the accepted algorithms, e.g. `algorithms: [RS256]` (HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512, EdDSA)",
            ));
        }
        let hmac: Vec<(usize, Algorithm)> = self
            .algorithms
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, a)| a.is_hmac())
            .collect();
        match (&self.secret, hmac.is_empty()) {
            (None, false) => {
                for (i, a) in &hmac {
                    errors.push(algs.item(*i).error(format!("{a} needs `secret`")));
                }
            }
            (Some(_), true) => errors.push(spot.key_error(
                "secret",
                "`secret` is only used by HS256, HS384 and HS512: list one in `algorithms` or remove it",
            )),
            (Some(secret), false) => {
                for (_, a) in &hmac {
                    let need = a.hash().map_or(0, |h| h.size());
                    if secret.len() < need {
                        // The length only: the secret itself never goes into a message.
                        errors.push(spot.key("secret").error(format!(
                            "{a} needs a secret of at least {need} bytes (RFC 7518 §3.2); this one has {}",
                            secret.len()
                        )));
                        break;
                    }
                }
            }
            (None, true) => {}
        }

        let sources: Vec<&str> = [
            self.public_key.as_ref().map(|_| "public_key"),
            self.public_key_file.as_ref().map(|_| "public_key_file"),
            self.jwks_url.as_ref().map(|_| "jwks_url"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if sources.len() > 1 {
            errors.push(spot.key_error(
                sources[1],
                format!(
                    "write one of `public_key`, `public_key_file` or `jwks_url`, not {}",
                    sources.join(" and ")
                ),
            ));
        }
        let asymmetric = || {
            self.algorithms
                .iter()
                .enumerate()
                .filter(|(_, a)| !a.is_hmac())
        };
        if !self.needs_public_keys() {
            if let Some(first) = sources.first() {
                errors.push(spot.key_error(
                    first,
                    format!("`{first}` is only used by RS*, PS*, ES* and EdDSA: list one in `algorithms` or remove it"),
                ));
            }
        } else if sources.is_empty() {
            for (i, a) in asymmetric() {
                errors.push(algs.item(i).error(format!(
                    "{a} needs a public key: set `public_key`, `public_key_file` or `jwks_url`"
                )));
            }
        }

        // A fixed key: read it now and check it fits every asymmetric algorithm listed.
        let pem = match (&self.public_key, &self.public_key_file) {
            (Some(text), _) => Some(("public_key", Ok(text.as_bytes().to_vec()))),
            (None, Some(path)) => Some((
                "public_key_file",
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display())),
            )),
            (None, None) => None,
        };
        if let Some((key, bytes)) = pem {
            let key_spot = spot.key(key);
            match bytes.and_then(|b| parse_public_key(&b).map(|(_, t)| t)) {
                Err(e) => errors.push(key_spot.error(e)),
                Ok(kind) => {
                    for (i, a) in asymmetric() {
                        if a.key_type() != kind {
                            errors.push(algs.item(i).error(format!(
                                "{a} needs {}, but `{key}` is {kind}",
                                a.key_type()
                            )));
                        }
                    }
                }
            }
        }
        if let Some(url) = &self.jwks_url {
            if let Err(e) = JwksUrl::parse(url) {
                errors.push(spot.key("jwks_url").error(e));
            }
        }
    }

    fn validate_claims(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        for (key, list) in [("issuer", &self.issuer), ("audience", &self.audience)] {
            let Some(list) = list else { continue };
            if list.0.is_empty() {
                errors.push(
                    spot.key(key)
                        .error(format!("list at least one {key}, or leave `{key}` out")),
                );
            }
            for (i, v) in list.0.iter().enumerate() {
                if v.is_empty() {
                    errors.push(spot.key(key).item(i).error(format!("an empty {key}")));
                }
            }
        }
        let required = spot.key("required_claims");
        for (i, claim) in self.required_claims.iter().enumerate() {
            if claim.is_empty() {
                errors.push(required.item(i).error("an empty claim name"));
            }
        }
        if self.consumer_claim.is_empty() {
            errors.push(spot.key("consumer_claim").error("an empty claim name"));
        }
        let map = spot.key("claims_to_headers");
        let mut seen = HashSet::new();
        for (claim, header) in &self.claims_to_headers {
            let entry = map.key(claim);
            if claim.is_empty() {
                errors.push(map.key_error(claim, "an empty claim name"));
            }
            check_header_name(&entry, header, errors);
            let lower = header.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                errors.push(entry.error(format!(
                    "`{header}` cannot carry a claim: it frames the request or belongs to the connection"
                )));
            }
            if !seen.insert(lower) {
                errors.push(entry.error(format!(
                    "header `{header}` is already given to another claim"
                )));
            }
        }
    }

    fn validate_sources(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        let list = spot.key("token_from");
        if self.token_from.is_empty() {
            errors.push(list.error(
                "list at least one source: `bearer`, `{ cookie: NAME }` or `{ query: NAME }`",
            ));
        }
        let mut seen = HashSet::new();
        for (i, source) in self.token_from.iter().enumerate() {
            let item = list.item(i);
            let (kind, name) = match source {
                TokenSource::Bearer => ("bearer", ""),
                TokenSource::Cookie(n) => ("cookie", n.as_str()),
                TokenSource::Query(n) => ("query", n.as_str()),
            };
            if kind != "bearer" && (name.is_empty() || !name.bytes().all(is_tchar)) {
                errors.push(item.key(kind).error(format!(
                    "invalid {kind} name {name:?}: use letters, digits and !#$%&'*+-.^_`|~"
                )));
            }
            if !seen.insert((kind, name)) {
                errors.push(item.error("this source is already listed"));
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! Checking one token: the JWS compact form (RFC 7515), the signature with a key of the
//! type its `alg` needs, then the claims (RFC 7519): `exp`, `nbf`, `iat` with leeway,
//! `iss`, `aud`, required claims. The payload is read only once the signature holds.
//!
//! What a verified token yields (the headers to send upstream, the consumer) is computed
//! once and kept in the [`TokenCache`]; a cached token still has its times checked against
//! the clock on every use.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderName, HeaderValue};
use pylon_config::middleware::{parse_public_key, Algorithm, JwksUrl, Jwt as Config};
use serde_json::{Map, Value};

use super::cache::{CachedToken, TokenCache};
use super::jwks::Jwks;
use super::keys::Key;

/// Longest token considered (bytes); longer ones are refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Decodes base64url without padding, strictly (no stray bits, no other alphabet).
pub fn b64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Seconds since the Unix epoch, as JWT `NumericDate`s count.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Why a token is refused; each maps to one response (see the middleware).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No token at all: 401 without an error code (RFC 6750 §3.1).
    Missing,
    /// The request carries a token twice in one place: 400 `invalid_request`.
    BadRequest(&'static str),
    /// 401 `invalid_token`.
    Invalid(Cow<'static, str>),
    /// No key can check this token (unknown `kid`, or no keys yet): 401 `invalid_token`,
    /// after one fetch of the JWKS where the cooldown allows.
    NoKey,
    /// A valid token without a required claim: 403 `insufficient_scope`.
    Insufficient(String),
}

fn invalid(why: &'static str) -> Failure {
    Failure::Invalid(Cow::Borrowed(why))
}

/// What a verified token gives the request.
#[derive(Debug)]
pub struct Verified {
    /// Claims to send upstream, as headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The consumer claim's value.
    pub consumer: Option<Arc<str>>,
    times: Times,
}

/// The time claims, kept to check a cached token against the clock again.
#[derive(Debug, Clone, Copy, Default)]
struct Times {
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
}

/// A `jwt` middleware's checks, compiled.
#[derive(Debug)]
pub struct Verifier {
    algorithms: Vec<Algorithm>,
    /// The configured `secret` and public key (no `kid`).
    fixed_keys: Vec<Arc<Key>>,
    jwks: Option<Arc<Jwks>>,
    issuer: Vec<String>,
    audience: Vec<String>,
    leeway: f64,
    require_exp: bool,
    required_claims: Vec<String>,
    claims_to_headers: Vec<(String, HeaderName)>,
    consumer_claim: String,
    cache: Option<TokenCache>,
    cache_ttl: f64,
}

impl Verifier {
    /// Builds the checks and keys of `def` (reading a `public_key_file` now). A JWKS is
    /// not fetched here: that is for the refresher once Pylon runs, so `pylon check` stays
    /// offline.
    pub fn new(def: &Config) -> Result<Verifier, String> {
        let mut fixed_keys = Vec::new();
        if let Some(secret) = &def.secret {
            fixed_keys.push(Arc::new(Key::hmac(secret.as_bytes())?));
        }
        let pem = match (&def.public_key, &def.public_key_file) {
            (Some(text), _) => Some(text.as_bytes().to_vec()),
            (None, Some(path)) => Some(
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            ),
            (None, None) => None,
        };
        if let Some(pem) = pem {
            let (key, _) = parse_public_key(&pem)?;
            fixed_keys.push(Arc::new(Key::public(None, None, key)?));
        }
        let jwks = match &def.jwks_url {
            Some(url) => Some(Jwks::new(
                JwksUrl::parse(url)?,
                def.algorithms.clone(),
                def.jwks_refresh,
                def.jwks_cooldown,
            )),
            None => None,
        };
        let claims_to_headers = def
            .claims_to_headers
            .iter()
            .map(|(claim, header)| {
                HeaderName::from_bytes(header.as_bytes())
                    .map(|h| (claim.clone(), h))
                    .map_err(|_| format!("invalid header name {header:?}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Verifier {
            algorithms: def.algorithms.clone(),
            fixed_keys,
            jwks,
            issuer: def.issuer.as_ref().map(|l| l.0.clone()).unwrap_or_default(),
            audience: def
                .audience
                .as_ref()
                .map(|l| l.0.clone())
                .unwrap_or_default(),
            leeway: def.leeway.as_secs_f64(),
            require_exp: def.require_exp,
            required_claims: def.required_claims.clone(),
            claims_to_headers,
            consumer_claim: def.consumer_claim.clone(),
            cache: (def.cache_size > 0).then(|| TokenCache::new(def.cache_size)),
            cache_ttl: def.cache_ttl.as_secs_f64(),
        })
    }

    /// The headers a verified token may set, to remove from the client's request first.
    pub fn claim_header_names(&self) -> impl Iterator<Item = &HeaderName> {
        self.claims_to_headers.iter().map(|(_, h)| h)
    }

    /// Checks `token`; when no key fits and the keys come from a JWKS, fetches it again
    /// (at most once per cooldown, shared by concurrent requests) and checks once more.
    pub async fn verify(&self, token: &str) -> Result<Arc<Verified>, Failure> {
        // The key set the check is about to use: a fetch that lands after this counts as
        // news, even if it finished before `refetch` looks.
        let seen = self.jwks.as_ref().map_or(0, |j| j.keys().generation);
        match self.check(token, unix_now()) {
            Err(Failure::NoKey) => match &self.jwks {
                Some(jwks) if jwks.refetch(seen).await => self.check(token, unix_now()),
                _ => Err(Failure::NoKey),
            },
            other => other,
        }
    }

    /// Checks `token` at time `now` (Unix seconds) with the keys held now: the cache first,
    /// then the full check.
    pub fn check(&self, token: &str, now: f64) -> Result<Arc<Verified>, Failure> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid("token too long"));
        }
        let keys = self.jwks.as_ref().map(|j| j.keys());
        let generation = keys.as_ref().map_or(0, |k| k.generation);
        let Some(cache) = &self.cache else {
            return self
                .check_uncached(token, keys.as_deref(), now)
                .map(Arc::new);
        };
        // Keyed by the token's SHA-256, never the token: the cache holds no credential.
        let hash = openssl::sha::sha256(token.as_bytes());
        if let Some(hit) = cache.get(&hash, generation, now) {
            // Times move on while the entry sits in the cache.
            self.check_times(hit.times, now)?;
            return Ok(hit);
        }
        let verified = Arc::new(self.check_uncached(token, keys.as_deref(), now)?);
        {
            // Never past `exp` (nor the TTL); the clock is checked on each hit anyway.
            let until = verified
                .times
                .exp
                .map_or(now + self.cache_ttl, |exp| exp.min(now + self.cache_ttl));
            if until > now {
                cache.insert(
                    hash,
                    CachedToken {
                        verified: verified.clone(),
                        until,
                        generation,
                    },
                );
            }
        }
        Ok(verified)
    }

    fn check_uncached(
        &self,
        token: &str,
        jwks_keys: Option<&super::jwks::KeySet>,
        now: f64,
    ) -> Result<Verified, Failure> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(if token.split('.').count() == 5 {
                "encrypted tokens (JWE) are not supported"
            } else {
                "malformed token"
            }));
        };
        let header = b64(header_b64)
            .and_then(|h| serde_json::from_slice::<Map<String, Value>>(&h).ok())
            .ok_or(invalid("malformed token header"))?;
        // RFC 7515 §4.1.11: extensions marked critical must be understood; none are.
        if header.contains_key("crit") {
            return Err(invalid("unsupported critical header parameter"));
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Algorithm::from_name)
            .filter(|a| self.algorithms.contains(a))
            .ok_or(invalid("token algorithm not allowed"))?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(invalid("malformed token header")),
        };
        let signature = b64(sig_b64).ok_or(invalid("malformed token signature"))?;
        // The signed bytes are the token's own text up to the last dot.
        let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
        let mut candidates = self
            .fixed_keys
            .iter()
            .chain(jwks_keys.into_iter().flat_map(|k| k.keys.iter()))
            .filter(|k| k.fits(alg, kid))
            .peekable();
        if candidates.peek().is_none() {
            return Err(Failure::NoKey);
        }
        if !candidates.any(|k| k.verify(alg, signed, &signature)) {
            return Err(invalid("invalid signature"));
        }

        let claims = b64(payload_b64)
            .and_then(|p| serde_json::from_slice::<Map<String, Value>>(&p).ok())
            .ok_or(invalid("malformed token payload"))?;
        let times = Times {
            exp: numeric_date(&claims, "exp")?,
            nbf: numeric_date(&claims, "nbf")?,
            iat: numeric_date(&claims, "iat")?,
        };
        self.check_times(times, now)?;
        if !self.issuer.is_empty() {
            let ok = claims
                .get("iss")
                .and_then(Value::as_str)
                .is_some_and(|iss| self.issuer.iter().any(|i| i == iss));
            if !ok {
                return Err(invalid("wrong issuer"));
            }
        }
        self.check_audience(claims.get("aud"))?;
        for name in &self.required_claims {
            if claims.get(name).is_none_or(Value::is_null) {
                return Err(Failure::Insufficient(format!(
                    "token lacks the required claim `{name}`"
                )));
            }
        }
        let mut headers = Vec::with_capacity(self.claims_to_headers.len());
        for (claim, header) in &self.claims_to_headers {
            let Some(text) = claims.get(claim).and_then(header_text) else {
                continue;
            };
            // Control characters cannot go in a header: refuse rather than send the
            // request on without a claim the upstream may rely on.
            let value = HeaderValue::from_str(&text).map_err(|_| {
                Failure::Invalid(Cow::Owned(format!(
                    "claim `{claim}` cannot be sent as a header"
                )))
            })?;
            headers.push((header.clone(), value));
        }
        let consumer = claims.get(&self.consumer_claim).and_then(|v| match v {
            Value::String(s) => Some(Arc::from(s.as_str())),
            Value::Number(n) => Some(Arc::from(n.to_string())),
            _ => None,
        });
        Ok(Verified {
            headers,
            consumer,
            times,
        })
    }

    fn check_times(&self, t: Times, now: f64) -> Result<(), Failure> {
        match t.exp {
            Some(exp) if now >= exp + self.leeway => return Err(invalid("token expired")),
            None if self.require_exp => return Err(invalid("token has no exp")),
            _ => {}
        }
        if t.nbf.is_some_and(|nbf| now + self.leeway < nbf) {
            return Err(invalid("token not valid yet"));
        }
        if t.iat.is_some_and(|iat| now + self.leeway < iat) {
            return Err(invalid("token issued in the future"));
        }
        Ok(())
    }

    /// RFC 7519 §4.1.3: the token's `aud` (a string or a list) must name one of ours; a
    /// token with an `aud` is refused when no audience is configured.
    fn check_audience(&self, aud: Option<&Value>) -> Result<(), Failure> {
        let named = |v: &Value| {
            v.as_str()
                .is_some_and(|a| self.audience.iter().any(|x| x == a))
        };
        let ok = match aud {
            None | Some(Value::Null) => self.audience.is_empty(),
            Some(Value::Array(list)) => !self.audience.is_empty() && list.iter().any(named),
            Some(one) => !self.audience.is_empty() && named(one),
        };
        if ok {
            Ok(())
        } else {
            Err(invalid("wrong audience"))
        }
    }
}

/// A `NumericDate` claim: absent, or a number (fractions allowed).
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, Failure> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|n| n.is_finite())
            .map(Some)
            .ok_or(Failure::Invalid(Cow::Owned(format!(
                "claim `{name}` is not a number"
            )))),
    }
}

/// A claim as header text: strings as they are, numbers and booleans as JSON writes them,
/// arrays joined with `,` (each element the same way), objects as compact JSON. `null` is
/// no header.
fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(header_text)
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
impl Verifier {
    pub fn jwks(&self) -> Option<&Arc<Jwks>> {
        self.jwks.as_ref()
    }

    pub fn cached(&self) -> usize {
        self.cache.as_ref().map_or(0, TokenCache::len)
    }
}

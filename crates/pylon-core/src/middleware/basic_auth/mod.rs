//! The `basic_auth` middleware: reads `Authorization: Basic`, checks the password against
//! the user's stored hash, and lets the request on as that user (`state.consumer`, and
//! `user_header` upstream) or refuses it with 401 and `WWW-Authenticate: Basic realm="…"`.
//!
//! Hash checks are slow by design, so they run on Tokio's blocking pool (never on the
//! proxy's async workers), at most one per CPU at a time, and successes are remembered for
//! `cache_ttl` ([`cache`]). An unknown user costs one check against a decoy hash, so
//! response times do not tell which users exist. Credentials are never logged.

mod cache;
mod verify;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue};
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::middleware::{BasicAuth as Config, StoredHash};
use tokio::sync::Semaphore;

pub use self::cache::CheckCache;
use super::{Flow, Hooks, Middleware, RequestState};

/// Longest `user:password` accepted, decoded. Past it the request is refused unchecked:
/// SHA-crypt's cost grows with the square of the password's length.
const MAX_CREDENTIALS: usize = 1024;

/// Standard base64, padded or not (clients differ), nothing else.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug)]
struct User {
    name: Arc<str>,
    /// The name as a header value, for `user_header`.
    value: HeaderValue,
    hash: Arc<StoredHash>,
}

#[derive(Debug)]
struct BasicAuth {
    users: HashMap<Box<[u8]>, User>,
    /// Checked against when the user is unknown, so that costs as much as a known one.
    decoy: Arc<StoredHash>,
    /// `Basic realm="…", charset="UTF-8"`.
    challenge: HeaderValue,
    remove_header: bool,
    user_header: Option<HeaderName>,
    cache: CheckCache,
    /// Hash checks running at once, at most one per CPU: a flood of bad passwords queues
    /// here instead of filling the blocking pool with hundreds of threads.
    checks: Semaphore,
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    let mut users = HashMap::new();
    let entries = def.entries()?;
    let decoy = match entries.first() {
        Some(e) => Arc::new(e.hash.clone()),
        None => return Err("no users".into()),
    };
    for entry in entries {
        let value = HeaderValue::from_bytes(entry.user.as_bytes())
            .map_err(|_| format!("user `{}` cannot be sent in a header", entry.user))?;
        let user = User {
            name: Arc::from(entry.user.as_str()),
            value,
            hash: Arc::new(entry.hash),
        };
        users.insert(entry.user.into_bytes().into_boxed_slice(), user);
    }
    let challenge =
        HeaderValue::from_str(&format!("Basic realm=\"{}\", charset=\"UTF-8\"", def.realm))
            .map_err(|_| format!("invalid realm {:?}", def.realm))?;
    let user_header = def
        .user_header
        .as_deref()
        .map(|n| {
            HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("invalid header name {n:?}"))
        })
        .transpose()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(Arc::new(BasicAuth {
        users,
        decoy,
        challenge,
        remove_header: def.remove_header,
        user_header,
        cache: CheckCache::new(def.cache_ttl, def.cache_size)?,
        checks: Semaphore::new(cpus),
    }))
}

/// A user name and password from `Authorization: Basic`.
/// Whether `password` matches `hash`, as `basic_auth` checks it (also used by the admin
/// API's users). Blocking: it costs what the hash was made to cost. A stored hash that
/// cannot be used (validation makes that a bug) is logged and fails.
pub fn verify_password(hash: &StoredHash, password: &[u8]) -> bool {
    verify::verify(hash, password).unwrap_or_else(|e| {
        log::error!("password check failed: {e}");
        false
    })
}

struct Credentials {
    user: Vec<u8>,
    password: Vec<u8>,
}

/// Reads the request's credentials, or why they cannot be read (the refusal's message).
fn credentials(req: &pingora::http::RequestHeader) -> Result<Credentials, &'static str> {
    let mut values = req.headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err("authentication required");
    };
    if values.next().is_some() {
        return Err("malformed credentials: more than one Authorization header");
    }
    let value = value.as_bytes();
    let (scheme, token) = match value.iter().position(|&b| b == b' ') {
        Some(at) => (&value[..at], value[at + 1..].trim_ascii()),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Err("Basic credentials required");
    }
    // Four base64 characters carry three bytes.
    if token.is_empty() || token.len() > MAX_CREDENTIALS.div_ceil(3) * 4 {
        return Err("malformed credentials");
    }
    let decoded = BASE64
        .decode(token)
        .map_err(|_| "malformed credentials: not base64")?;
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return Err("malformed credentials: no `:` between user and password");
    };
    Ok(Credentials {
        user: decoded[..colon].to_vec(),
        password: decoded[colon + 1..].to_vec(),
    })
}

impl BasicAuth {
    fn refuse(&self, why: &'static str) -> Flow {
        Flow::RejectWith(
            401,
            Cow::Borrowed(why),
            vec![(WWW_AUTHENTICATE, self.challenge.clone())],
        )
    }

    /// Runs one hash check on the blocking pool. A check that cannot run counts as a
    /// failure: the request is refused, never let through.
    async fn check(&self, hash: Arc<StoredHash>, password: Vec<u8>) -> bool {
        let Ok(_permit) = self.checks.acquire().await else {
            return false;
        };
        match tokio::task::spawn_blocking(move || verify::verify(&hash, &password)).await {
            Ok(Ok(matched)) => matched,
            Ok(Err(why)) => {
                log::warn!("basic_auth: a stored hash could not be used: {why}");
                false
            }
            Err(e) => {
                log::warn!("basic_auth: the password check did not finish: {e}");
                false
            }
        }
    }
}

#[async_trait]
impl Middleware for BasicAuth {
    fn hooks(&self) -> Hooks {
        Hooks {
            request: true,
            ..Hooks::default()
        }
    }

    async fn request(&self, session: &mut Session, state: &mut RequestState) -> Result<Flow> {
        let creds = match credentials(session.req_header()) {
            Ok(c) => c,
            Err(why) => return Ok(self.refuse(why)),
        };
        let Some(user) = self.users.get(creds.user.as_slice()) else {
            self.check(self.decoy.clone(), creds.password).await;
            return Ok(self.refuse("invalid credentials"));
        };
        let key = self.cache.key(&creds.user, &creds.password);
        if !self.cache.contains(&key, Instant::now()) {
            if !self.check(user.hash.clone(), creds.password).await {
                return Ok(self.refuse("invalid credentials"));
            }
            self.cache.insert(key, Instant::now());
        }
        state.consumer = Some(user.name.clone());
        let req = session.req_header_mut();
        if self.remove_header {
            req.remove_header(&AUTHORIZATION);
        }
        if let Some(name) = &self.user_header {
            req.insert_header(name.clone(), user.value.clone())?;
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pingora::http::RequestHeader;

    fn with_auth(values: &[&str]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for v in values {
            req.append_header("Authorization", *v).unwrap();
        }
        req
    }

    #[test]
    fn credentials_are_read_strictly() {
        let c = credentials(&with_auth(&["Basic YW5uOnNlY3JldA=="])).unwrap();
        assert_eq!(
            (c.user.as_slice(), c.password.as_slice()),
            (&b"ann"[..], &b"secret"[..])
        );
        // Scheme in any case, padding optional, a password may hold `:`.
        let c = credentials(&with_auth(&["bAsIc  YW5uOnM6ZWNyZXQ"])).unwrap();
        assert_eq!(c.password, b"s:ecret");
        let c = credentials(&with_auth(&["Basic Og=="])).unwrap();
        assert!(c.user.is_empty() && c.password.is_empty());
        for (values, why) in [
            (vec![], "authentication required"),
            (vec!["Bearer abc"], "Basic credentials required"),
            (vec!["Basic"], "malformed credentials"),
            (vec!["Basic !!!!"], "malformed credentials: not base64"),
            (vec!["Basic YW5u"], "malformed credentials: no `:`"),
            (
                vec!["Basic YW5uOnNlY3JldA==", "Basic YW5uOnNlY3JldA=="],
                "more than one",
            ),
        ] {
            let e = credentials(&with_auth(&values)).err().unwrap();
            assert!(e.contains(why), "{values:?}: {e}");
        }
        let long = BASE64.encode(vec![b'a'; MAX_CREDENTIALS + 10]);
        assert_eq!(
            credentials(&with_auth(&[&format!("Basic {long}")])).err(),
            Some("malformed credentials")
        );
    }
}

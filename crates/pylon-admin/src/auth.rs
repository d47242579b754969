//! Who may use the API: API keys (`Authorization: Bearer KEY` or `X-API-Key: KEY`) and
//! HTTP Basic users from htpasswd lines (bcrypt, argon2 or SHA-crypt hashes).
//!
//! Keys are compared in constant time. Passwords are checked exactly as the `basic_auth`
//! middleware checks them (`pylon_core::middleware::verify_password`); a check costs tens
//! of milliseconds of CPU by design, so it runs on a blocking thread, and a success is
//! remembered for a few minutes under a keyed digest of user and password (never the
//! password itself), so that a client sending the same credentials on every request pays
//! once.

use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use base64::Engine as _;
use pylon_config::middleware::StoredHash;
use pylon_config::AdminConfig;
use pylon_core::middleware::{verify_password, CheckCache};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// How many successful password checks are remembered, and for how long.
const VERIFIED_CACHE: usize = 256;
const VERIFIED_TTL: Duration = Duration::from_secs(300);

/// The credentials of the admin section.
pub struct Auth {
    keys: Vec<String>,
    /// User name → password hash.
    users: Vec<(String, StoredHash)>,
    /// `None` without OS randomness for its key: every request is then checked.
    verified: Option<CheckCache>,
}

/// What a request presented.
enum Presented {
    None,
    Key(String),
    Basic { user: String, password: String },
    Malformed,
}

impl Auth {
    pub fn new(admin: &AdminConfig) -> Auth {
        Auth {
            keys: admin.api_keys.clone(),
            users: admin
                .basic_auth
                .iter()
                .filter_map(|line| pylon_config::middleware::parse_hashed_entry(line).ok())
                .map(|entry| (entry.user, entry.hash))
                .collect(),
            verified: CheckCache::new(VERIFIED_TTL, VERIFIED_CACHE).ok(),
        }
    }

    pub fn required(&self) -> bool {
        !self.keys.is_empty() || !self.users.is_empty()
    }

    /// Checks a request's credentials. Blocking when a password must be verified: call
    /// from a blocking thread (see [`Auth::needs_blocking`]).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if !self.required() {
            return Ok(());
        }
        let ok = match presented(headers) {
            Presented::Key(key) => self.key_ok(&key),
            Presented::Basic { user, password } => self.basic_ok(&user, &password),
            Presented::None => return Err(self.denied("authentication required")),
            Presented::Malformed => false,
        };
        if ok {
            Ok(())
        } else {
            Err(self.denied("invalid credentials"))
        }
    }

    /// Whether checking `headers` would run a password hash (not cached yet).
    pub fn needs_blocking(&self, headers: &HeaderMap) -> bool {
        match presented(headers) {
            Presented::Basic { user, password } => !self.remembered(&user, &password),
            _ => false,
        }
    }

    fn key_ok(&self, key: &str) -> bool {
        // Every key is compared, so the time taken does not say which one nearly matched.
        self.keys.iter().fold(false, |found, k| {
            found | bool::from(k.as_bytes().ct_eq(key.as_bytes()))
        })
    }

    /// Whether this user and password passed a check recently.
    fn remembered(&self, user: &str, password: &str) -> bool {
        self.verified.as_ref().is_some_and(|cache| {
            cache.contains(
                &cache.key(user.as_bytes(), password.as_bytes()),
                Instant::now(),
            )
        })
    }

    fn basic_ok(&self, user: &str, password: &str) -> bool {
        if self.remembered(user, password) {
            return true;
        }
        let Some((_, hash)) = self.users.iter().find(|(u, _)| u == user) else {
            return false;
        };
        if !verify_password(hash, password.as_bytes()) {
            return false;
        }
        if let Some(cache) = &self.verified {
            cache.insert(
                cache.key(user.as_bytes(), password.as_bytes()),
                Instant::now(),
            );
        }
        true
    }

    fn denied(&self, message: &str) -> ApiError {
        let challenge = if self.users.is_empty() {
            "Bearer realm=\"pylon admin\""
        } else {
            "Basic realm=\"pylon admin\", charset=\"UTF-8\""
        };
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, message);
        e.header = Some(Box::new((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        )));
        e
    }
}

fn presented(headers: &HeaderMap) -> Presented {
    if let Some(key) = headers.get("x-api-key") {
        return match key.to_str() {
            Ok(k) => Presented::Key(k.trim().to_string()),
            Err(_) => Presented::Malformed,
        };
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Presented::None;
    };
    let Ok(value) = value.to_str() else {
        return Presented::Malformed;
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        return Presented::Key(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            return Presented::Basic {
                user: user.to_string(),
                password: password.to_string(),
            };
        }
    }
    Presented::Malformed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(keys: &[&str], basic: &[String]) -> Auth {
        let admin = AdminConfig {
            listen: pylon_config::DEFAULT_ADMIN_LISTEN,
            basic_auth: basic.to_vec(),
            api_keys: keys.iter().map(|k| k.to_string()).collect(),
            rate_limit: None,
            ready: Default::default(),
        };
        Auth::new(&admin)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                *k,
                HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        h
    }

    #[test]
    fn keys_in_either_header() {
        let a = auth(&["k1", "k2"], &[]);
        assert!(a.check(&headers(&[("x-api-key", "k2")])).is_ok());
        assert!(a.check(&headers(&[("authorization", "Bearer k1")])).is_ok());
        assert!(a
            .check(&headers(&[("authorization", "bearer  k1 ")]))
            .is_ok());
        let e = a.check(&headers(&[("x-api-key", "k3")])).err();
        assert_eq!(e.map(|e| e.status), Some(StatusCode::UNAUTHORIZED));
        let e = a.check(&HeaderMap::new()).err().map(|e| e.header);
        assert!(format!("{e:?}").contains("Bearer"));
        assert!(auth(&[], &[]).check(&HeaderMap::new()).is_ok());
    }

    #[test]
    fn basic_users_with_bcrypt() {
        let hash = bcrypt::hash("s3cret", 4).unwrap_or_else(|e| panic!("{e}"));
        let a = auth(&[], &[format!("ops:{hash}")]);
        let basic = |creds: &str| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(creds);
            headers(&[("authorization", &format!("Basic {b64}"))])
        };
        assert!(a.needs_blocking(&basic("ops:s3cret")));
        assert!(a.check(&basic("ops:s3cret")).is_ok());
        assert!(!a.needs_blocking(&basic("ops:s3cret")), "remembered");
        assert!(a.check(&basic("ops:wrong")).is_err());
        assert!(a.check(&basic("other:s3cret")).is_err());
        assert!(a
            .check(&headers(&[("authorization", "Basic !!!")]))
            .is_err());
    }

    #[test]
    fn basic_users_with_sha_crypt_as_the_middleware_takes_them() {
        // `openssl passwd -5 -salt saltsalt secret`.
        let a = auth(
            &[],
            &["cid:$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA".to_string()],
        );
        let basic = |creds: &str| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(creds);
            headers(&[("authorization", &format!("Basic {b64}"))])
        };
        assert!(a.check(&basic("cid:secret")).is_ok());
        assert!(a.check(&basic("cid:Secret")).is_err());
    }
}

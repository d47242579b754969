//! The `jwt` middleware: verifies a JSON Web Token on the request side, forwards chosen
//! claims as headers, and sets `state.consumer`; refuses with 401/403/400 and
//! `WWW-Authenticate: Bearer` (RFC 6750) in the shared error format.
//!
//! Crypto choice: the `openssl` crate by hand, not `jsonwebtoken`. OpenSSL is already linked
//! through Pingora (no second crypto stack, no `rsa` crate and its RUSTSEC-2023-0071, no
//! aws-lc build), and JWS is small enough to own: split, base64url, verify `header.payload`.
//! Owning it makes the rule against algorithm confusion explicit and local: a token's `alg`
//! must be listed in `algorithms` *and* be of the type of the key that checks it
//! ([`keys::Key::verify`]), and HMAC keys come only from `secret`.
//!
//! The modules:
//! - [`token`]: where the token is read, and how it is taken out of the request;
//! - [`verify`]: the JWS and claim checks ([`Verifier`]);
//! - [`keys`]: keys, JWK parsing, the signature algorithms;
//! - [`jwks`]: keys from a URL, refreshed by [`JwksRefreshService`];
//! - [`cache`]: verified tokens, by SHA-256.
//!
//! Everything happens in the request phase, on the downstream request: the token (and the
//! claim headers a client may have sent itself) are gone before later middlewares, the
//! upstream or a log line see the request.

mod cache;
mod jwks;
mod keys;
mod token;
mod verify;

#[cfg(test)]
mod testkit;

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderName, HeaderValue};
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::middleware::{Jwt as Config, TokenSource};

use super::{Flow, Hooks, Middleware, RequestState};

pub use jwks::JwksRefreshService;
pub use verify::{unix_now, Failure, Verified, Verifier};

#[derive(Debug)]
struct Jwt {
    verifier: Verifier,
    sources: Vec<TokenSource>,
    forward_token: bool,
    realm: String,
    /// Claim headers, removed from every request before the verified values are set.
    claim_headers: Vec<HeaderName>,
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    let verifier = Verifier::new(def)?;
    let claim_headers = verifier.claim_header_names().cloned().collect();
    Ok(Arc::new(Jwt {
        verifier,
        sources: def.token_from.clone(),
        forward_token: def.forward_token,
        realm: def.realm.clone(),
        claim_headers,
    }))
}

/// Text safe inside a quoted `WWW-Authenticate` parameter.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

impl Jwt {
    /// The refusal for `failure`: status, message for the error body, and the
    /// `WWW-Authenticate` challenge.
    fn refuse(&self, failure: Failure) -> Flow {
        let (status, code, why): (u16, Option<&str>, Cow<'_, str>) = match &failure {
            Failure::Missing => (401, None, "missing token".into()),
            Failure::BadRequest(why) => (400, Some("invalid_request"), (*why).into()),
            Failure::Invalid(why) => (401, Some("invalid_token"), why.as_ref().into()),
            Failure::NoKey => (401, Some("invalid_token"), "no key for this token".into()),
            Failure::Insufficient(why) => (403, Some("insufficient_scope"), why.as_str().into()),
        };
        let mut challenge = format!("Bearer realm=\"{}\"", self.realm);
        if let Some(code) = code {
            challenge.push_str(&format!(
                ", error=\"{code}\", error_description=\"{}\"",
                quotable(&why)
            ));
        }
        let message = match status {
            401 if code.is_some() => format!("invalid token: {why}"),
            _ => why.into_owned(),
        };
        let headers = HeaderValue::from_str(&challenge)
            .map(|v| vec![(WWW_AUTHENTICATE, v)])
            .unwrap_or_default();
        Flow::RejectWith(status, message.into(), headers)
    }
}

#[async_trait]
impl Middleware for Jwt {
    fn hooks(&self) -> Hooks {
        Hooks {
            request: true,
            ..Hooks::default()
        }
    }

    async fn request(&self, session: &mut Session, state: &mut RequestState) -> Result<Flow> {
        let req = session.req_header_mut();
        let found = token::find(req, &self.sources);
        let used = found
            .as_ref()
            .ok()
            .and_then(|f| f.as_ref().map(|(i, _)| *i));
        // Out of the request before anything else can see it, whatever the outcome.
        if let Err(f) = token::strip(req, &self.sources, used, self.forward_token) {
            return Ok(self.refuse(f));
        }
        for name in &self.claim_headers {
            req.remove_header(name);
        }
        let token = match found {
            Ok(Some((_, token))) => token,
            Ok(None) => return Ok(self.refuse(Failure::Missing)),
            Err(f) => return Ok(self.refuse(f)),
        };
        match self.verifier.verify(&token).await {
            Ok(verified) => {
                let req = session.req_header_mut();
                for (name, value) in &verified.headers {
                    req.append_header(name.clone(), value.clone())?;
                }
                state.consumer = verified.consumer.clone();
                Ok(Flow::Continue)
            }
            Err(f) => Ok(self.refuse(f)),
        }
    }
}

#[cfg(test)]
mod tests;

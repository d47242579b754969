//! The `api_key` middleware: takes the key out of the request (its header and its query
//! parameter, before anything else sees the request, so Pingora's log lines and later
//! middlewares never hold it), looks it up, and lets the request on as the key's consumer
//! or refuses it with 401 and `WWW-Authenticate: ApiKey header="…"`.
//!
//! Keys are held as SHA-256 digests only. A presented key is digested and looked up by
//! digest, then the digests are compared in constant time: the timing of a lookup says
//! something about a digest at most, never about a key's bytes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderName, HeaderValue};
use percent_encoding::percent_decode_str;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::middleware::ApiKey as Config;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::transform::set_target;
use super::{Flow, Hooks, Middleware, RequestState};

type KeyDigest = [u8; 32];

struct Key {
    digest: KeyDigest,
    consumer: Option<Arc<str>>,
    /// The consumer as a header value, for `consumer_header`.
    value: Option<HeaderValue>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

struct ApiKey {
    keys: HashMap<KeyDigest, Key>,
    header: Option<HeaderName>,
    query: Option<String>,
    consumer_header: Option<HeaderName>,
    /// `ApiKey header="X-API-Key"`, with `query="…"` when keys may come in the query.
    challenge: HeaderValue,
}

/// Not even digests in debug output: a weak key could be found from its digest offline.
impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("keys", &self.keys.len())
            .field("header", &self.header)
            .field("query", &self.query)
            .field("consumer_header", &self.consumer_header)
            .finish_non_exhaustive()
    }
}

fn digest(key: &[u8]) -> KeyDigest {
    Sha256::digest(key).into()
}

fn header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    Ok(Arc::new(build(def)?))
}

fn build(def: &Config) -> Result<ApiKey, String> {
    let mut keys = HashMap::new();
    for entry in def.entries()? {
        let d = digest(entry.key.as_bytes());
        let value = entry
            .consumer
            .as_deref()
            .map(|c| HeaderValue::from_str(c).map_err(|_| format!("invalid consumer {c:?}")))
            .transpose()?;
        let key = Key {
            digest: d,
            consumer: entry.consumer.as_deref().map(Arc::from),
            value,
        };
        if keys.insert(d, key).is_some() {
            return Err("a key is listed twice".into());
        }
    }
    if keys.is_empty() {
        return Err("no keys".into());
    }
    let header = def.header_name().map(header_name).transpose()?;
    let mut challenge = String::from("ApiKey");
    let mut sep = " ";
    if let Some(h) = def.header_name() {
        challenge.push_str(&format!("{sep}header=\"{h}\""));
        sep = ", ";
    }
    if let Some(q) = &def.query {
        challenge.push_str(&format!("{sep}query=\"{q}\""));
    }
    Ok(ApiKey {
        keys,
        header,
        query: def.query.clone(),
        consumer_header: def
            .consumer_header
            .as_deref()
            .map(header_name)
            .transpose()?,
        challenge: HeaderValue::from_str(&challenge)
            .map_err(|_| format!("invalid challenge {challenge:?}"))?,
    })
}

/// Removes every `name` parameter from the request's query; returns their values,
/// percent-decoded. Names are compared decoded (`+` as space), as `transform` does. In
/// values `+` stays `+`: keys have no spaces, and base64 keys often hold a `+` that
/// clients forget to encode.
fn take_query_param(req: &mut RequestHeader, name: &str) -> Result<Vec<Vec<u8>>, ()> {
    let Some(query) = req.uri.query() else {
        return Ok(Vec::new());
    };
    let mut taken = Vec::new();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded_name = percent_decode_str(&raw_name.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        if decoded_name == name {
            taken.push(percent_decode_str(raw_value).collect());
        } else {
            kept.push(pair);
        }
    }
    if taken.is_empty() {
        return Ok(taken);
    }
    let path = req.uri.path().to_string();
    let rest = (!kept.is_empty()).then(|| kept.join("&"));
    if set_target(req, &path, rest.as_deref()) {
        Ok(taken)
    } else {
        Err(())
    }
}

impl ApiKey {
    fn refuse(&self, why: &'static str) -> Flow {
        Flow::RejectWith(
            401,
            Cow::Borrowed(why),
            vec![(WWW_AUTHENTICATE, self.challenge.clone())],
        )
    }

    fn find(&self, presented: &[u8]) -> Option<&Key> {
        let d = digest(presented);
        self.keys.get(&d).filter(|k| bool::from(k.digest.ct_eq(&d)))
    }
}

#[async_trait]
impl Middleware for ApiKey {
    fn hooks(&self) -> Hooks {
        Hooks {
            request_now: true,
            ..Hooks::default()
        }
    }

    fn request_now(&self, session: &mut Session, state: &mut RequestState) -> Result<Flow> {
        let req = session.req_header_mut();
        // Taken out first, whatever the outcome: a refused request is logged too.
        let mut presented: Vec<Vec<u8>> = Vec::new();
        if let Some(name) = &self.header {
            presented.extend(
                req.headers
                    .get_all(name)
                    .iter()
                    .map(|v| v.as_bytes().to_vec()),
            );
            req.remove_header(name);
        }
        if let Some(name) = &self.query {
            match take_query_param(req, name) {
                Ok(values) => presented.extend(values),
                // Removing a parameter from a valid target leaves a valid one; if it ever
                // does not, the key is still in the URI: refuse.
                Err(()) => return Ok(self.refuse("malformed request target")),
            }
        }
        if let Some(name) = &self.consumer_header {
            req.remove_header(name);
        }
        let key = match presented.as_slice() {
            [] => return Ok(self.refuse("API key required")),
            [one] => one,
            _ => return Ok(self.refuse("more than one API key")),
        };
        let Some(found) = self.find(key) else {
            return Ok(self.refuse("invalid API key"));
        };
        state.consumer = found.consumer.clone();
        if let (Some(name), Some(value)) = (&self.consumer_header, &found.value) {
            req.insert_header(name.clone(), value.clone())?;
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn target(req: &RequestHeader) -> String {
        String::from_utf8_lossy(req.raw_path()).into_owned()
    }

    #[test]
    fn the_query_parameter_is_taken_out() {
        let mut req =
            RequestHeader::build("GET", b"/a/b?x=1&api_key=k%2B1&y=2&api%5Fkey=k+2", None).unwrap();
        let taken = take_query_param(&mut req, "api_key").unwrap();
        assert_eq!(taken, vec![b"k+1".to_vec(), b"k+2".to_vec()]);
        assert_eq!(target(&req), "/a/b?x=1&y=2");
        let mut req = RequestHeader::build("GET", b"/p?api_key=secret", None).unwrap();
        assert_eq!(
            take_query_param(&mut req, "api_key").unwrap(),
            vec![b"secret".to_vec()]
        );
        assert_eq!(target(&req), "/p");
        let mut req = RequestHeader::build("GET", b"/p?api_keyx=1&x=api_key", None).unwrap();
        assert!(take_query_param(&mut req, "api_key").unwrap().is_empty());
        assert_eq!(target(&req), "/p?api_keyx=1&x=api_key");
        let mut req = RequestHeader::build("GET", b"/p?api_key", None).unwrap();
        assert_eq!(
            take_query_param(&mut req, "api_key").unwrap(),
            vec![Vec::<u8>::new()]
        );
        assert_eq!(target(&req), "/p");
    }

    #[test]
    fn keys_are_found_by_digest_and_never_printed() {
        let def: Config = Config {
            keys: vec![pylon_config::middleware::ApiKeyEntry {
                key: "k-123".into(),
                consumer: Some("ci".into()),
            }],
            query: Some("api_key".into()),
            ..Config::default()
        };
        let mw = build(&def).unwrap();
        assert_eq!(mw.find(b"k-123").unwrap().consumer.as_deref(), Some("ci"));
        assert!(mw.find(b"k-12").is_none());
        assert!(mw.find(b"k-1234").is_none());
        assert!(mw.header.is_none());
        assert_eq!(mw.challenge, "ApiKey query=\"api_key\"");
        let shown = format!("{mw:?}");
        assert!(!shown.contains("k-123"), "{shown}");
        assert_eq!(
            shown,
            "ApiKey { keys: 1, header: None, query: Some(\"api_key\"), consumer_header: None, .. }"
        );
    }
}

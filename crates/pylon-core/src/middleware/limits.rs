//! The `limits` middleware: refuses requests that are too large before anything goes
//! upstream (URI 414, headers 431, a declared `Content-Length` 413), and counts bodies
//! without a length (chunked) while they stream, ending the request with 413 once the
//! count passes the limit.
//!
//! Pingora refuses on its own, with a plain 400 and a closed connection, request headers
//! over 1 MiB (1,048,575 bytes) or with more than 256 fields: limits above those never
//! apply.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};
use pylon_config::middleware::Limits as Config;

#[cfg(test)]
use super::Chain;
use super::{Flow, Hooks, Middleware, RequestState};

#[derive(Debug)]
struct Limits {
    max_body_size: Option<u64>,
    max_header_size: Option<usize>,
    max_header_count: Option<usize>,
    max_uri_length: Option<usize>,
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    Ok(Arc::new(Limits {
        max_body_size: def.max_body_size,
        max_header_size: def.max_header_size,
        max_header_count: def.max_header_count,
        max_uri_length: def.max_uri_length,
    }))
}

/// What an over-limit request header gets, if anything.
fn refusal(limits: &Limits, req: &RequestHeader) -> Option<(u16, &'static str)> {
    if limits
        .max_uri_length
        .is_some_and(|max| req.raw_path().len() > max)
    {
        return Some((414, "URI too long"));
    }
    if limits
        .max_header_count
        .is_some_and(|max| req.headers.len() > max)
    {
        return Some((431, "too many request header fields"));
    }
    if let Some(max) = limits.max_header_size {
        // Names and values, as the client sent them (a repeated name counts each time).
        let size: usize = req
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if size > max {
            return Some((431, "request header fields too large"));
        }
    }
    if let Some(max) = limits.max_body_size {
        // A declared length is refused before any byte is read. An unparsable one is
        // left to Pingora, which refuses it; chunked bodies are counted as they stream.
        let declared = req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > max) {
            return Some((413, "request body too large"));
        }
    }
    None
}

#[async_trait]
impl Middleware for Limits {
    fn hooks(&self) -> Hooks {
        Hooks {
            request_now: true,
            request_body: self.max_body_size.is_some(),
            ..Hooks::default()
        }
    }

    fn request_now(&self, session: &mut Session, _state: &mut RequestState) -> Result<Flow> {
        if let Some((status, message)) = refusal(self, session.req_header()) {
            return Ok(Flow::Reject(status, message.into()));
        }
        Ok(Flow::Continue)
    }

    fn request_body(
        &self,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        state: &mut RequestState,
    ) -> Result<()> {
        let Some(max) = self.max_body_size else {
            return Ok(());
        };
        // The chain counts the pieces (once, whatever the number of `limits`) and the proxy
        // restarts the count with each upstream attempt; here the count is only compared.
        if state.body_bytes > max {
            // Ends the upstream request; the proxy answers 413 if no response started.
            return Error::e_explain(
                ErrorType::HTTPStatus(413),
                format!("request body over {max} bytes"),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn limits() -> Limits {
        Limits {
            max_body_size: Some(10),
            max_header_size: Some(40),
            max_header_count: Some(2),
            max_uri_length: Some(12),
        }
    }

    fn req(target: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", target.as_bytes(), None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn each_limit_has_its_status() {
        let l = limits();
        assert_eq!(refusal(&l, &req("/short?q=1", &[("a", "b")])), None);
        assert_eq!(
            refusal(&l, &req("/a/longer/uri", &[])).map(|r| r.0),
            Some(414)
        );
        let three = [("a", "1"), ("b", "2"), ("c", "3")];
        assert_eq!(refusal(&l, &req("/", &three)).map(|r| r.0), Some(431));
        let big = "x".repeat(40);
        assert_eq!(
            refusal(&l, &req("/", &[("a", &big)])).map(|r| r.0),
            Some(431)
        );
        assert_eq!(
            refusal(&l, &req("/", &[("content-length", "11")])).map(|r| r.0),
            Some(413)
        );
        assert_eq!(refusal(&l, &req("/", &[("content-length", "10")])), None);
    }

    /// A chain of these `limits`, as a route would compile it.
    fn chain(all: Vec<Limits>) -> Chain {
        let entries = all
            .into_iter()
            .map(|l| {
                let mw: Arc<dyn Middleware> = Arc::new(l);
                let hooks = mw.hooks();
                (mw, hooks)
            })
            .collect();
        Chain { entries }
    }

    #[test]
    fn streamed_bodies_are_counted_across_pieces() {
        let c = chain(vec![limits()]);
        let mut state = RequestState::default();
        let mut piece = Some(Bytes::from_static(b"123456"));
        assert!(c.request_body(1, &mut piece, false, &mut state).is_ok());
        assert!(c.request_body(1, &mut piece, false, &mut state).is_err());
        assert_eq!(state.body_bytes, 12);
    }

    #[test]
    fn a_retry_replay_is_not_counted_twice() {
        let c = chain(vec![limits()]);
        let mut state = RequestState::default();
        let mut piece = Some(Bytes::from_static(b"123456"));
        state.start_attempt();
        assert!(c.request_body(1, &mut piece, false, &mut state).is_ok());
        // A second attempt: Pingora replays the 6 bytes read so far, then the rest comes.
        state.start_attempt();
        assert!(c.request_body(1, &mut piece, false, &mut state).is_ok());
        let mut last = Some(Bytes::from_static(b"7890"));
        assert!(c.request_body(1, &mut last, true, &mut state).is_ok());
        assert_eq!(state.body_bytes, 10);
    }

    #[test]
    fn a_second_limits_compares_without_counting_again() {
        let second = Limits {
            max_body_size: Some(8),
            ..limits()
        };
        let c = chain(vec![limits(), second]);
        let mut state = RequestState::default();
        let mut piece = Some(Bytes::from_static(b"12345"));
        assert!(c.request_body(2, &mut piece, false, &mut state).is_ok());
        // 10 bytes: within the first limit (10), over the second (8).
        let refused = c.request_body(2, &mut piece, false, &mut state);
        assert_eq!(state.body_bytes, 10);
        // The first passed it on; the second, with its lower limit, refused.
        let e = refused.unwrap_err().to_string();
        assert!(e.contains("over 8 bytes"), "{e}");
    }
}

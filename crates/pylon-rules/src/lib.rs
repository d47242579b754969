//! Traefik-v3-style routing rules: the language (lexer, parser, AST), the compiled matcher,
//! and the router index that picks the highest-priority matching route.
//!
//! ```
//! use pylon_rules::{Router, Rule};
//! # struct Req;
//! # impl pylon_rules::RequestView for Req {
//! #     fn method(&self) -> &str { "GET" }
//! #     fn host(&self) -> &str { "api.example.com:8443" }
//! #     fn path(&self) -> &str { "/v1/users" }
//! #     fn query(&self) -> &str { "" }
//! #     fn any_header(&self, _: &str, _: &mut dyn FnMut(&[u8]) -> bool) -> bool { false }
//! #     fn client_ip(&self) -> Option<std::net::IpAddr> { None }
//! # }
//! let api = Rule::parse("Host(`api.example.com`) && PathPrefix(`/v1`)").unwrap();
//! let web = Rule::parse("Host(`*.example.com`)").unwrap();
//! let (pa, pw) = (api.default_priority(), web.default_priority());
//! let router = Router::new(vec![(api, pa, "api"), (web, pw, "web")]);
//! assert_eq!(router.find(&Req), Some(&"api"));
//! ```
//!
//! The language is documented in `docs/rules.md`. This crate has no Pingora dependency: the
//! proxy adapts its request type to [`RequestView`].

mod ast;
mod error;
mod goregex;
mod ip;
mod lexer;
mod parser;
mod request;
mod router;
mod rule;
mod trie;

pub use error::ParseError;
pub use router::Router;
pub use rule::Rule;

use std::net::IpAddr;

/// What a rule can see of a request. The proxy implements it over Pingora's request header.
pub trait RequestView {
    /// The method, e.g. `GET`.
    fn method(&self) -> &str;
    /// The host as the router sees it: the URI authority for an absolute-form request target,
    /// else the `Host` header. May carry a port and any case; matchers normalise.
    ///
    /// As in Go's server (and so Traefik), the authority's userinfo is not part of the host,
    /// and an absolute-form target with an empty host (`http://@/`) falls back to the `Host`
    /// header: adapters should do both.
    fn host(&self) -> &str;
    /// The path of the request target as received on the wire (still percent-encoded).
    fn path(&self) -> &str;
    /// The raw query string, without the leading `?` (empty when absent).
    fn query(&self) -> &str;
    /// Calls `f` with each value of the header `name` (matched case-insensitively) until `f`
    /// returns true; returns whether it did.
    fn any_header(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool;
    /// The client's address, when known.
    fn client_ip(&self) -> Option<IpAddr>;
}

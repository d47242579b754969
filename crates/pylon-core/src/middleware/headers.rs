//! The `headers` middleware: remove, set and add request headers (on the way upstream) and
//! response headers (on the way to the client), security headers, the `Server` header.

use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;
use pylon_config::middleware::{HeaderChanges, Headers as Config, ServerHeader};

use super::vars::Value;
use super::{Hooks, Middleware, RequestState};
use crate::header_names::{configured_value, prepare, PreparedHeaderName};

/// `Server: Pylon/VERSION` for `server: on`.
const PYLON_SERVER: &str = concat!("Pylon/", env!("CARGO_PKG_VERSION"));

/// Header changes compiled: names parsed once (sent in the case they are written in),
/// fixed values prepared.
#[derive(Debug, Default)]
struct Changes {
    remove: Vec<HeaderName>,
    set: Vec<(PreparedHeaderName, Value)>,
    add: Vec<(PreparedHeaderName, Value)>,
}

impl Changes {
    fn compile(def: &HeaderChanges) -> Result<Changes, String> {
        let name = |n: &str| {
            HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("invalid header name {n:?}"))
        };
        let mut out = Changes::default();
        for n in &def.remove {
            out.remove.push(name(n)?);
        }
        for (n, v) in &def.set {
            out.set.push((prepare(n)?, Value::header(v)?));
        }
        for (n, v) in &def.add {
            out.add.push((prepare(n)?, Value::header(v)?));
        }
        Ok(out)
    }

    fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }
}

/// Removes, sets, then adds, on either header type.
macro_rules! apply_changes {
    ($changes:expr, $header:expr, $req:expr, $state:expr) => {{
        for name in &$changes.remove {
            $header.remove_header(name);
        }
        for (name, value) in &$changes.set {
            if let Some(v) = value.to_header($req, $state) {
                $header.insert_header(name, v)?;
            }
        }
        for (name, value) in &$changes.add {
            if let Some(v) = value.to_header($req, $state) {
                $header.append_header(name, v)?;
            }
        }
    }};
}

#[derive(Debug)]
struct Headers {
    request: Changes,
    response: Changes,
    /// Added when the response does not already carry them.
    security: Vec<(PreparedHeaderName, HeaderValue)>,
    server: ServerHeader,
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    let security = def
        .security
        .as_ref()
        .map(|s| s.resolved())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            configured_value(&value)
                .map(|v| (PreparedHeaderName::from_static(name), v))
                .map_err(|_| format!("invalid value {value:?} for {name}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Arc::new(Headers {
        request: Changes::compile(&def.request)?,
        response: Changes::compile(&def.response)?,
        security,
        server: def.server.clone(),
    }))
}

#[async_trait]
impl Middleware for Headers {
    fn hooks(&self) -> Hooks {
        Hooks {
            upstream_request: !self.request.is_empty(),
            response: !self.response.is_empty()
                || !self.security.is_empty()
                || !self.server.is_keep(),
            ..Hooks::default()
        }
    }

    fn upstream_request(
        &self,
        downstream: &RequestHeader,
        upstream: &mut RequestHeader,
        state: &RequestState,
    ) -> Result<()> {
        apply_changes!(self.request, upstream, downstream, state);
        Ok(())
    }

    fn response(
        &self,
        downstream: &RequestHeader,
        response: &mut ResponseHeader,
        state: &mut RequestState,
    ) -> Result<()> {
        apply_changes!(self.response, response, downstream, &*state);
        for (name, value) in &self.security {
            if !response.headers.contains_key(name.name()) {
                response.insert_header(name, value.clone())?;
            }
        }
        match &self.server {
            ServerHeader::Keep => {}
            ServerHeader::Off => {
                response.remove_header(&http::header::SERVER);
            }
            ServerHeader::On => response.insert_header(http::header::SERVER, PYLON_SERVER)?,
            ServerHeader::Custom(text) => {
                response.insert_header(http::header::SERVER, text.as_str())?
            }
        }
        Ok(())
    }
}

//! The reference proxy for `bench/compare.sh`: the smallest useful Pingora proxy, with no
//! routing, no balancing and no headers added — one fixed upstream, HTTP/1.1 keep-alive.
//!
//! Built with the same release profile as Pylon (mimalloc, fat LTO, one codegen unit) so
//! that the comparison measures what Pylon adds, not the build settings.
//!
//! Usage: `bare-pingora LISTEN_ADDR UPSTREAM_ADDR` (one worker thread).
//!
//! With `BARE_FORWARDED=1` it also sets `X-Forwarded-For/-Proto/-Host` the way Pylon does:
//! a diagnostic reference that tells how much of Pylon's distance to the bare proxy is the
//! price of those three headers in Pingora's request path rather than Pylon's own logic.

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;
use std::net::SocketAddr;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    upstream: SocketAddr,
    forwarded: bool,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        _ctx: &mut (),
    ) -> Result<()> {
        if self.forwarded {
            let ip = session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip());
            if let Some(ip) = ip {
                upstream_request.insert_header("x-forwarded-for", ip.to_string())?;
            }
            upstream_request.insert_header("x-forwarded-proto", "http")?;
            let host = session.req_header().headers.get("host").cloned();
            if let Some(host) = host {
                upstream_request.insert_header("x-forwarded-host", host)?;
            }
        }
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: bare-pingora LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let Ok(upstream) = upstream.parse::<SocketAddr>() else {
        eprintln!("bad upstream address {upstream}");
        std::process::exit(2);
    };
    let conf = ServerConf {
        threads: 1,
        pid_file: format!("/tmp/bare-pingora-{}.pid", std::process::id()),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let forwarded = std::env::var("BARE_FORWARDED").is_ok_and(|v| v == "1");
    let mut service = http_proxy_service(
        &server.configuration,
        Bare {
            upstream,
            forwarded,
        },
    );
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}

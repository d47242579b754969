//! Builds the Pingora `HttpPeer` of one server from its peer options (the server's own,
//! falling back to its upstream's) and the effective timeouts.
//!
//! Certificates and keys are read and parsed here, once per compile, so a bad file is a
//! config error at load time rather than a failed request later.

use pingora::protocols::l4::ext::TcpKeepalive as PingoraKeepalive;
use pingora::protocols::ALPN;
use pingora::tls::pkey::PKey;
use pingora::tls::x509::X509;
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::CertKey;
use pylon_config::{Alpn, PeerOptions};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The timeouts a peer carries (the upstream's, possibly overridden by a route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub write: Duration,
    pub idle: Option<Duration>,
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// Parses every certificate of a PEM file.
pub fn load_certs(path: &Path, what: &str) -> Result<Vec<X509>, String> {
    let pem = read_file(path, what)?;
    let certs = X509::stack_from_pem(&pem)
        .map_err(|e| format!("{what} {}: not a PEM certificate: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{what} {}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// Builds the peer for `address`. `host` is the server's host name when it was given as a
/// name: the default SNI and the name verified against the certificate.
pub fn build_peer(
    address: SocketAddr,
    host: Option<&str>,
    opts: &PeerOptions,
    timeouts: &Timeouts,
) -> Result<HttpPeer, String> {
    let tls = opts.tls.unwrap_or(false);
    let sni = opts
        .sni
        .clone()
        .or_else(|| host.map(str::to_string))
        .unwrap_or_default();
    let mut peer = HttpPeer::new(address, tls, sni);
    let o = &mut peer.options;
    o.connection_timeout = Some(timeouts.connect);
    o.read_timeout = Some(timeouts.read);
    o.write_timeout = Some(timeouts.write);
    o.idle_timeout = timeouts.idle;
    if tls {
        o.verify_cert = opts.verify_cert.unwrap_or(true);
        // Pingora skips certificate verification altogether when the SNI is empty (it cannot
        // verify against an empty name); never let that happen silently.
        if o.verify_cert && peer.sni.is_empty() {
            return Err(format!(
                "{address}: TLS to an IP address needs `sni` (the name in the server's \
                 certificate) to verify it, or `verify_cert: false`"
            ));
        }
        let o = &mut peer.options;
        o.verify_hostname = opts.verify_hostname.unwrap_or(true);
        if let Some(ca_file) = &opts.ca_file {
            let certs = load_certs(ca_file, "ca_file")?;
            o.ca = Some(Arc::new(certs.into_boxed_slice()));
        }
        if let (Some(cert), Some(key)) = (&opts.client_cert, &opts.client_key) {
            let chain = load_certs(cert, "client_cert")?;
            let key_pem = read_file(key, "client_key")?;
            let key = PKey::private_key_from_pem(&key_pem)
                .map_err(|e| format!("client_key {}: not a PEM private key: {e}", key.display()))?;
            peer.client_cert_key = Some(Arc::new(CertKey::new(chain, key)));
        }
    }
    let o = &mut peer.options;
    o.alpn = match opts.alpn {
        None | Some(Alpn::H1) => ALPN::H1,
        Some(Alpn::H2) => ALPN::H2,
        Some(Alpn::H1h2) => ALPN::H2H1,
    };
    if let Some(ka) = &opts.tcp_keepalive {
        o.tcp_keepalive = Some(PingoraKeepalive {
            idle: ka.idle,
            interval: ka.interval,
            count: ka.count as usize,
            #[cfg(target_os = "linux")]
            user_timeout: Duration::ZERO,
        });
    }
    o.tcp_fast_open = opts.tcp_fast_open.unwrap_or(false);
    o.tcp_recv_buf = opts.tcp_recv_buf;
    o.dscp = opts.dscp;
    o.h2_ping_interval = opts.h2_ping_interval;
    if let Some(streams) = opts.max_h2_streams {
        o.max_h2_streams = streams.max(1);
    }
    Ok(peer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pylon_config::TcpKeepalive;

    fn timeouts() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(1),
            read: Duration::from_secs(2),
            write: Duration::from_secs(3),
            idle: Some(Duration::from_secs(4)),
        }
    }

    #[test]
    fn every_option_reaches_the_pingora_peer() {
        let opts = PeerOptions {
            tls: Some(true),
            sni: Some("api.example".into()),
            verify_cert: Some(false),
            verify_hostname: Some(false),
            alpn: Some(Alpn::H1h2),
            tcp_keepalive: Some(TcpKeepalive {
                idle: Duration::from_secs(30),
                interval: Duration::from_secs(5),
                count: 4,
            }),
            tcp_fast_open: Some(true),
            tcp_recv_buf: Some(65536),
            dscp: Some(46),
            h2_ping_interval: Some(Duration::from_secs(10)),
            max_h2_streams: Some(8),
            ..PeerOptions::default()
        };
        let addr: SocketAddr = "127.0.0.1:443".parse().unwrap();
        let peer = build_peer(addr, Some("ignored.example"), &opts, &timeouts()).unwrap();
        assert!(peer.is_tls());
        assert_eq!(peer.sni, "api.example");
        let o = &peer.options;
        assert_eq!(o.connection_timeout, Some(Duration::from_secs(1)));
        assert_eq!(o.read_timeout, Some(Duration::from_secs(2)));
        assert_eq!(o.write_timeout, Some(Duration::from_secs(3)));
        assert_eq!(o.idle_timeout, Some(Duration::from_secs(4)));
        assert!(!o.verify_cert && !o.verify_hostname);
        assert_eq!(o.alpn, ALPN::H2H1);
        let ka = o.tcp_keepalive.as_ref().unwrap();
        assert_eq!(
            (ka.idle, ka.interval, ka.count),
            (Duration::from_secs(30), Duration::from_secs(5), 4)
        );
        assert!(o.tcp_fast_open);
        assert_eq!(o.tcp_recv_buf, Some(65536));
        assert_eq!(o.dscp, Some(46));
        assert_eq!(o.h2_ping_interval, Some(Duration::from_secs(10)));
        assert_eq!(o.max_h2_streams, 8);
    }

    #[test]
    fn defaults_are_plain_http1_and_a_name_is_the_default_sni() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let plain = build_peer(addr, None, &PeerOptions::default(), &timeouts()).unwrap();
        assert!(!plain.is_tls());
        assert_eq!(plain.options.alpn, ALPN::H1);
        let tls = PeerOptions {
            tls: Some(true),
            ..PeerOptions::default()
        };
        let named = build_peer(addr, Some("api.internal"), &tls, &timeouts()).unwrap();
        assert_eq!(named.sni, "api.internal");
        assert!(named.options.verify_cert && named.options.verify_hostname);
    }

    #[test]
    fn unreadable_certificate_files_are_errors() {
        let opts = PeerOptions {
            tls: Some(true),
            sni: Some("ca.example".into()),
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..PeerOptions::default()
        };
        let addr: SocketAddr = "127.0.0.1:443".parse().unwrap();
        let err = build_peer(addr, None, &opts, &timeouts()).unwrap_err();
        assert!(err.contains("ca_file /nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn tls_to_an_ip_without_sni_is_refused_unless_verification_is_off() {
        let addr: SocketAddr = "127.0.0.1:443".parse().unwrap();
        let mut opts = PeerOptions {
            tls: Some(true),
            ..PeerOptions::default()
        };
        let err = build_peer(addr, None, &opts, &timeouts()).unwrap_err();
        assert!(err.contains("needs `sni`"), "{err}");
        opts.verify_cert = Some(false);
        assert!(build_peer(addr, None, &opts, &timeouts()).is_ok());
    }
}

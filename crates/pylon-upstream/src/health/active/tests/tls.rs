//! HTTPS and TLS probes against an OpenSSL responder with certificates made at test time:
//! the peer's `tls`, SNI, CA and client certificate are what the probe uses.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{NameType, Ssl, SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509NameBuilder, X509};
use pingora::tls::tokio_ssl::SslStream;
use pingora::utils::tls::CertKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

struct Pki {
    ca: X509,
    leaf: X509,
    key: PKey<Private>,
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    PKey::from_ec_key(EcKey::generate(&group).expect("ec key")).expect("pkey")
}

/// A CA, and one leaf it signs for `localhost` (the server's and the client's certificate).
fn pki() -> Pki {
    let build = |cn: &str,
                 serial: u32,
                 key: &PKey<Private>,
                 issuer: Option<(&X509, &PKey<Private>)>| {
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", cn).expect("cn");
        let name = name.build();
        let mut cert = X509::builder().expect("builder");
        cert.set_version(2).expect("version");
        let serial = BigNum::from_u32(serial)
            .and_then(|n| n.to_asn1_integer())
            .expect("serial");
        cert.set_serial_number(&serial).expect("serial");
        cert.set_subject_name(&name).expect("subject");
        cert.set_issuer_name(issuer.map_or(&*name, |(ca, _)| ca.subject_name()))
            .expect("issuer");
        cert.set_pubkey(key).expect("pubkey");
        cert.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
            .expect("not before");
        cert.set_not_after(&Asn1Time::days_from_now(2).expect("time"))
            .expect("not after");
        match issuer {
            None => {
                cert.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
                    .expect("bc");
                let usage = KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build();
                cert.append_extension(usage.expect("ku")).expect("ku");
            }
            Some((ca, _)) => {
                let san = SubjectAlternativeName::new()
                    .dns("localhost")
                    .build(&cert.x509v3_context(Some(ca), None))
                    .expect("san");
                cert.append_extension(san).expect("san");
            }
        }
        let signer = issuer.map_or(key, |(_, k)| k);
        cert.sign(signer, MessageDigest::sha256()).expect("sign");
        cert.build()
    };
    let ca_key = key();
    let ca = build("Pylon test CA", 1, &ca_key, None);
    let key = key();
    let leaf = build("localhost", 2, &key, Some((&ca, &ca_key)));
    Pki { ca, leaf, key }
}

/// Answers 200 over TLS; remembers the SNI of each completed handshake. With `client_ca`,
/// requires a client certificate signed by it.
struct TlsResponder {
    addr: SocketAddr,
    snis: Arc<Mutex<Vec<Option<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_responder(pki: &Pki, client_ca: Option<&X509>) -> TlsResponder {
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
    acceptor.set_certificate(&pki.leaf).expect("cert");
    acceptor.set_private_key(&pki.key).expect("key");
    if let Some(ca) = client_ca {
        let mut store = X509StoreBuilder::new().expect("store");
        store.add_cert(ca.clone()).expect("ca");
        acceptor
            .set_verify_cert_store(store.build())
            .expect("verify store");
        acceptor.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    let acceptor = Arc::new(acceptor.build());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let snis = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&snis);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (Arc::clone(&acceptor), Arc::clone(&seen));
            tokio::spawn(async move {
                let Ok(ssl) = Ssl::new(acceptor.context()) else {
                    return;
                };
                let Ok(mut tls) = SslStream::new(ssl, tcp) else {
                    return;
                };
                if Pin::new(&mut tls).accept().await.is_err() {
                    return;
                }
                let sni = tls
                    .ssl()
                    .servername(NameType::HOST_NAME)
                    .map(str::to_string);
                seen.lock().expect("lock").push(sni);
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let response = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    TlsResponder { addr, snis, task }
}

fn https_peer(addr: SocketAddr, sni: &str, ca: &X509) -> HttpPeer {
    let mut peer = HttpPeer::new(addr, true, sni.to_string());
    peer.options.ca = Some(Arc::new(vec![ca.clone()].into_boxed_slice()));
    peer
}

#[tokio::test]
async fn https_probe_verifies_the_server_against_the_peer_ca_and_sends_sni() {
    let pki = pki();
    let responder = tls_responder(&pki, None).await;
    let connector = Connector::new(None);
    let check = http_check(Vec::new());
    let peer = https_peer(responder.addr, "localhost", &pki.ca);
    assert_eq!(probe(&check, &peer, &connector).await, Ok(()));
    // The responder records the SNI before it reads the request, so it is there by now.
    assert_eq!(
        *responder.snis.lock().expect("lock"),
        [Some("localhost".to_string())]
    );
    assert_eq!(
        probe(&tcp_check(), &peer, &connector).await,
        Ok(()),
        "TCP check = TLS handshake"
    );
}

#[tokio::test]
async fn https_probe_fails_on_an_untrusted_or_misnamed_certificate() {
    let pki = pki();
    let responder = tls_responder(&pki, None).await;
    let connector = Connector::new(None);
    let check = http_check(Vec::new());

    let untrusted = HttpPeer::new(responder.addr, true, "localhost".to_string());
    let err = probe(&check, &untrusted, &connector)
        .await
        .expect_err("unknown CA");
    assert!(err.starts_with("TLS"), "{err}");

    let misnamed = https_peer(responder.addr, "other.example", &pki.ca);
    let err = probe(&tcp_check(), &misnamed, &connector)
        .await
        .expect_err("wrong name");
    assert!(err.starts_with("TLS"), "{err}");
    assert!(
        responder.snis.lock().expect("lock").is_empty(),
        "no handshake completed"
    );
}

#[tokio::test]
async fn https_probe_presents_the_peer_client_certificate() {
    let pki = pki();
    let responder = tls_responder(&pki, Some(&pki.ca)).await;
    let connector = Connector::new(None);
    let check = http_check(Vec::new());

    let mut peer = https_peer(responder.addr, "localhost", &pki.ca);
    let err = probe(&check, &peer, &connector)
        .await
        .expect_err("no client certificate");
    eprintln!("without a client certificate: {err}");

    peer.client_cert_key = Some(Arc::new(CertKey::new(
        vec![pki.leaf.clone()],
        pki.key.clone(),
    )));
    assert_eq!(probe(&check, &peer, &connector).await, Ok(()));
}

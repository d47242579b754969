//! Certificates made in the test: a CA, a server certificate for given names, and a client
//! certificate, all EC P-256, written as PEM files into a temp dir.

use super::tempdir::TempDir;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509NameBuilder, X509};
use std::path::PathBuf;

pub struct Pki {
    pub dir: TempDir,
    pub ca_file: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    PKey::from_ec_key(EcKey::generate(&group).expect("ec key")).expect("pkey")
}

fn cert(
    cn: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    configure: impl FnOnce(&mut openssl::x509::X509Builder),
) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", cn).expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    let mut serial = BigNum::new().expect("bn");
    serial.rand(64, MsbOption::MAYBE_ZERO, false).expect("rand");
    b.set_serial_number(&serial.to_asn1_integer().expect("serial"))
        .expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name()))
        .expect("issuer");
    b.set_pubkey(key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(2).expect("time"))
        .expect("na");
    configure(&mut b);
    let signer = issuer.map_or(key, |(_, k)| k);
    b.sign(signer, MessageDigest::sha256()).expect("sign");
    b.build()
}

impl Pki {
    /// A CA, a server certificate valid for `server_names` (DNS names or IPs), and a client
    /// certificate with CN `client_cn`.
    pub fn generate(server_names: &[&str], client_cn: &str) -> Pki {
        let dir = TempDir::new("pki");
        let ca_key = key();
        let ca = cert("Pylon Test CA", &ca_key, None, |b| {
            b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
                .expect("ext");
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .expect("ku"),
            )
            .expect("ext");
        });
        let server_key = key();
        let server = cert(server_names[0], &server_key, Some((&ca, &ca_key)), |b| {
            let ctx = b.x509v3_context(Some(&ca), None);
            let mut san = SubjectAlternativeName::new();
            for n in server_names {
                if n.parse::<std::net::IpAddr>().is_ok() {
                    san.ip(n);
                } else {
                    san.dns(n);
                }
            }
            let san = san.build(&ctx).expect("san");
            b.append_extension(san).expect("ext");
            b.append_extension(ExtendedKeyUsage::new().server_auth().build().expect("eku"))
                .expect("ext");
        });
        let client_key = key();
        let client = cert(client_cn, &client_key, Some((&ca, &ca_key)), |b| {
            b.append_extension(ExtendedKeyUsage::new().client_auth().build().expect("eku"))
                .expect("ext");
        });
        let pem = |x: &X509| String::from_utf8(x.to_pem().expect("pem")).expect("utf8");
        let key_pem = |k: &PKey<Private>| {
            String::from_utf8(k.private_key_to_pem_pkcs8().expect("pem")).expect("utf8")
        };
        let ca_file = dir.write("ca.pem", &pem(&ca));
        let server_cert = dir.write("server.pem", &pem(&server));
        let server_key = dir.write("server.key", &key_pem(&server_key));
        let client_cert = dir.write("client.pem", &pem(&client));
        let client_key = dir.write("client.key", &key_pem(&client_key));
        Pki {
            dir,
            ca_file,
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }
}

//! Test certificates made at test time with rcgen: a CA, a server certificate for `localhost`,
//! `127.0.0.1` and `*.test.google.fr` (the interop suite's `server_host_override` name), a
//! client certificate, and the bad cases (another CA's server, an expired server).

#![allow(dead_code, reason = "each test binary uses part of the set")]

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate chain (leaf first, PEM) and its private key (PEM).
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) cert: String,
    pub(crate) key: String,
}

/// Everything a TLS test needs, in PEM.
#[derive(Debug, Clone)]
pub(crate) struct TestPki {
    /// The CA every good certificate chains to.
    pub(crate) ca: String,
    /// Valid for `localhost`, `127.0.0.1`, `foo.test.google.fr` (and `*.test.google.fr`).
    pub(crate) server: Identity,
    /// A client certificate whose identity is the DNS name `client.anygrpc.test`.
    pub(crate) client: Identity,
    /// A server certificate for the same names, from a CA nobody trusts.
    pub(crate) untrusted_server: Identity,
    /// A server certificate for the same names that expired in 2001.
    pub(crate) expired_server: Identity,
}

/// The names the server certificates are valid for.
pub(crate) const SERVER_NAMES: &[&str] = &["localhost", "127.0.0.1", "*.test.google.fr"];
/// The client certificate's identity.
pub(crate) const CLIENT_IDENTITY: &str = "client.anygrpc.test";

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    expired: bool,
) -> Identity {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "anygrpc test");
    params.extended_key_usages = vec![usage];
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Identity {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

impl TestPki {
    /// A fresh set of certificates.
    pub(crate) fn new() -> Self {
        let ca = ca("anygrpc test CA");
        let rogue = ca_rogue();
        let server = |issuer, expired| {
            leaf(
                issuer,
                SERVER_NAMES,
                ExtendedKeyUsagePurpose::ServerAuth,
                expired,
            )
        };
        Self {
            ca: ca.pem(),
            server: server(&ca, false),
            client: leaf(
                &ca,
                &[CLIENT_IDENTITY],
                ExtendedKeyUsagePurpose::ClientAuth,
                false,
            ),
            untrusted_server: server(&rogue, false),
            expired_server: server(&ca, true),
        }
    }
}

fn ca_rogue() -> CertifiedIssuer<'static, KeyPair> {
    ca("some other CA")
}

//! The peer identity of a verified client certificate, as gRPC C-core reports it.

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::auth::AuthContext;

/// The auth context of a TLS connection whose peer presented `chain` (DER, leaf first,
/// already verified by rustls; empty when it presented none).
pub(crate) fn auth_context(chain: &[&[u8]]) -> AuthContext {
    let mut context = AuthContext {
        transport_security_type: "ssl",
        peer_certificate_chain: chain.iter().map(|der| der.to_vec()).collect(),
        ..AuthContext::default()
    };
    let certificate = chain.first().copied();
    let Some(Ok((_, cert))) = certificate.map(X509Certificate::from_der) else {
        return context;
    };
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(s) | GeneralName::URI(s) | GeneralName::RFC822Name(s) => {
                    sans.push((*s).to_string());
                }
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_address(bytes) {
                        sans.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    if !sans.is_empty() {
        context.peer_identity_property_name = Some("x509_subject_alternative_name");
        context.peer_identities = sans;
    } else if let Some(cn) = cert
        .subject()
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok())
    {
        context.peer_identity_property_name = Some("x509_common_name");
        context.peer_identities = vec![cn.to_string()];
    }
    context
}

/// An iPAddress SAN: 4 or 16 octets (RFC 5280 §4.2.1.6).
fn ip_address(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(params: rcgen::CertificateParams) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn identities_are_the_subject_alternative_names() {
        let mut params = rcgen::CertificateParams::new(vec!["client.example".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("10.0.0.1".parse().unwrap()));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ignored when there are SANs");
        let leaf = certificate(params);
        let context = auth_context(&[&leaf, b"the issuer"]);
        assert_eq!(
            context.peer_certificate_chain,
            [leaf, b"the issuer".to_vec()]
        );
        assert_eq!(context.transport_security_type, "ssl");
        assert_eq!(
            context.peer_identity_property_name,
            Some("x509_subject_alternative_name")
        );
        assert_eq!(context.peer_identities, ["client.example", "10.0.0.1"]);
        assert!(context.is_peer_authenticated());
    }

    #[test]
    fn without_sans_the_identity_is_the_common_name() {
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "just a name");
        let context = auth_context(&[&certificate(params)]);
        assert_eq!(
            context.peer_identity_property_name,
            Some("x509_common_name")
        );
        assert_eq!(context.peer_identities, ["just a name"]);
    }

    #[test]
    fn no_or_unparsable_certificate_means_no_identity() {
        for chain in [&[][..], &[&b"not DER"[..]][..]] {
            let context = auth_context(chain);
            assert_eq!(context.transport_security_type, "ssl");
            assert!(!context.is_peer_authenticated());
            assert_eq!(context.peer_identity_property_name, None);
        }
    }

    #[test]
    fn ip_addresses_have_4_or_16_octets() {
        assert_eq!(
            ip_address(&[127, 0, 0, 1]),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        assert!(ip_address(&[0; 16]).is_some_and(|ip| ip.is_ipv6()));
        assert_eq!(ip_address(&[1, 2, 3]), None);
        assert_eq!(ip_address(&[0; 17]), None);
    }
}

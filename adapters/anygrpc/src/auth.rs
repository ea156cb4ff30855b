//! The authenticated identity of a call's peer (grpc's `AuthContext`).

/// What the transport established about the peer of a server connection: for TLS, the
/// identities from the verified client certificate.
///
/// Identities follow gRPC C-core: the certificate's subject alternative names (DNS names, URIs,
/// e-mail addresses and IP addresses, in certificate order) under the property
/// `x509_subject_alternative_name`, or, when it has none, the subject's common name under
/// `x509_common_name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthContext {
    /// `"ssl"` for TLS connections.
    pub transport_security_type: &'static str,
    /// The property the identities come from, `None` when the peer presented no certificate.
    pub peer_identity_property_name: Option<&'static str>,
    /// The peer's identities; empty when the peer is not authenticated.
    pub peer_identities: Vec<String>,
    /// The certificate chain the peer presented, leaf first, each DER-encoded (C-core's
    /// `x509_pem_cert_chain`, undecoded); empty when it presented none.
    pub peer_certificate_chain: Vec<Vec<u8>>,
}

impl AuthContext {
    /// `true` when the peer proved an identity (presented a certificate that was verified).
    pub fn is_peer_authenticated(&self) -> bool {
        !self.peer_identities.is_empty()
    }
}

//! `-insecure`: TLS that accepts whatever certificate the server shows, as grpcurl's flag
//! does, for servers with self-signed certificates. The handshake's signatures are still
//! checked against the certificate the server sent; only who issued it is not.

use std::sync::Arc;

use anygrpc_tokio::ChannelCredentials;
use anygrpc_tokio::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use anygrpc_tokio::rustls::crypto::{self, CryptoProvider};
use anygrpc_tokio::rustls::pki_types::pem::PemObject;
use anygrpc_tokio::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use anygrpc_tokio::rustls::{self, ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::error::CliError;

/// Accepts any server certificate; checks the handshake's signatures with `0`'s algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Credentials that skip verifying the server, presenting `client` (key and chain, PEM) when
/// given.
pub(crate) fn credentials(client: Option<(&[u8], &[u8])>) -> Result<ChannelCredentials, CliError> {
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::usage(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)));
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((key, chain)) => {
            let chain = CertificateDer::pem_slice_iter(chain)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CliError::usage(format!("-cert: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| CliError::usage(format!("-key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| CliError::usage(format!("-cert and -key: {e}")))?
        }
    };
    Ok(ChannelCredentials::from_rustls(config))
}

//! Channel and server credentials: rustls configurations built from PEM, grpc-style.

use std::fmt;
use std::sync::Arc;

use futures_rustls::rustls::crypto::{CryptoProvider, ring};
use futures_rustls::rustls::server::WebPkiClientVerifier;
use futures_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::ALPN_H2;

/// Invalid credentials: unreadable PEM, a key that does not match, no usable root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsError(String);

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CredentialsError {}

fn error(what: impl fmt::Display) -> CredentialsError {
    CredentialsError(what.to_string())
}

/// The ring provider, explicitly: no process-wide default has to be installed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, CredentialsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("{what}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(error(format!("{what}: no CERTIFICATE in the PEM")));
    }
    Ok(certs)
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, CredentialsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| error(format!("private key: {e}")))
}

fn roots(pem: &[u8], what: &str) -> Result<RootCertStore, CredentialsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(pem, what)? {
        store
            .add(cert)
            .map_err(|e| error(format!("{what}: unusable certificate: {e}")))?;
    }
    Ok(store)
}

/// The operating system's trusted roots, read from its store (`SSL_CERT_FILE` /
/// `SSL_CERT_DIR` or the platform's files) when the credentials are built: no network.
fn system_roots() -> Result<RootCertStore, CredentialsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (_added, _ignored) = store.add_parsable_certificates(found.certs);
    if store.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none installed".to_string(), ToString::to_string);
        return Err(error(format!("no system root certificates: {why}")));
    }
    Ok(store)
}

/// How a channel secures its connections (grpc's `ssl_channel_credentials`). Cheap to clone.
#[derive(Clone)]
pub struct ChannelCredentials {
    pub(crate) config: Arc<ClientConfig>,
}

impl fmt::Debug for ChannelCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelCredentials").finish_non_exhaustive()
    }
}

impl ChannelCredentials {
    /// TLS verifying the server against `root_pem` (PEM certificates), or the system roots
    /// when `None`; with `client_key_pem` and `client_cert_chain_pem` both given, the client
    /// presents that certificate (mutual TLS). Offers ALPN `h2` and refuses servers that do
    /// not select it.
    pub fn ssl(
        root_pem: Option<&[u8]>,
        client_key_pem: Option<&[u8]>,
        client_cert_chain_pem: Option<&[u8]>,
    ) -> Result<Self, CredentialsError> {
        let roots = match root_pem {
            Some(pem) => roots(pem, "root certificates")?,
            None => system_roots()?,
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(error)?
            .with_root_certificates(roots);
        let config = match (client_key_pem, client_cert_chain_pem) {
            (None, None) => builder.with_no_client_auth(),
            (Some(key), Some(chain)) => builder
                .with_client_auth_cert(
                    certificates(chain, "client certificate chain")?,
                    private_key(key)?,
                )
                .map_err(|e| error(format!("client certificate: {e}")))?,
            _ => {
                return Err(error(
                    "a client certificate needs both its private key and its chain",
                ));
            }
        };
        Ok(Self::from_rustls(config))
    }

    /// Credentials from a rustls configuration; its ALPN list is replaced by `h2`.
    pub fn from_rustls(mut config: ClientConfig) -> Self {
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Self {
            config: Arc::new(config),
        }
    }
}

/// How a server secures a port (grpc's `ssl_server_credentials`). Cheap to clone.
#[derive(Clone)]
pub struct ServerCredentials {
    pub(crate) config: Arc<ServerConfig>,
}

impl fmt::Debug for ServerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCredentials").finish_non_exhaustive()
    }
}

impl ServerCredentials {
    /// TLS with the certificate chain `cert_chain_pem` and its `key_pem`. With
    /// `client_root_pem`, client certificates are asked for and verified against it; with
    /// `require_client_auth` too, clients without one are refused. Requires ALPN `h2`.
    pub fn ssl(
        key_pem: &[u8],
        cert_chain_pem: &[u8],
        client_root_pem: Option<&[u8]>,
        require_client_auth: bool,
    ) -> Result<Self, CredentialsError> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(error)?;
        let builder = match client_root_pem {
            None if require_client_auth => {
                return Err(error(
                    "require_client_auth needs root certificates to verify clients with",
                ));
            }
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let roots = Arc::new(roots(pem, "client root certificates")?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
                let verifier = if require_client_auth {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                builder.with_client_cert_verifier(verifier.build().map_err(error)?)
            }
        };
        let config = builder
            .with_single_cert(
                certificates(cert_chain_pem, "certificate chain")?,
                private_key(key_pem)?,
            )
            .map_err(|e| error(format!("server certificate: {e}")))?;
        Ok(Self::from_rustls(config))
    }

    /// Credentials from a rustls configuration; its ALPN list is replaced by `h2`.
    pub fn from_rustls(mut config: ServerConfig) -> Self {
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Self {
            config: Arc::new(config),
        }
    }
}

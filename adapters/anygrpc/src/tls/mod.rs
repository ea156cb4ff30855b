//! TLS for channels and servers, done once for every executor: any [`Transport`](crate::runtime::Transport) is wrapped in
//! a rustls session (ring provider) through `futures-rustls`.
//!
//! - [`ChannelCredentials`] (grpc's `ssl_channel_credentials`): roots from PEM or the system
//!   store, an optional client certificate; ALPN `h2` is offered and required.
//! - [`ServerCredentials`] (grpc's `ssl_server_credentials`): a certificate chain and key, and
//!   optionally roots to verify (or require) client certificates.
//!
//! What a handshake authenticated about the peer is an [`AuthContext`](crate::AuthContext)
//! (`crate::auth`, always compiled: the `Transport` trait does not change with the feature).

#[cfg(feature = "tls")]
mod client;
#[cfg(feature = "tls")]
mod credentials;
#[cfg(feature = "tls")]
mod identity;
#[cfg(feature = "tls")]
mod server;

#[cfg(feature = "tls")]
pub(crate) use client::{connect, server_name_of};
#[cfg(feature = "tls")]
pub use credentials::{ChannelCredentials, CredentialsError, ServerCredentials};
/// The rustls version anygrpc uses, for building custom configurations
/// ([`ChannelCredentials::from_rustls`], [`ServerCredentials::from_rustls`]).
#[cfg(feature = "tls")]
pub use futures_rustls::rustls;
#[cfg(feature = "tls")]
pub(crate) use server::{TlsListener, secure_accepted};

/// The ALPN protocol id of HTTP/2 over TLS (RFC 9113 §3.2): offered by clients, required of
/// both sides (gRPC over TLS is h2 only).
#[cfg(feature = "tls")]
const ALPN_H2: &[u8] = b"h2";

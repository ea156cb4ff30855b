//! How a channel opens the byte stream of one connection: by default the runtime dials the
//! resolved address (TCP or Unix); a [`Connector`] of the application's replaces that, seeing
//! the target's host name as well as the address (proxies, tunnels, sockets of its own).
//! TLS, when the channel has credentials, runs over whatever the connector returns.

use std::fmt;
use std::io;
use std::sync::Arc;

use super::resolver::{Address, Endpoint};
use crate::runtime::{BoxFuture, RuntimeRef, Transport};

/// What a [`Connector`] is asked to open: one connection of a channel, to one address its
/// resolver gave.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectRequest {
    /// The address to reach, as the resolver gave it (its endpoint and attributes).
    pub address: Address,
    /// The target's host and port as the target names them, before any resolution
    /// (`example.com:443` for `dns:///example.com`, `10.0.0.1:80` for `ipv4:10.0.0.1:80`); for
    /// targets that name no host (`unix:`, a custom scheme's), the channel's authority. This
    /// is what an HTTP CONNECT proxy is asked for (gRFC A1).
    pub target_host: String,
    /// The `:authority` the channel's calls carry (and, with TLS, the name the server's
    /// certificate is checked against, unless overridden).
    pub authority: String,
    /// The channel's runtime, to dial with.
    pub runtime: RuntimeRef,
}

impl ConnectRequest {
    /// Opens the connection as a channel without a connector does: the runtime dials a TCP
    /// address or a Unix socket; an [`Endpoint::Named`] cannot be dialled (`Unsupported`).
    /// For connectors that only wrap or tune the default.
    pub fn connect_directly(&self) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        dial(&self.runtime, &self.address.endpoint)
    }
}

/// Opens the byte streams of a channel's connections in place of the runtime: given where
/// to go ([`ConnectRequest`]), returns a connected [`Transport`] (or the error that fails
/// this connection attempt: the channel reports it as UNAVAILABLE and retries on its
/// backoff). The channel runs it under its connect timeout, and runs TLS over the result
/// when it has credentials. A closure `Fn(ConnectRequest) -> BoxFuture<..>` is a connector.
///
/// ```
/// use anygrpc::{Channel, ConnectRequest, testing::MemoryRuntime};
///
/// let rt = MemoryRuntime::new();
/// // Every connection of this channel is logged, then dialled as usual.
/// let channel = Channel::builder("dns:///svc.example:50051", rt.handle())
///     .connector(|request: ConnectRequest| {
///         println!("dialling {} for {}", request.address.endpoint, request.target_host);
///         request.connect_directly()
///     })
///     .build()
///     .unwrap();
/// # drop(channel);
/// ```
pub trait Connector: Send + Sync + 'static {
    /// Opens one connection.
    fn connect(
        &self,
        request: ConnectRequest,
    ) -> BoxFuture<'static, io::Result<Box<dyn Transport>>>;
}

impl<F> Connector for F
where
    F: Fn(ConnectRequest) -> BoxFuture<'static, io::Result<Box<dyn Transport>>>
        + Send
        + Sync
        + 'static,
{
    fn connect(
        &self,
        request: ConnectRequest,
    ) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        self(request)
    }
}

/// A channel's connector, shared by its subchannels.
#[derive(Clone)]
pub(crate) struct SharedConnector(pub(crate) Arc<dyn Connector>);

impl fmt::Debug for SharedConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connector")
    }
}

/// The runtime's dial of `endpoint`.
pub(crate) fn dial(
    runtime: &RuntimeRef,
    endpoint: &Endpoint,
) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
    match endpoint {
        Endpoint::Tcp(addr) => runtime.connect(*addr),
        Endpoint::Unix(path) => runtime.connect_unix(path.clone()),
        Endpoint::Named(name) => {
            let error = io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{name:?} can only be reached through the channel's connector"),
            );
            Box::pin(std::future::ready(Err(error)))
        }
    }
}

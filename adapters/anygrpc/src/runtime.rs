//! The seam between anygrpc and an executor: spawn, timers, clock, sockets, name resolution.
//!
//! Everything else (the connection driver, calls, channels, servers) is written once against
//! this trait and `futures-io`. An adapter crate implements it in a few hundred lines.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a connection to one address is opened.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix domain socket's path.
    Unix(String),
    /// A place only the channel's [`Connector`](crate::Connector) knows how to reach (an
    /// in-process server, a vsock port, a socket handed over by a supervisor): the runtime
    /// cannot dial it, so a channel without such a connector fails its connection attempts
    /// with `Unsupported`.
    Named(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
            Endpoint::Unix(path) => write!(f, "unix:{path}"),
            Endpoint::Named(name) => f.write_str(name),
        }
    }
}

/// A byte stream to a peer: a TCP or Unix socket, a TLS stream, an in-memory pipe.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// The peer's address, for `ServicerContext::peer` and logs (`ipv4:1.2.3.4:5`, ...).
    fn peer(&self) -> String {
        String::from("unknown")
    }
    /// What the transport authenticated about the peer (TLS: the client certificate's
    /// identities); `None` for cleartext transports.
    fn auth_context(&self) -> Option<Arc<crate::auth::AuthContext>> {
        None
    }
}

/// A listening socket that yields transports.
pub trait Listener: Send + 'static {
    /// Waits for the next connection.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Box<dyn Transport>>>;
    /// The address actually bound (the real port when port 0 was asked for). A listener
    /// without a socket address (a Unix socket) returns an `Unsupported` error here and says
    /// where it listens in [`local_endpoint`](Self::local_endpoint).
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Where the listener listens, whatever its kind: [`Endpoint::Tcp`] of
    /// [`local_addr`](Self::local_addr) unless the listener says otherwise (a Unix socket
    /// listener gives [`Endpoint::Unix`] with its path).
    fn local_endpoint(&self) -> io::Result<Endpoint> {
        self.local_addr().map(Endpoint::Tcp)
    }
}

/// What anygrpc needs from an executor.
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: BoxFuture<'static, ()>);
    /// A future that completes at `deadline` (at once if it passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()>;
    /// The current time. Overridden by simulated runtimes so that deadlines, backoff and
    /// keepalive run on a manual clock.
    fn now(&self) -> Instant {
        Instant::now()
    }
    /// Opens a TCP connection (with TCP_NODELAY set).
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Transport>>>;
    /// Opens a Unix-domain socket connection (`unix:path` targets).
    fn connect_unix(&self, path: String) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        let _ = path;
        Box::pin(async {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "unix sockets are not supported by this runtime",
            ))
        })
    }
    /// Binds a TCP listener.
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>>;
    /// Binds a Unix-domain socket listener at `path` (`unix:path` server ports). A stale
    /// socket file at `path` (one nobody accepts on) is replaced, as gRPC's C-core does; the
    /// listener removes its socket file when dropped. Its transports name their peer
    /// `unix:` (an unnamed client socket) or `unix:<path>`.
    fn listen_unix(&self, path: String) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        let _ = path;
        Box::pin(async {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "unix sockets are not supported by this runtime",
            ))
        })
    }
    /// Resolves a host name to addresses.
    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>>;
}

/// A shared runtime handle.
pub type RuntimeRef = Arc<dyn Runtime>;

/// A socket address as gRPC names peers: `ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`.
pub fn grpc_peer(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("ipv4:{a}"),
        SocketAddr::V6(a) => format!("ipv6:{a}"),
    }
}

/// A Unix socket's peer as gRPC names it: `unix:<path>`, or `unix:` for an unnamed socket
/// (a client's, which binds no path).
pub fn grpc_unix_peer(path: Option<&std::path::Path>) -> String {
    match path {
        Some(path) if !path.as_os_str().is_empty() => format!("unix:{}", path.display()),
        _ => String::from("unix:"),
    }
}

/// Waits for the next connection on `listener`.
pub(crate) async fn accept(listener: &mut dyn Listener) -> io::Result<Box<dyn Transport>> {
    std::future::poll_fn(|cx| listener.poll_accept(cx)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_named_like_grpc() {
        assert_eq!(
            grpc_peer("127.0.0.1:5000".parse().unwrap()),
            "ipv4:127.0.0.1:5000"
        );
        assert_eq!(grpc_peer("[::1]:5000".parse().unwrap()), "ipv6:[::1]:5000");
        assert_eq!(grpc_unix_peer(None), "unix:");
        assert_eq!(grpc_unix_peer(Some("".as_ref())), "unix:");
        assert_eq!(
            grpc_unix_peer(Some("/run/s.sock".as_ref())),
            "unix:/run/s.sock"
        );
    }
}

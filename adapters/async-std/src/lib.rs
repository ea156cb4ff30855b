//! anygrpc on async-std.
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052): this binding is kept for existing
//! async-std programs and kept as thin as possible. New code should use `anygrpc-smol`, whose
//! reactor is the one async-std runs on.
//!
//! Everything of [`anygrpc`] is re-exported: change one `use` line to switch executors.
//!
//! ```no_run
//! // A client in an async-std program.
//! async fn hello() -> anygrpc_async_std::Result<String> {
//!     let channel = anygrpc_async_std::insecure_channel("localhost:50051")?;
//!     let say = channel.unary_unary::<String, String>("/echo.Echo/Say");
//!     Ok(say.call("hello".to_string()).await?)
//! }
//! # let _ = hello;
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations)]

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use async_std::net::{TcpListener, TcpStream, ToSocketAddrs};
use futures_io::{AsyncRead, AsyncWrite};

/// The `anygrpc` crate itself, for code that names it by path (generated code with
/// `anygrpc_build::Builder::anygrpc_path`).
pub use anygrpc;
pub use anygrpc::*;

/// The async-std runtime: `async_std::task::spawn`, `async_std::task::sleep`, `async_std::net`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

/// A shared handle to [`AsyncStdRuntime`], for channels and servers.
pub fn runtime() -> RuntimeRef {
    Arc::new(AsyncStdRuntime)
}

// ---- Conveniences: grpc.aio's module functions, on this runtime.

/// A cleartext (h2c) channel to `target` on this runtime, as grpc.aio's `insecure_channel`.
/// For options, use [`Channel::builder`] with [`runtime()`].
pub fn insecure_channel(target: &str) -> Result<Channel, TargetError> {
    Channel::builder(target, runtime()).build()
}

/// A TLS channel to `target` on this runtime, as grpc.aio's `secure_channel`: the server is
/// verified with `credentials` (see [`ChannelCredentials::ssl`]) and must speak ALPN `h2`.
/// For options (`server_host_override`, ...), use [`Channel::builder`] with [`runtime()`] and
/// [`ChannelBuilder::credentials`]. Feature `tls` (on by default).
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub fn secure_channel(
    target: &str,
    credentials: ChannelCredentials,
) -> Result<Channel, TargetError> {
    Channel::builder(target, runtime())
        .credentials(credentials)
        .build()
}

/// A server on this runtime, as grpc.aio's `server()`.
pub fn server() -> Server {
    Server::new(runtime())
}

impl Runtime for AsyncStdRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        // Dropping the JoinHandle detaches the task.
        drop(async_std::task::spawn(task));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        // async-std has no sleep_until; its sleep is an async-io timer, so waiting the remaining
        // duration measured now is the same thing.
        Box::pin(async_std::task::sleep(
            deadline.saturating_duration_since(Instant::now()),
        ))
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(Stream {
                io: stream,
                peer: anygrpc::__private::grpc_peer(addr),
            }) as Box<dyn Transport>)
        })
    }

    #[cfg(unix)]
    fn connect_unix(&self, path: String) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        Box::pin(async move {
            let stream = async_std::os::unix::net::UnixStream::connect(&path).await?;
            Ok(Box::new(Stream {
                io: stream,
                peer: format!("unix:{path}"),
            }) as Box<dyn Transport>)
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = Arc::new(TcpListener::bind(addr).await?);
            Ok(Box::new(AsyncStdListener {
                listener,
                accept: None,
            }) as Box<dyn Listener>)
        })
    }

    #[cfg(unix)]
    fn listen_unix(&self, path: String) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let file = anygrpc::__private::UnixSocketFile::claim(&path)?;
            let listener = async_std::os::unix::net::UnixListener::bind(&path).await?;
            Ok(Box::new(AsyncStdUnixListener {
                listener: Arc::new(listener),
                accept: None,
                file: file.bound()?,
                path,
            }) as Box<dyn Listener>)
        })
    }

    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok((host.as_str(), port).to_socket_addrs().await?.collect()) })
    }
}

/// A Unix-socket listener; keeps the pending accept between polls, and removes its socket
/// file when dropped.
#[cfg(unix)]
struct AsyncStdUnixListener {
    listener: Arc<async_std::os::unix::net::UnixListener>,
    accept: Option<UnixAccept>,
    file: anygrpc::__private::UnixSocketFile,
    path: String,
}

#[cfg(unix)]
type UnixAccept = BoxFuture<
    'static,
    io::Result<(
        async_std::os::unix::net::UnixStream,
        async_std::os::unix::net::SocketAddr,
    )>,
>;

#[cfg(unix)]
impl fmt::Debug for AsyncStdUnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncStdUnixListener")
            .field("path", &self.file.path())
            .finish()
    }
}

#[cfg(unix)]
impl Listener for AsyncStdUnixListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Box<dyn Transport>>> {
        let accept = self.accept.get_or_insert_with(|| {
            let listener = Arc::clone(&self.listener);
            Box::pin(async move { listener.accept().await })
        });
        let result = ready!(accept.as_mut().poll(cx));
        self.accept = None;
        let (stream, peer) = result?;
        Poll::Ready(Ok(Box::new(Stream {
            io: stream,
            peer: anygrpc::__private::grpc_unix_peer(peer.as_pathname()),
        })))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a unix socket has no socket address",
        ))
    }

    fn local_endpoint(&self) -> io::Result<anygrpc::resolver::Endpoint> {
        Ok(anygrpc::resolver::Endpoint::Unix(self.path.clone()))
    }
}

/// A TCP or Unix socket as an anygrpc [`Transport`].
struct Stream<S> {
    io: S,
    peer: String,
}

impl<S> fmt::Debug for Stream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream").field("peer", &self.peer).finish()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + ShutdownWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Shuts down the writing half (FIN): the peer reads EOF. async-std's own `poll_close`
    /// only flushes.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        Poll::Ready(self.io.shutdown_write())
    }
}

/// Sockets whose writing half can be shut down.
trait ShutdownWrite {
    fn shutdown_write(&self) -> io::Result<()>;
}

impl ShutdownWrite for TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

#[cfg(unix)]
impl ShutdownWrite for async_std::os::unix::net::UnixStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl<S: AsyncRead + AsyncWrite + ShutdownWrite + Send + Unpin + 'static> Transport for Stream<S> {
    fn peer(&self) -> String {
        self.peer.clone()
    }
}

/// A TCP listener; keeps the pending accept between polls.
struct AsyncStdListener {
    listener: Arc<TcpListener>,
    accept: Option<BoxFuture<'static, io::Result<(TcpStream, SocketAddr)>>>,
}

impl fmt::Debug for AsyncStdListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncStdListener")
            .field("local_addr", &self.listener.local_addr().ok())
            .finish()
    }
}

impl Listener for AsyncStdListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Box<dyn Transport>>> {
        let accept = self.accept.get_or_insert_with(|| {
            let listener = Arc::clone(&self.listener);
            Box::pin(async move { listener.accept().await })
        });
        let result = ready!(accept.as_mut().poll(cx));
        self.accept = None;
        let (stream, peer) = result?;
        // The connection works without TCP_NODELAY, only slower: not a reason to drop it.
        let _ = stream.set_nodelay(true);
        Poll::Ready(Ok(Box::new(Stream {
            io: stream,
            peer: anygrpc::__private::grpc_peer(peer),
        })))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_runtime_conformance_checks() {
        async_std::task::block_on(testing::runtime_conformance(runtime()));
    }
}

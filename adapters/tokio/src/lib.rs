//! anygrpc on tokio: tokio tasks, timers and sockets, bridged to `futures-io`.
//!
//! A [`TokioRuntime`] holds the [`Handle`] of a tokio runtime and enters it whenever it creates
//! or polls something that needs one, so its futures may be polled from any thread once created;
//! they make progress while that tokio runtime runs (a multi-thread runtime always does, a
//! current-thread one only inside its `block_on`).
//!
//! Everything of [`anygrpc`] is re-exported: change one `use` line to switch executors.
//!
//! ```
//! use anygrpc_tokio::{Metadata, ServerCall, Status};
//!
//! fn main() -> anygrpc_tokio::Result<()> {
//!     let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//!     tokio.block_on(async {
//!         // A server with one method written by hand (generated services do this for you):
//!         // it answers each request with the request itself.
//!         let server = anygrpc_tokio::server();
//!         server.add_generic_handler("/echo.Echo/Say", |mut call: ServerCall| {
//!             Box::pin(async move {
//!                 match call.recv().await {
//!                     Some(Ok(request)) => {
//!                         let sent = call.send(request).await;
//!                         call.finish(sent.err().unwrap_or_else(Status::ok), Metadata::new());
//!                     }
//!                     _ => call.finish(Status::invalid_argument("no request"), Metadata::new()),
//!                 }
//!             })
//!         });
//!         let port = server.add_insecure_port("127.0.0.1:0").await?;
//!         server.start();
//!
//!         let channel = anygrpc_tokio::insecure_channel(&format!("127.0.0.1:{port}"))?;
//!         let say = channel.unary_unary::<String, String>("/echo.Echo/Say");
//!         assert_eq!(say.call("hello".to_string()).await?, "hello");
//!
//!         channel.close(None).await;
//!         server.stop(None).await;
//!         Ok(())
//!     })
//! }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations)]

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};
use tokio::io::ReadBuf;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;

/// The `anygrpc` crate itself, for code that names it by path (generated code with
/// `anygrpc_build::Builder::anygrpc_path`).
pub use anygrpc;
pub use anygrpc::*;

/// The tokio runtime binding: spawns onto, and times and connects with, one tokio runtime.
#[derive(Debug, Clone)]
pub struct TokioRuntime {
    handle: Handle,
}

impl TokioRuntime {
    /// Binds to the tokio runtime the caller runs in.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn` does): use [`from_handle`](Self::from_handle)
    /// there.
    pub fn current() -> Self {
        Self {
            handle: Handle::current(),
        }
    }

    /// Binds to the tokio runtime of `handle`; usable from any thread.
    pub fn from_handle(handle: Handle) -> Self {
        Self { handle }
    }

    /// Wraps `future` so that every poll runs inside this tokio runtime's context.
    fn entered<T: 'static>(&self, future: BoxFuture<'static, T>) -> BoxFuture<'static, T> {
        Box::pin(Entered {
            handle: self.handle.clone(),
            future,
        })
    }
}

/// A shared handle to the tokio runtime the caller runs in.
///
/// # Panics
/// Outside a tokio runtime; see [`TokioRuntime::from_handle`].
pub fn runtime() -> RuntimeRef {
    Arc::new(TokioRuntime::current())
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

/// Polls `future` inside a tokio runtime's context (tokio's socket and timer constructors look
/// the runtime up in a thread-local). The context is entered for one poll at a time, never held
/// across a suspension.
struct Entered<T> {
    handle: Handle,
    future: BoxFuture<'static, T>,
}

impl<T> Future for Entered<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let _context = self.handle.enter();
        self.future.as_mut().poll(cx)
    }
}

impl Runtime for TokioRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        // Dropping the JoinHandle detaches the task.
        drop(self.handle.spawn(task));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        let _context = self.handle.enter();
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
            deadline,
        )))
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        self.entered(Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(Compat {
                io: stream,
                peer: anygrpc::__private::grpc_peer(addr),
            }) as Box<dyn Transport>)
        }))
    }

    #[cfg(unix)]
    fn connect_unix(&self, path: String) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        self.entered(Box::pin(async move {
            let stream = tokio::net::UnixStream::connect(&path).await?;
            Ok(Box::new(Compat {
                io: stream,
                peer: format!("unix:{path}"),
            }) as Box<dyn Transport>)
        }))
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        let handle = self.handle.clone();
        self.entered(Box::pin(async move {
            let listener = TcpListener::bind(addr).await?;
            Ok(Box::new(TokioListener { listener, handle }) as Box<dyn Listener>)
        }))
    }

    #[cfg(unix)]
    fn listen_unix(&self, path: String) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        let handle = self.handle.clone();
        self.entered(Box::pin(async move {
            let file = anygrpc::__private::UnixSocketFile::claim(&path)?;
            let listener = tokio::net::UnixListener::bind(&path)?;
            Ok(Box::new(TokioUnixListener {
                listener,
                handle,
                file: file.bound()?,
                path,
            }) as Box<dyn Listener>)
        }))
    }

    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        self.entered(Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        }))
    }
}

/// A tokio socket as a `futures-io` anygrpc [`Transport`].
struct Compat<S> {
    io: S,
    peer: String,
}

impl<S> fmt::Debug for Compat<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compat").field("peer", &self.peer).finish()
    }
}

impl<S: tokio::io::AsyncRead + Unpin> AsyncRead for Compat<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut filled = ReadBuf::new(buf);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut filled))?;
        Poll::Ready(Ok(filled.filled().len()))
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> AsyncWrite for Compat<S> {
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

    /// Shuts down the writing half (FIN): the peer reads EOF.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Transport
    for Compat<S>
{
    fn peer(&self) -> String {
        self.peer.clone()
    }
}

/// A TCP listener, with the runtime whose context registering an accepted socket needs.
struct TokioListener {
    listener: TcpListener,
    handle: Handle,
}

impl fmt::Debug for TokioListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioListener")
            .field("local_addr", &self.listener.local_addr().ok())
            .finish()
    }
}

impl Listener for TokioListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Box<dyn Transport>>> {
        let _context = self.handle.enter();
        let (stream, peer) = ready!(self.listener.poll_accept(cx))?;
        // The connection works without TCP_NODELAY, only slower: not a reason to drop it.
        let _ = stream.set_nodelay(true);
        Poll::Ready(Ok(Box::new(Compat {
            io: stream,
            peer: anygrpc::__private::grpc_peer(peer),
        })))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A Unix-socket listener; removes its socket file when dropped.
#[cfg(unix)]
struct TokioUnixListener {
    listener: tokio::net::UnixListener,
    handle: Handle,
    file: anygrpc::__private::UnixSocketFile,
    path: String,
}

#[cfg(unix)]
impl fmt::Debug for TokioUnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioUnixListener")
            .field("path", &self.file.path())
            .finish()
    }
}

#[cfg(unix)]
impl Listener for TokioUnixListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Box<dyn Transport>>> {
        let _context = self.handle.enter();
        let (stream, peer) = ready!(self.listener.poll_accept(cx))?;
        Poll::Ready(Ok(Box::new(Compat {
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn passes_the_runtime_conformance_checks_on_a_multi_thread_runtime() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { testing::runtime_conformance(runtime()).await });
    }

    #[test]
    fn passes_the_runtime_conformance_checks_on_a_current_thread_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { testing::runtime_conformance(runtime()).await });
    }

    #[test]
    fn works_when_polled_outside_the_tokio_runtime() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let anygrpc_rt: RuntimeRef = Arc::new(TokioRuntime::from_handle(rt.handle().clone()));
        park_block_on(testing::runtime_conformance(anygrpc_rt));
    }

    /// A minimal block_on with no tokio context: parks the thread until woken.
    fn park_block_on<F: Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
                return out;
            }
            std::thread::park();
        }
    }

    #[cfg(unix)]
    #[test]
    fn connects_to_unix_sockets() {
        let dir = std::env::temp_dir().join(format!("anygrpc-tokio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        let _ = std::fs::remove_file(&path);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let listener = tokio::net::UnixListener::bind(&path).unwrap();
            let path_string = path.to_str().unwrap().to_owned();
            let server = async {
                let (conn, _) = listener.accept().await.unwrap();
                let mut conn = Compat {
                    io: conn,
                    peer: String::new(),
                };
                conn.write_all(b"over unix").await.unwrap();
                conn.close().await.unwrap();
            };
            let client = async {
                let mut conn = runtime().connect_unix(path_string.clone()).await.unwrap();
                assert_eq!(conn.peer(), format!("unix:{path_string}"));
                let mut got = String::new();
                conn.read_to_string(&mut got).await.unwrap();
                got
            };
            futures_util::future::join(server, client).await.1
        });
        assert_eq!(got, "over unix");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! anygrpc on smol: tasks on smol's global executor, timers and sockets on the async-io reactor.
//!
//! async-io runs its own reactor thread, so the futures of this runtime (connections, timers,
//! calls) make progress under any executor that polls them: smol, `futures::executor`, a
//! hand-written loop. Only [`Runtime::spawn`] uses smol's global executor.
//!
//! Everything of [`anygrpc`] is re-exported: change one `use` line to switch executors.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations)]

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use async_io::Async;
use async_net::{TcpListener, TcpStream};
use futures_io::{AsyncRead, AsyncWrite};

/// The `anygrpc` crate itself, for code that names it by path (generated code with
/// `anygrpc_build::Builder::anygrpc_path`).
pub use anygrpc;
pub use anygrpc::*;

/// The smol runtime: tasks on smol's global executor (`smol::spawn`) or on an executor of
/// the application's, sleep with `async_io::Timer`, sockets from `async-net`, names resolved
/// on smol's blocking thread pool.
#[derive(Debug, Clone, Default)]
pub struct SmolRuntime {
    /// Where tasks go; `None`: smol's global executor.
    executor: Option<Arc<smol::Executor<'static>>>,
}

/// A shared handle to [`SmolRuntime`] on smol's global executor, for channels and servers.
pub fn runtime() -> RuntimeRef {
    Arc::new(SmolRuntime::default())
}

/// A shared handle to [`SmolRuntime`] whose tasks (connections, handlers, timers of channels)
/// run on `executor`, which the application runs itself, e.g. on its main thread:
///
/// ```no_run
/// use std::sync::Arc;
///
/// let executor = Arc::new(smol::Executor::new());
/// let runtime = anygrpc_smol::runtime_on(executor.clone());
/// smol::block_on(executor.run(async move {
///     let server = anygrpc_smol::Server::new(runtime);
///     let _port = server.add_insecure_port("127.0.0.1:0").await;
///     server.start();
///     server.wait_for_termination().await;
/// }));
/// ```
///
/// With one thread running the executor, a connection's driver, its calls and the code that
/// awaits them share that thread: no hand-off between threads per message. Nothing of this
/// runtime makes progress unless `executor` is run.
pub fn runtime_on(executor: Arc<smol::Executor<'static>>) -> RuntimeRef {
    Arc::new(SmolRuntime {
        executor: Some(executor),
    })
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

impl Runtime for SmolRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        match &self.executor {
            Some(executor) => executor.spawn(task).detach(),
            None => smol::spawn(task).detach(),
        }
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            async_io::Timer::at(deadline).await;
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(SmolStream::new(
                stream.into(),
                anygrpc::__private::grpc_peer(addr),
            )) as Box<dyn Transport>)
        })
    }

    #[cfg(unix)]
    fn connect_unix(&self, path: String) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        Box::pin(async move {
            let stream = async_net::unix::UnixStream::connect(&path).await?;
            Ok(
                Box::new(SmolStream::new(stream.into(), format!("unix:{path}")))
                    as Box<dyn Transport>,
            )
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = TcpListener::bind(addr).await?;
            Ok(Box::new(SmolListener {
                listener,
                accept: None,
            }) as Box<dyn Listener>)
        })
    }

    #[cfg(unix)]
    fn listen_unix(&self, path: String) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let file = anygrpc::__private::UnixSocketFile::claim(&path)?;
            let listener = async_net::unix::UnixListener::bind(&path)?;
            Ok(Box::new(SmolUnixListener {
                listener,
                accept: None,
                file: file.bound()?,
                path,
            }) as Box<dyn Listener>)
        })
    }

    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        Box::pin(async_net::resolve((host, port)))
    }
}

/// A Unix-socket listener; keeps the pending accept between polls, and removes its socket
/// file when dropped.
#[cfg(unix)]
struct SmolUnixListener {
    listener: async_net::unix::UnixListener,
    accept: Option<UnixAccept>,
    file: anygrpc::__private::UnixSocketFile,
    path: String,
}

#[cfg(unix)]
type UnixAccept =
    BoxFuture<'static, io::Result<(async_net::unix::UnixStream, async_net::unix::SocketAddr)>>;

#[cfg(unix)]
impl fmt::Debug for SmolUnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmolUnixListener")
            .field("path", &self.file.path())
            .finish()
    }
}

#[cfg(unix)]
impl Listener for SmolUnixListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Box<dyn Transport>>> {
        let accept = self.accept.get_or_insert_with(|| {
            let listener = self.listener.clone();
            Box::pin(async move { listener.accept().await })
        });
        let result = ready!(accept.as_mut().poll(cx));
        self.accept = None;
        let (stream, peer) = result?;
        let peer = anygrpc::__private::grpc_unix_peer(peer.as_pathname());
        Poll::Ready(Ok(Box::new(SmolStream::new(stream.into(), peer))))
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
///
/// A read that returned less than the buffer's size left the socket empty, so the next read
/// first waits for the reactor to report it readable instead of asking the kernel, which
/// would only answer "empty" (one system call per wait saved; tokio does the same). Waiting
/// re-arms the socket's interest, and the kernel reports data that arrived meanwhile at once.
struct SmolStream<T> {
    io: Arc<Async<T>>,
    /// The last read did not fill its buffer.
    drained: bool,
    peer: String,
}

impl<T> SmolStream<T> {
    fn new(io: Arc<Async<T>>, peer: String) -> Self {
        Self {
            io,
            drained: false,
            peer,
        }
    }
}

impl<T> fmt::Debug for SmolStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmolStream")
            .field("peer", &self.peer)
            .finish()
    }
}

impl<T> AsyncRead for SmolStream<T>
where
    for<'a> &'a Async<T>: AsyncRead,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.drained {
            ready!(this.io.poll_readable(cx))?;
            this.drained = false;
        }
        let n = ready!(Pin::new(&mut &*this.io).poll_read(cx, buf))?;
        this.drained = n > 0 && n < buf.len();
        Poll::Ready(Ok(n))
    }
}

impl<T: ShutdownWrite> AsyncWrite for SmolStream<T>
where
    for<'a> &'a Async<T>: AsyncWrite,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.io).poll_flush(cx)
    }

    /// Shuts down the writing half (FIN): the peer reads EOF. async-io's own `poll_close`
    /// only flushes.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut &*self.io).poll_flush(cx))?;
        Poll::Ready(self.io.get_ref().shutdown_write())
    }
}

/// Sockets whose writing half can be shut down.
trait ShutdownWrite {
    fn shutdown_write(&self) -> io::Result<()>;
}

impl ShutdownWrite for std::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

#[cfg(unix)]
impl ShutdownWrite for std::os::unix::net::UnixStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl<T: ShutdownWrite + Send + Sync + 'static> Transport for SmolStream<T>
where
    for<'a> &'a Async<T>: AsyncRead + AsyncWrite,
{
    fn peer(&self) -> String {
        self.peer.clone()
    }
}

/// A TCP listener; keeps the pending accept between polls.
struct SmolListener {
    listener: TcpListener,
    accept: Option<BoxFuture<'static, io::Result<(TcpStream, SocketAddr)>>>,
}

impl fmt::Debug for SmolListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmolListener")
            .field("local_addr", &self.listener.local_addr().ok())
            .finish()
    }
}

impl Listener for SmolListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Box<dyn Transport>>> {
        let accept = self.accept.get_or_insert_with(|| {
            let listener = self.listener.clone();
            Box::pin(async move { listener.accept().await })
        });
        let result = ready!(accept.as_mut().poll(cx));
        self.accept = None;
        let (stream, peer) = result?;
        // The connection works without TCP_NODELAY, only slower: not a reason to drop it.
        let _ = stream.set_nodelay(true);
        Poll::Ready(Ok(Box::new(SmolStream::new(
            stream.into(),
            anygrpc::__private::grpc_peer(peer),
        ))))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn passes_the_runtime_conformance_checks() {
        smol::block_on(testing::runtime_conformance(runtime()));
    }

    #[test]
    fn runs_its_tasks_on_the_applications_executor() {
        let executor = Arc::new(smol::Executor::new());
        let rt = runtime_on(executor.clone());
        smol::block_on(executor.run(testing::runtime_conformance(rt.clone())));
        // A spawned task runs only where the executor is run: here, on this thread.
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(Box::pin(async move {
            let _ = tx.send(std::thread::current().id());
        }));
        assert!(rx.try_recv().is_err(), "nothing runs the executor yet");
        while executor.try_tick() {}
        assert_eq!(rx.try_recv(), Ok(std::thread::current().id()));
    }

    #[test]
    fn works_under_another_executor() {
        // futures' own block_on has no reactor: async-io's drives the sockets and timers.
        park_block_on(testing::runtime_conformance(runtime()));
    }

    /// A minimal block_on without any reactor: parks the thread until woken.
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

    #[test]
    fn after_a_short_read_it_waits_for_data_without_losing_any() {
        smol::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut conn = SmolRuntime::default().connect(addr).await.unwrap();
            let (mut peer, _) = listener.accept().await.unwrap();
            peer.write_all(b"abc").await.unwrap();
            let mut buf = [0u8; 64];
            let n = conn.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"abc", "a short read");
            // Drained: with nothing sent, the next read waits (registered, not failed).
            let mut cx = Context::from_waker(std::task::Waker::noop());
            assert!(
                Pin::new(&mut conn)
                    .poll_read(&mut cx, &mut buf)
                    .is_pending()
            );
            // What arrives later is read, and so is the end of the stream.
            peer.write_all(b"later").await.unwrap();
            peer.close().await.unwrap();
            let mut rest = Vec::new();
            // A lost wake-up fails the test instead of hanging it.
            let read = std::pin::pin!(conn.read_to_end(&mut rest));
            let limit = async_io::Timer::after(std::time::Duration::from_secs(10));
            let finished = matches!(
                futures_util::future::select(read, limit).await,
                futures_util::future::Either::Left((Ok(_), _))
            );
            assert!(finished, "the data after the wait arrived, then the end");
            assert_eq!(rest, b"later");
        });
    }

    #[cfg(unix)]
    #[test]
    fn connects_to_unix_sockets() {
        let dir = std::env::temp_dir().join(format!("anygrpc-smol-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        let _ = std::fs::remove_file(&path);
        smol::block_on(async {
            let listener = async_net::unix::UnixListener::bind(&path).unwrap();
            let path_string = path.to_str().unwrap().to_owned();
            let server = async {
                let (mut conn, _) = listener.accept().await.unwrap();
                conn.write_all(b"over unix").await.unwrap();
            };
            let client = async {
                let mut conn = SmolRuntime::default()
                    .connect_unix(path_string.clone())
                    .await
                    .unwrap();
                assert_eq!(conn.peer(), format!("unix:{path_string}"));
                let mut got = String::new();
                conn.read_to_string(&mut got).await.unwrap();
                got
            };
            let ((), got) = futures_util::future::join(server, client).await;
            assert_eq!(got, "over unix");
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}

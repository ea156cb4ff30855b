//! The server: listeners, one driver per accepted connection, dispatch of calls to services,
//! graceful stop.

mod call;
pub(crate) mod handlers;
mod in_process;
mod service;

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::task::Poll;
use std::time::Duration;

use anygrpc_core::{Config, Connection, Metadata, Side, Status};
use futures_util::FutureExt;

use crate::conn::engine::{Dispatch, IncomingCall};
use crate::conn::handle::{Command, ConnHandle, Kick};
use crate::conn::io::Driver;
use crate::conn::policy::Urgency;
use crate::interceptor::{ServerCallDetails, ServerHooks, ServerInterceptor};
use crate::runtime::Endpoint;
use crate::runtime::{BoxFuture, Listener, RuntimeRef, accept};
use crate::stats::{CallEvent, CallInfo, CallRecorder, StatsHandler, StatsHandlers, StatsSide};
use crate::user_code::guarded;
use crate::wakers::WakerSet;

pub use call::{RequestStream, ResponseSink, ServerCall, ServicerContext};
use service::GenericHandler;
pub use service::Service;

#[derive(Default)]
struct Registry {
    services: HashMap<String, Arc<dyn Service>>,
    generic: HashMap<String, Arc<GenericHandler>>,
}

#[derive(Default)]
struct ServerState {
    listeners: Vec<Box<dyn Listener>>,
    started: bool,
    stopping: bool,
    stopped: bool,
    /// Accept loops still holding their listener.
    serving: usize,
    conns: Vec<Arc<ConnHandle>>,
    /// The accept loops (waiting for `stop`), `stop` itself and `wait_for_termination`.
    wakers: WakerSet,
    /// What runs when `stop` begins (`Server::on_stop`), taken by the first `stop`.
    stop_hooks: Vec<Box<dyn FnOnce() + Send>>,
}

struct ServerInner {
    runtime: RuntimeRef,
    config: Arc<Config>,
    registry: RwLock<Registry>,
    interceptors: RwLock<Arc<[Arc<dyn ServerInterceptor>]>>,
    stats: RwLock<StatsHandlers>,
    state: Mutex<ServerState>,
}

/// A gRPC server (grpc.aio's `server()`): add services and ports, `start`, `stop(grace)`.
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// A server on `runtime` with the default limits.
    pub fn new(runtime: RuntimeRef) -> Self {
        Self::with_config(runtime, Config::server())
    }

    /// A server on `runtime` with the given HTTP/2 and gRPC limits.
    pub fn with_config(runtime: RuntimeRef, config: Config) -> Self {
        Self {
            inner: Arc::new(ServerInner {
                runtime,
                config: Arc::new(config),
                registry: RwLock::default(),
                interceptors: RwLock::new(Arc::new([])),
                stats: RwLock::default(),
                state: Mutex::default(),
            }),
        }
    }

    fn stats(&self) -> StatsHandlers {
        self.inner
            .stats
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock(&self) -> MutexGuard<'_, ServerState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a service (usually a generated `FooServer`).
    pub fn add_service(&self, service: impl Service) -> &Self {
        let mut registry = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner());
        registry
            .services
            .insert(service.name().to_string(), Arc::new(service));
        self
    }

    /// Runs `hook` once, when [`stop`](Self::stop) begins, before the server refuses new
    /// calls and drains the running ones: a health service reports NOT_SERVING there, so
    /// that watchers hear it while their streams are still open. Hooks run in the order
    /// added; a panic in one is swallowed and the others still run.
    pub fn on_stop(&self, hook: impl FnOnce() + Send + 'static) -> &Self {
        self.lock().stop_hooks.push(Box::new(hook));
        self
    }

    /// Adds an interceptor run before every call's handler, in the order added.
    pub fn add_interceptor(&self, interceptor: impl ServerInterceptor) -> &Self {
        let mut interceptors = self
            .inner
            .interceptors
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = interceptors.iter().cloned().collect();
        all.push(Arc::new(interceptor));
        *interceptors = all.into();
        self
    }

    /// Adds a stats handler: it sees every call's and connection's events (for metrics; see
    /// [`StatsHandler`]), from the next connection on. Handlers see each event in the order
    /// they were added.
    pub fn add_stats_handler(&self, handler: impl StatsHandler) -> &Self {
        let mut stats = self.inner.stats.write().unwrap_or_else(|p| p.into_inner());
        *stats = stats.with(Arc::new(handler));
        self
    }

    /// Registers a raw handler for one full method path (`/pkg.Service/Method`): bytes in,
    /// bytes out through [`ServerCall`]. Takes precedence over services.
    pub fn add_generic_handler<F>(&self, path: &str, handler: F) -> &Self
    where
        F: Fn(ServerCall) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    {
        let mut registry = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner());
        registry
            .generic
            .insert(path.to_string(), Arc::new(Box::new(handler)));
        self
    }

    /// Binds a cleartext port and returns the bound port: `127.0.0.1:0`, `[::]:50051`,
    /// `localhost:0`, or a Unix-domain socket as gRPC names them (`unix:/abs/path`,
    /// `unix:///abs/path`, `unix:relative/path`; a Unix socket has no port: `Ok(0)`). A stale
    /// socket file at the path is replaced; the file is removed when the server stops.
    /// Serving starts with [`start`](Self::start).
    pub async fn add_insecure_port(&self, address: &str) -> io::Result<u16> {
        let listener = self.bind(address).await?;
        self.add_bound(listener)
    }

    /// Binds a TLS port secured by `credentials` (the addresses of
    /// [`add_insecure_port`](Self::add_insecure_port)) and returns the bound port. Each
    /// connection runs its handshake in its own task; clients that do not negotiate ALPN `h2`
    /// (or fail the required client-certificate check) are dropped.
    #[cfg(feature = "tls")]
    pub async fn add_secure_port(
        &self,
        address: &str,
        credentials: crate::tls::ServerCredentials,
    ) -> io::Result<u16> {
        let listener = self.bind(address).await?;
        self.add_bound(self.secured(listener, &credentials))
    }

    /// Serves the connections of a listener the application made (a socket it bound itself,
    /// one passed by systemd socket activation, an in-memory one) like those of its own
    /// ports: accepted from [`start`](Self::start) on (at once if started), refused and
    /// closed by [`stop`](Self::stop), which drops the listener. Returns where it listens.
    ///
    /// ```
    /// # use anygrpc::{Server, testing::MemoryRuntime};
    /// # let rt = MemoryRuntime::new();
    /// use anygrpc::Runtime;
    /// let server = Server::new(rt.handle());
    /// let listener = rt.block_on(rt.listen("127.0.0.1:0".parse().unwrap())).unwrap();
    /// let endpoint = server.add_listener(listener).unwrap();
    /// assert!(matches!(endpoint, anygrpc::resolver::Endpoint::Tcp(_)));
    /// server.start();
    /// # rt.block_on(server.stop(None));
    /// ```
    pub fn add_listener(&self, listener: Box<dyn Listener>) -> io::Result<Endpoint> {
        let endpoint = listener.local_endpoint()?;
        self.add_started(listener);
        Ok(endpoint)
    }

    /// [`add_listener`](Self::add_listener) with every accepted connection secured by
    /// `credentials` (as [`add_secure_port`](Self::add_secure_port)).
    #[cfg(feature = "tls")]
    pub fn add_secure_listener(
        &self,
        listener: Box<dyn Listener>,
        credentials: crate::tls::ServerCredentials,
    ) -> io::Result<Endpoint> {
        self.add_listener(self.secured(listener, &credentials))
    }

    /// Serves one connection the application accepted itself (over any byte stream: a
    /// socket, a pipe, a tunnel) as if a port of the server had accepted it: its calls reach
    /// the services at once, even before [`start`](Self::start); [`stop`](Self::stop) drains
    /// and closes it with the others, and a stopped server closes it at once.
    ///
    /// ```
    /// # use anygrpc::{Server, testing::{MemoryRuntime, pipe}};
    /// # let rt = MemoryRuntime::new();
    /// let server = Server::new(rt.handle());
    /// let (client, server_end, _) = pipe(
    ///     "127.0.0.1:1".parse().unwrap(),
    ///     "127.0.0.1:2".parse().unwrap(),
    ///     64 * 1024,
    /// );
    /// server.serve_connection(Box::new(server_end));
    /// # drop(client);
    /// # rt.block_on(server.stop(None));
    /// ```
    pub fn serve_connection(&self, transport: Box<dyn crate::Transport>) {
        self.connection(transport);
    }

    /// [`serve_connection`](Self::serve_connection) for a connection whose TLS handshake
    /// has not run yet: it runs first, with `credentials`, in the connection's own task.
    #[cfg(feature = "tls")]
    pub fn serve_secure_connection(
        &self,
        transport: Box<dyn crate::Transport>,
        credentials: &crate::tls::ServerCredentials,
    ) {
        self.connection(crate::tls::secure_accepted(
            transport,
            credentials,
            &self.inner.runtime,
        ));
    }

    #[cfg(feature = "tls")]
    fn secured(
        &self,
        listener: Box<dyn Listener>,
        credentials: &crate::tls::ServerCredentials,
    ) -> Box<dyn Listener> {
        Box::new(crate::tls::TlsListener::new(
            listener,
            credentials,
            self.inner.runtime.clone(),
        ))
    }

    /// Binds what `address` names: a `unix:` socket, or a TCP address.
    async fn bind(&self, address: &str) -> io::Result<Box<dyn Listener>> {
        match parse_bind_address(address)? {
            BindAddress::Tcp(addr) => self.inner.runtime.listen(addr).await,
            BindAddress::Unix(path) => self.inner.runtime.listen_unix(path).await,
        }
    }

    /// Adds a listener of the server's own ports; its port (0 for a Unix socket).
    fn add_bound(&self, listener: Box<dyn Listener>) -> io::Result<u16> {
        let port = match listener.local_endpoint()? {
            Endpoint::Tcp(addr) => addr.port(),
            _ => 0,
        };
        self.add_started(listener);
        Ok(port)
    }

    /// Serves `listener` now if the server started, else from `start`.
    fn add_started(&self, listener: Box<dyn Listener>) {
        let mut state = self.lock();
        if state.started {
            drop(state);
            self.serve(listener);
        } else {
            state.listeners.push(listener);
        }
    }

    /// Starts serving every added port.
    pub fn start(&self) {
        let listeners = {
            let mut state = self.lock();
            state.started = true;
            std::mem::take(&mut state.listeners)
        };
        for listener in listeners {
            self.serve(listener);
        }
    }

    fn serve(&self, listener: Box<dyn Listener>) {
        self.lock().serving += 1;
        let mut serving = Serving {
            listener: Some(listener),
            server: self.clone(),
        };
        let server = self.clone();
        let task = async move {
            let Some(listener) = serving.listener.as_mut() else {
                return;
            };
            let mut retry_in = ACCEPT_RETRY_MIN;
            loop {
                let accepted = {
                    let stop = poll_fn(|cx| {
                        let mut state = server.lock();
                        if state.stopping {
                            return Poll::Ready(());
                        }
                        state.wakers.register(cx.waker());
                        Poll::Pending
                    });
                    let mut stop = std::pin::pin!(stop);
                    let mut next = std::pin::pin!(accept(&mut **listener));
                    poll_fn(|cx| {
                        if stop.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(None);
                        }
                        next.as_mut().poll(cx).map(Some)
                    })
                    .await
                };
                match accepted {
                    None => return,
                    Some(Ok(io)) => {
                        retry_in = ACCEPT_RETRY_MIN;
                        server.connection(io);
                    }
                    // Transient accept errors (EMFILE, ECONNABORTED): keep serving, after a
                    // pause that doubles while they go on (an accept that fails at once would
                    // otherwise spin).
                    Some(Err(error)) => {
                        crate::trace::accept_failed(&error, retry_in);
                        let runtime = &server.inner.runtime;
                        runtime.sleep_until(runtime.now() + retry_in).await;
                        retry_in = (retry_in * 2).min(ACCEPT_RETRY_MAX);
                    }
                }
            }
        };
        self.inner.runtime.spawn(Box::pin(task));
    }

    fn connection(&self, io: Box<dyn crate::Transport>) {
        let runtime = self.inner.runtime.clone();
        let conn = Connection::new(Side::Server, self.inner.config.clone(), runtime.now());
        let dispatch: Arc<dyn Dispatch> = Arc::new(Dispatcher {
            server: self.clone(),
        });
        let stats = self.stats();
        let (driver, shared) = Driver::start(conn, io, runtime.clone(), Some(dispatch), stats);
        {
            let mut state = self.lock();
            state.conns.retain(|c| !c.is_closed());
            if state.stopping {
                let _ = shared
                    .enqueue([Command::Close], Urgency::Control)
                    .map(Kick::run);
            }
            state.conns.push(shared);
        }
        runtime.spawn(Box::pin(driver));
    }

    /// Stops: no new connections or calls; calls in flight get `grace` to finish (none: they
    /// are cancelled at once), then every connection closes. Completes when all have.
    pub async fn stop(&self, grace: Option<Duration>) {
        let hooks = std::mem::take(&mut self.lock().stop_hooks);
        for hook in hooks {
            crate::user_code::observe(hook);
        }
        let conns = {
            let mut state = self.lock();
            state.stopping = true;
            state.listeners.clear();
            state.wakers.wake_all();
            state.conns.clone()
        };
        crate::conn::drain::drain(&conns, &self.inner.runtime, grace).await;
        // The ports are free once `stop` returns.
        poll_fn(|cx| {
            let mut state = self.lock();
            if state.serving == 0 {
                return Poll::Ready(());
            }
            state.wakers.register(cx.waker());
            Poll::Pending
        })
        .await;
        let mut state = self.lock();
        state.stopped = true;
        state.wakers.wake_all();
    }

    /// Completes once the server has stopped.
    pub async fn wait_for_termination(&self) {
        poll_fn(|cx| {
            let mut state = self.lock();
            if state.stopped {
                return Poll::Ready(());
            }
            state.wakers.register(cx.waker());
            Poll::Pending
        })
        .await
    }
}

/// An accept loop's listener: closed, and the server told, when the loop ends or is dropped.
struct Serving {
    listener: Option<Box<dyn Listener>>,
    server: Server,
}

impl Drop for Serving {
    fn drop(&mut self) {
        drop(self.listener.take());
        let mut state = self.server.lock();
        state.serving = state.serving.saturating_sub(1);
        state.wakers.wake_all();
    }
}

/// What a server port names.
#[derive(Debug, PartialEq, Eq)]
enum BindAddress {
    Tcp(SocketAddr),
    /// `unix:path`, `unix:///abs` (gRPC naming doc).
    Unix(String),
}

/// Accepts `unix:` paths, and `host:port` with a literal IP or a name resolved by the
/// standard library (bind addresses are local, so this blocking lookup is instant).
fn parse_bind_address(address: &str) -> io::Result<BindAddress> {
    if address.starts_with("unix:") {
        return match crate::client::Target::parse(address) {
            Ok(crate::client::Target::Unix(path)) => Ok(BindAddress::Unix(path)),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{address:?}: a unix: address needs a path"),
            )),
        };
    }
    if let Ok(addr) = address.parse() {
        return Ok(BindAddress::Tcp(addr));
    }
    address
        .to_socket_addrs()?
        .next()
        .map(BindAddress::Tcp)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no address for {address:?}"),
            )
        })
}

/// The pause after a failed accept, doubling up to [`ACCEPT_RETRY_MAX`] while failures go on
/// (as grpc-go's 5 ms to 1 s).
const ACCEPT_RETRY_MIN: Duration = Duration::from_millis(5);
const ACCEPT_RETRY_MAX: Duration = Duration::from_secs(1);

/// Routes a server connection's calls to the registered services.
struct Dispatcher {
    server: Server,
}

impl Dispatch for Dispatcher {
    fn dispatch(&self, call: IncomingCall) -> Option<BoxFuture<'static, ()>> {
        let inner = &self.server.inner;
        let slot = call.slot.clone();
        let conn = call.conn.clone();
        let interceptors = inner
            .interceptors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let stats = self.server.stats().call_started(&CallInfo {
            side: StatsSide::Server,
            method: &String::from_utf8_lossy(&call.head.path),
            target: "",
            peer: &call.peer,
            started: std::time::Instant::now(),
        });
        if let Some(stats) = &stats {
            stats.record(&CallEvent::HeadersReceived {
                metadata: &call.head.metadata,
            });
            slot.record_the_end(stats);
        }
        let hooks = if interceptors.is_empty() {
            None
        } else {
            let details = ServerCallDetails {
                method: String::from_utf8_lossy(&call.head.path).into_owned(),
                metadata: call.head.metadata.clone(),
                peer: call.peer.to_string(),
                deadline: call.deadline,
            };
            let hooks = ServerHooks {
                details: Arc::new(details),
                interceptors,
            };
            let rejected = hooks.interceptors.iter().find_map(|i| {
                guarded("a server interceptor", Status::unknown, || {
                    i.intercept(&hooks.details)
                })
                .err()
            });
            if let Some(status) = rejected {
                hooks.on_complete(&status);
                end_at_once(&conn, slot, status, stats.as_ref());
                return None;
            }
            Some(hooks)
        };
        let call = ServerCall::new(
            call,
            inner.config.max_recv_message_size,
            hooks,
            stats.clone(),
        );
        let path = call.path().to_string();
        let handle = call.handle();
        let found = {
            let registry = inner.registry.read().unwrap_or_else(|p| p.into_inner());
            if let Some(handler) = registry.generic.get(&path) {
                Some(Found::Generic(handler.clone()))
            } else {
                let (service, method) = split_path(&path);
                registry
                    .services
                    .get(service)
                    .map(|service| Found::Service(service.clone(), method.to_string()))
            }
        };
        // The handler's future is made by the application's code: a panic there fails this
        // call, as one in the future does.
        let task = guarded("the handler", Status::unknown, || {
            Ok(match found {
                Some(Found::Generic(handler)) => Some(handler(call)),
                Some(Found::Service(service, method)) => service.call(&method, call),
                None => None,
            })
        });
        let task = match task {
            Ok(task) => task,
            Err(status) => {
                handle.finish(status, Metadata::new());
                return None;
            }
        };
        match task {
            None => {
                let status = Status::unimplemented(format!("method not found: {path}"));
                end_at_once(&conn, slot, status, stats.as_ref());
                None
            }
            Some(task) => {
                let task = async move {
                    // A panicking handler ends its own call, never the server.
                    if AssertUnwindSafe(task).catch_unwind().await.is_err() {
                        handle.finish(Status::unknown("the handler panicked"), Metadata::new());
                    }
                };
                // What the handler logs belongs to its call's span.
                #[cfg(feature = "tracing")]
                let task = tracing::Instrument::instrument(task, slot.lock().span.span().clone());
                Some(Box::pin(task))
            }
        }
    }
}

/// What a call's path routes to, taken out of the registry before the application's code runs
/// (so that no lock of ours is held across it).
enum Found {
    Generic(Arc<GenericHandler>),
    Service(Arc<dyn Service>, String),
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`).
fn split_path(path: &str) -> (&str, &str) {
    // The core refuses a path without its `/` (RFC 9113 §8.3.1); should one get here, it
    // names no method rather than the method its interceptors did not see.
    let Some(trimmed) = path.strip_prefix('/') else {
        return ("", "");
    };
    trimmed.rsplit_once('/').unwrap_or((trimmed, ""))
}

/// Ends a call the server answers without a handler (an interceptor refused it, no method):
/// its status goes out as Trailers-Only, with the answers of the calls served beside it.
fn end_at_once(
    conn: &Arc<ConnHandle>,
    slot: Arc<crate::conn::slot::CallSlot>,
    status: Status,
    stats: Option<&CallRecorder>,
) {
    if let Some(stats) = stats {
        stats.record(&CallEvent::Ended {
            status: &status,
            trailers: &Metadata::new(),
        });
    }
    let trailers = Command::Trailers {
        slot,
        status,
        metadata: Metadata::new(),
    };
    let _ = conn.enqueue([trailers], Urgency::Output).map(Kick::run);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/helloworld.Greeter/SayHello"),
            ("helloworld.Greeter", "SayHello")
        );
        assert_eq!(split_path("/a.b.C/D"), ("a.b.C", "D"));
        assert_eq!(split_path("/nomethod"), ("nomethod", ""));
        assert_eq!(
            split_path("a.b.C/D"),
            ("", ""),
            "no leading slash: no method"
        );
    }

    #[cfg(feature = "testing")]
    #[test]
    fn the_accept_loop_holds_one_waker_however_many_connections_it_accepts() {
        // It used to note its waker at every poll and forget them only at `stop`: one more
        // per accepted connection, for the life of the server.
        let rt = crate::testing::MemoryRuntime::new();
        let handle = rt.handle();
        let server = Server::new(handle.clone());
        let port = rt
            .block_on(server.add_insecure_port("127.0.0.1:0"))
            .expect("bound");
        server.start();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
        let mut most = 0;
        for round in 0..100 {
            let clients: Vec<_> = (0..100)
                .map(|_| rt.block_on(handle.connect(addr)).expect("connected"))
                .collect();
            rt.run_until_stalled();
            drop(clients);
            rt.run_until_stalled();
            let state = server.lock();
            most = most.max(state.wakers.len());
            assert!(
                state.conns.len() <= 200,
                "round {round}: {}",
                state.conns.len()
            );
        }
        assert!(
            rt.spawned_tasks() > 10_000,
            "a driver per connection: {}",
            rt.spawned_tasks()
        );
        assert_eq!(most, 1, "the accept loop's one waker");
        rt.block_on(server.stop(None));
        assert_eq!(server.lock().wakers.len(), 0);
    }

    #[test]
    fn bind_addresses() {
        let tcp = |a: &str| match parse_bind_address(a) {
            Ok(BindAddress::Tcp(addr)) => addr,
            other => panic!("{a}: {other:?}"),
        };
        assert_eq!(tcp("127.0.0.1:0").port(), 0);
        assert!(tcp("[::]:50051").is_ipv6());
        assert!(parse_bind_address("localhost:0").is_ok());
        assert!(parse_bind_address("not an address").is_err());
        let unix = |a: &str| parse_bind_address(a).unwrap();
        assert_eq!(
            unix("unix:/run/a.sock"),
            BindAddress::Unix("/run/a.sock".into())
        );
        assert_eq!(
            unix("unix:///run/a.sock"),
            BindAddress::Unix("/run/a.sock".into())
        );
        assert_eq!(
            unix("unix:rel/a.sock"),
            BindAddress::Unix("rel/a.sock".into())
        );
        let err = parse_bind_address("unix:").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }
}

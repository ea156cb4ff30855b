//! The server: listeners, one driver per accepted connection, dispatch of calls to services,
//! graceful stop.

mod call;
pub(crate) mod handlers;
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

use anygrpc_core::{Compression, Config, Connection, Metadata, Side, Status};
use futures_util::FutureExt;

use crate::conn::engine::{Dispatch, IncomingCall};
use crate::conn::handle::{Command, ConnHandle, Kick};
use crate::conn::io::Driver;
use crate::conn::policy::Urgency;
use crate::interceptor::{ServerCallDetails, ServerHooks, ServerInterceptor};
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
    /// Generic handlers for every path under a prefix, longest prefix first.
    prefixes: Vec<(String, Arc<GenericHandler>)>,
}

impl Registry {
    /// What serves `path`: an exact generic handler, else the service named by the path,
    /// else the generic handler of the longest prefix of the path.
    fn route(&self, path: &str) -> Option<Found> {
        if let Some(handler) = self.generic.get(path) {
            return Some(Found::Generic(handler.clone()));
        }
        let (service, method) = split_path(path);
        if let Some(service) = self.services.get(service) {
            return Some(Found::Service(service.clone(), method.to_string()));
        }
        self.prefixes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, handler)| Found::Generic(handler.clone()))
    }

    /// Adds a generic handler for `pattern`: an exact path, or a prefix when it ends in `/`.
    fn add_generic(&mut self, pattern: &str, handler: GenericHandler) {
        let handler = Arc::new(handler);
        if !pattern.ends_with('/') {
            self.generic.insert(pattern.to_string(), handler);
            return;
        }
        self.prefixes.retain(|(prefix, _)| prefix != pattern);
        self.prefixes.push((pattern.to_string(), handler));
        // Longest first, so the first match is the longest one.
        self.prefixes
            .sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }
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
    /// What response messages are compressed with unless the handler chooses.
    compression: RwLock<Option<Compression>>,
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
                compression: RwLock::default(),
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

    /// Registers a raw handler (bytes in, bytes out through [`ServerCall`]) for one full
    /// method path (`/pkg.Service/Method`), or for every path under a prefix ending in `/`:
    /// `/pkg.Service/` (every method of a service) or `/` (every call: a generic proxy).
    ///
    /// A call goes to the handler of its exact path, else to the service it names (added with
    /// [`add_service`](Self::add_service)), else to the handler of the longest prefix of its
    /// path, else it ends UNIMPLEMENTED. A pattern added again replaces the earlier one.
    ///
    /// ```no_run
    /// # fn run(server: anygrpc::Server) {
    /// use anygrpc::{ServerCall, Status, Metadata};
    /// // Every call no service or exact handler takes, whatever its path.
    /// server.add_generic_handler("/", |call: ServerCall| {
    ///     Box::pin(async move {
    ///         let status = Status::not_found(format!("nothing behind {}", call.path()));
    ///         call.finish(status, Metadata::new());
    ///     })
    /// });
    /// # }
    /// ```
    pub fn add_generic_handler<F>(&self, path: &str, handler: F) -> &Self
    where
        F: Fn(ServerCall) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    {
        let mut registry = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner());
        registry.add_generic(path, Box::new(handler));
        self
    }

    /// Compresses every call's response messages with `compression` (an [`Encoding`](
    /// crate::Encoding) at its default level, or a [`Compression`] with a level) when the
    /// client announced that encoding in `grpc-accept-encoding`; calls whose client did not
    /// get plain responses. A handler's [`ServicerContext::set_compression`] overrides it for
    /// its call. Applies to the calls that start after it.
    ///
    /// ```no_run
    /// # fn run(runtime: anygrpc::RuntimeRef) {
    /// use anygrpc::{Compression, CompressionLevel, Encoding, Server};
    /// let server = Server::new(runtime);
    /// server.default_compression(Compression::new(Encoding::Gzip).with_level(CompressionLevel::Fastest));
    /// # }
    /// ```
    pub fn default_compression(&self, compression: impl Into<Compression>) -> &Self {
        *self
            .inner
            .compression
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(compression.into());
        self
    }

    /// Binds a cleartext port (`127.0.0.1:0`, `[::]:50051`, `localhost:0`) and returns the
    /// bound port. Serving starts with [`start`](Self::start).
    pub async fn add_insecure_port(&self, address: &str) -> io::Result<u16> {
        let addr = parse_bind_address(address)?;
        let listener = self.inner.runtime.listen(addr).await?;
        self.add_listener(listener)
    }

    /// Binds a TLS port secured by `credentials` and returns the bound port. Each connection
    /// runs its handshake in its own task; clients that do not negotiate ALPN `h2` (or fail
    /// the required client-certificate check) are dropped.
    #[cfg(feature = "tls")]
    pub async fn add_secure_port(
        &self,
        address: &str,
        credentials: crate::tls::ServerCredentials,
    ) -> io::Result<u16> {
        let addr = parse_bind_address(address)?;
        let listener = self.inner.runtime.listen(addr).await?;
        self.add_listener(Box::new(crate::tls::TlsListener::new(
            listener,
            &credentials,
            self.inner.runtime.clone(),
        )))
    }

    fn add_listener(&self, listener: Box<dyn Listener>) -> io::Result<u16> {
        let port = listener.local_addr()?.port();
        let mut state = self.lock();
        if state.started {
            drop(state);
            self.serve(listener);
        } else {
            state.listeners.push(listener);
        }
        Ok(port)
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

/// Accepts `host:port` with a literal IP or a name resolved by the standard library (bind
/// addresses are local, so this blocking lookup is instant).
fn parse_bind_address(address: &str) -> io::Result<SocketAddr> {
    if let Ok(addr) = address.parse() {
        return Ok(addr);
    }
    address.to_socket_addrs()?.next().ok_or_else(|| {
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
        )
        .compress_responses(*inner.compression.read().unwrap_or_else(|p| p.into_inner()));
        let path = call.path().to_string();
        let handle = call.handle();
        let found = inner
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .route(&path);
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
    fn exact_paths_then_services_then_the_longest_prefix() {
        struct Named;
        impl Service for Named {
            fn name(&self) -> &'static str {
                "pkg.Local"
            }
            fn call(&self, _: &str, _: ServerCall) -> Option<BoxFuture<'static, ()>> {
                None
            }
        }
        let handler = |_: ServerCall| -> BoxFuture<'static, ()> { Box::pin(async {}) };
        let mut registry = Registry::default();
        registry
            .services
            .insert("pkg.Local".into(), Arc::new(Named) as Arc<dyn Service>);
        for pattern in [
            "/",
            "/pkg.Remote/",
            "/pkg.Remote/Exact",
            "/pkg.Local/",
            "/pkg.",
        ] {
            registry.add_generic(pattern, Box::new(handler));
        }
        let generic = |pattern: &str| -> Arc<GenericHandler> {
            match pattern.ends_with('/') {
                true => registry
                    .prefixes
                    .iter()
                    .find(|(p, _)| p == pattern)
                    .map(|(_, h)| h.clone())
                    .expect("a prefix"),
                false => registry
                    .generic
                    .get(pattern)
                    .cloned()
                    .expect("an exact path"),
            }
        };
        let routed = |path: &str| -> Option<String> {
            match registry.route(path)? {
                Found::Service(service, method) => Some(format!("{}:{method}", service.name())),
                Found::Generic(found) => ["/", "/pkg.Remote/", "/pkg.Remote/Exact", "/pkg.Local/"]
                    .into_iter()
                    .find(|p| Arc::ptr_eq(&generic(p), &found))
                    .map(str::to_string),
            }
        };
        assert_eq!(
            routed("/pkg.Remote/Exact").as_deref(),
            Some("/pkg.Remote/Exact")
        );
        assert_eq!(routed("/pkg.Remote/Other").as_deref(), Some("/pkg.Remote/"));
        assert_eq!(
            routed("/pkg.Local/Any").as_deref(),
            Some("pkg.Local:Any"),
            "services win"
        );
        assert_eq!(
            routed("/other.Svc/M").as_deref(),
            Some("/"),
            "the catch-all"
        );
        // "/pkg." does not end in `/`: an exact path, not a prefix.
        assert_eq!(routed("/pkg.Other/M").as_deref(), Some("/"));
        assert!(registry.generic.contains_key("/pkg."));
        // Adding a prefix again replaces it; removing the catch-all leaves nothing.
        registry.add_generic("/pkg.Remote/", Box::new(handler));
        assert_eq!(registry.prefixes.len(), 3);
        registry.prefixes.retain(|(p, _)| p != "/");
        assert!(registry.route("/other.Svc/M").is_none());
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(parse_bind_address("127.0.0.1:0").unwrap().port(), 0);
        assert!(parse_bind_address("[::]:50051").unwrap().is_ipv6());
        assert!(parse_bind_address("localhost:0").is_ok());
        assert!(parse_bind_address("not an address").is_err());
    }
}

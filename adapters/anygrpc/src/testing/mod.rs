//! A deterministic in-memory [`Runtime`] for tests of real clients and servers, and the
//! conformance checks every runtime must pass.
//!
//! [`MemoryRuntime`] replaces the three things that make network tests slow and flaky:
//! - **sockets** by in-memory pipes with bounded buffers ([`MemoryStream`]): `listen(addr)`
//!   registers the address in the runtime's own table (port 0 picks a free port), `connect(addr)`
//!   hands one end of a new pipe to that listener, an address nobody listens on is refused;
//!   [`PipeControl`] freezes or breaks a connection from the test;
//! - **the clock** by a manual one: [`now`](MemoryRuntime::now) is virtual and moves only when the
//!   test calls [`advance`](MemoryRuntime::advance), [`advance_to`](MemoryRuntime::advance_to),
//!   [`advance_to_next_timer`](MemoryRuntime::advance_to_next_timer), or when
//!   [`block_on`](MemoryRuntime::block_on) auto-advances; timers fire in deadline order;
//! - **threads** by a single-threaded executor the test drives
//!   ([`run_until_stalled`](MemoryRuntime::run_until_stalled), [`block_on`](MemoryRuntime::block_on));
//!   **DNS** by a table the test fills ([`add_host`](MemoryRuntime::add_host)).
//!
//! Nothing runs on another thread and nothing reads the real clock after construction (the
//! start instant is read once, as `Instant` has no other constructor), so a test is reproducible.
//!
//! ```
//! use std::time::Duration;
//! use anygrpc::testing::MemoryRuntime;
//! use anygrpc::Runtime;
//!
//! let rt = MemoryRuntime::new();
//! let start = rt.now();
//! let timer = rt.sleep_until(start + Duration::from_secs(3600));
//! // Auto-advance: an hour passes at once, because nothing else could run.
//! rt.block_on(timer);
//! assert_eq!(rt.now(), start + Duration::from_secs(3600));
//! ```

mod clock;
mod conformance;
mod executor;
mod net;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

pub use crate::pipe::{DEFAULT_PIPE_CAPACITY, MemoryStream, PipeControl, grpc_peer, pipe};
#[cfg(unix)]
pub use conformance::check_unix_sockets;
pub use conformance::{
    check_refused, check_resolve, check_sockets, check_spawn, check_timers, runtime_conformance,
};
pub use net::{ACCEPT_BACKLOG, MemoryListener};

use crate::runtime::{BoxFuture, Listener, Runtime, RuntimeRef, Transport};

struct Shared {
    clock: clock::Clock,
    executor: executor::Executor,
    network: net::Network,
    auto_advance: AtomicBool,
    start: Instant,
}

/// An in-memory runtime with a manual clock and a test-driven executor; clones share it.
#[derive(Clone)]
pub struct MemoryRuntime {
    shared: Arc<Shared>,
}

impl fmt::Debug for MemoryRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRuntime")
            .field("elapsed", &self.elapsed())
            .field("clock", &self.shared.clock)
            .field("executor", &self.shared.executor)
            .field("network", &self.shared.network)
            .finish()
    }
}

impl Default for MemoryRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRuntime {
    /// A runtime with no listeners, `localhost` resolving to 127.0.0.1 and ::1, pipes of
    /// [`DEFAULT_PIPE_CAPACITY`] bytes per direction, and auto-advance on.
    pub fn new() -> Self {
        let start = Instant::now();
        Self {
            shared: Arc::new(Shared {
                clock: clock::Clock::new(start),
                executor: executor::Executor::default(),
                network: net::Network::new(DEFAULT_PIPE_CAPACITY),
                auto_advance: AtomicBool::new(true),
                start,
            }),
        }
    }

    /// This runtime as the shared handle anygrpc's channels and servers take.
    pub fn handle(&self) -> RuntimeRef {
        Arc::new(self.clone())
    }

    // ---- executor ----

    /// Spawns a task; it first runs at the next [`run_until_stalled`](Self::run_until_stalled)
    /// or [`block_on`](Self::block_on).
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.shared.executor.spawn(Box::pin(task));
    }

    /// Runs spawned tasks until none is ready (all wait on I/O, timers, or each other). Time
    /// does not move. Returns how many task polls it made.
    ///
    /// # Panics
    /// When called from inside a task this runtime runs, or when tasks keep waking each other
    /// without end.
    pub fn run_until_stalled(&self) -> usize {
        self.shared.executor.run_until_stalled()
    }

    /// Runs `future` on the calling thread, together with the spawned tasks, until it completes.
    ///
    /// Each round polls `future` if it was woken, then runs spawned tasks until stalled. When
    /// nothing at all can run, and auto-advance is on (the default, see
    /// [`set_auto_advance`](Self::set_auto_advance)), the clock jumps to the earliest pending
    /// timer and fires it: a test of a 30 s deadline takes microseconds, and time never moves
    /// while anything can still run.
    ///
    /// # Panics
    /// When everything is stalled and no timer can help (auto-advance off, or no timer pending):
    /// the test would otherwise hang. Also when called from inside a task this runtime runs.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        let flag = Arc::new(executor::Flag::default());
        let waker = Waker::from(Arc::clone(&flag));
        let mut woken = true;
        loop {
            if woken {
                if let Poll::Ready(out) = executor::poll_once(future.as_mut(), &waker) {
                    return out;
                }
            }
            self.run_until_stalled();
            woken = flag.take();
            if woken || self.shared.executor.has_ready() {
                continue;
            }
            if self.auto_advance() && self.advance_to_next_timer().is_some() {
                continue;
            }
            panic!(
                "MemoryRuntime::block_on: deadlock, nothing can run (auto_advance: {}, pending timers: {}, live tasks: {})",
                self.auto_advance(),
                self.shared.clock.pending_timers(),
                self.shared.executor.live_tasks()
            );
        }
    }

    /// Starts `server` on an in-memory port and returns a channel to it: the set-up of a
    /// test of one service.
    pub fn serve(&self, server: &crate::Server) -> crate::Channel {
        let port = self
            .block_on(server.add_insecure_port("127.0.0.1:0"))
            .expect("an in-memory port");
        server.start();
        crate::Channel::builder(format!("127.0.0.1:{port}"), self.handle())
            .build()
            .expect("a valid target")
    }

    /// Whether [`block_on`](Self::block_on) moves the clock to the next timer when everything
    /// is stalled. On by default; turn it off to step time only by hand.
    pub fn set_auto_advance(&self, on: bool) {
        self.shared.auto_advance.store(on, Ordering::Release);
    }

    /// See [`set_auto_advance`](Self::set_auto_advance).
    pub fn auto_advance(&self) -> bool {
        self.shared.auto_advance.load(Ordering::Acquire)
    }

    /// Tasks ever spawned.
    pub fn spawned_tasks(&self) -> usize {
        self.shared.executor.spawned_tasks()
    }

    /// Tasks spawned and not finished.
    pub fn live_tasks(&self) -> usize {
        self.shared.executor.live_tasks()
    }

    /// Drops every spawned task without running it again, closing what it owns (tasks often
    /// hold a clone of the runtime, so dropping the runtime alone does not free them).
    pub fn shutdown(&self) {
        self.shared.executor.shutdown();
    }

    // ---- clock ----

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.shared.clock.now()
    }

    /// The virtual time at construction.
    pub fn start(&self) -> Instant {
        self.shared.start
    }

    /// Virtual time elapsed since construction.
    pub fn elapsed(&self) -> Duration {
        self.now().saturating_duration_since(self.shared.start)
    }

    /// Moves the clock forward by `by`; see [`advance_to`](Self::advance_to).
    pub fn advance(&self, by: Duration) {
        self.advance_to(self.now() + by);
    }

    /// Moves the clock to `target` (never backwards), waking the timers due by then in deadline
    /// order, with `now` at each one's deadline as it fires. Woken tasks run at the next
    /// [`run_until_stalled`](Self::run_until_stalled) or [`block_on`](Self::block_on) round,
    /// by then at `target`: to see each step, advance in steps or use auto-advance.
    pub fn advance_to(&self, target: Instant) {
        self.shared.clock.advance_to(target);
    }

    /// Moves the clock to the earliest pending timer's deadline and fires every timer due then.
    /// Returns that deadline, or `None` (and the clock stays) when no timer is pending.
    pub fn advance_to_next_timer(&self) -> Option<Instant> {
        let next = self.shared.clock.next_deadline()?;
        self.shared.clock.advance_to(next);
        Some(next)
    }

    /// Timers polled and not yet fired or dropped.
    pub fn pending_timers(&self) -> usize {
        self.shared.clock.pending_timers()
    }

    // ---- network ----

    /// Makes `name` (case-insensitive) resolve to `addrs`, replacing what it resolved to.
    pub fn add_host(&self, name: &str, addrs: Vec<IpAddr>) {
        self.shared.network.add_host(name, addrs);
    }

    /// Makes `name` fail to resolve (`NotFound`).
    pub fn remove_host(&self, name: &str) {
        self.shared.network.remove_host(name);
    }

    /// Bytes each direction of a new connection holds before writes wait.
    pub fn set_pipe_capacity(&self, bytes: usize) {
        self.shared.network.set_capacity(bytes);
    }

    /// Controls of the connections made and not closed at both ends, oldest first; `addrs()`
    /// tells (client, server) apart.
    pub fn connections(&self) -> Vec<PipeControl> {
        self.shared.network.connections()
    }
}

impl Runtime for MemoryRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.shared.executor.spawn(task);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(self.shared.clock.sleep_until(deadline))
    }

    fn now(&self) -> Instant {
        self.shared.clock.now()
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        let result = self
            .shared
            .network
            .connect(addr)
            .map(|s| Box::new(s) as Box<dyn Transport>);
        Box::pin(std::future::ready(result))
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        let result = self
            .shared
            .network
            .listen(addr)
            .map(|l| Box::new(l) as Box<dyn Listener>);
        Box::pin(std::future::ready(result))
    }

    /// Unix sockets live in the runtime's table, not in the file system: paths need not
    /// exist, and a dropped listener frees its path.
    fn connect_unix(&self, path: String) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        let result = self
            .shared
            .network
            .connect_unix(&path)
            .map(|s| Box::new(s) as Box<dyn Transport>);
        Box::pin(std::future::ready(result))
    }

    fn listen_unix(&self, path: String) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        let result = self
            .shared
            .network
            .listen_unix(path)
            .map(|l| Box::new(l) as Box<dyn Listener>);
        Box::pin(std::future::ready(result))
    }

    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        Box::pin(std::future::ready(self.shared.network.resolve(&host, port)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn passes_the_runtime_conformance_checks() {
        let rt = MemoryRuntime::new();
        rt.block_on(runtime_conformance(rt.handle()));
        // The timers check waited 60 virtual ms, and no real time is needed for that.
        assert!(rt.elapsed() >= Duration::from_millis(60));
        assert_eq!(rt.live_tasks(), 0);
    }

    #[test]
    fn advance_fires_due_timers_and_run_until_stalled_runs_their_tasks() {
        let rt = MemoryRuntime::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        for secs in [3, 1, 2] {
            let (sleep, log, handle) = (
                rt.sleep_until(rt.now() + Duration::from_secs(secs)),
                Arc::clone(&log),
                rt.clone(),
            );
            rt.spawn(async move {
                sleep.await;
                log.lock().unwrap().push((secs, handle.elapsed().as_secs()));
            });
        }
        assert_eq!(rt.run_until_stalled(), 3);
        assert_eq!(rt.pending_timers(), 3);
        rt.advance(Duration::from_millis(2500));
        rt.run_until_stalled();
        assert_eq!(
            *log.lock().unwrap(),
            vec![(1, 2), (2, 2)],
            "deadline order; tasks run after the advance"
        );
        assert_eq!(
            rt.advance_to_next_timer(),
            Some(rt.start() + Duration::from_secs(3))
        );
        rt.run_until_stalled();
        assert_eq!(log.lock().unwrap().last(), Some(&(3, 3)));
        assert_eq!(rt.advance_to_next_timer(), None);
    }

    #[test]
    fn block_on_auto_advances_only_when_everything_is_stalled() {
        let rt = MemoryRuntime::new();
        let busy = Arc::new(Mutex::new(0u32));
        // A task that needs ten rounds of wake-ups, all at the same virtual instant.
        let counter = Arc::clone(&busy);
        rt.spawn(async move {
            for _ in 0..10 {
                *counter.lock().unwrap() += 1;
                let mut yielded = false;
                std::future::poll_fn(|cx| {
                    if yielded {
                        return Poll::Ready(());
                    }
                    yielded = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                })
                .await;
            }
        });
        let timer = rt.sleep_until(rt.now() + Duration::from_secs(5));
        let observed = rt.block_on({
            let busy = Arc::clone(&busy);
            async move {
                timer.await;
                *busy.lock().unwrap()
            }
        });
        assert_eq!(observed, 10, "the busy task finished before time moved");
        assert_eq!(rt.elapsed(), Duration::from_secs(5));
    }

    #[test]
    #[should_panic(expected = "deadlock")]
    fn block_on_reports_a_deadlock_instead_of_hanging() {
        let rt = MemoryRuntime::new();
        rt.set_auto_advance(false);
        let timer = rt.sleep_until(rt.now() + Duration::from_secs(1));
        rt.block_on(timer);
    }

    #[test]
    fn a_frozen_connection_times_out_on_the_virtual_clock_and_delivers_when_thawed() {
        use futures_util::future::{Either, select};
        use futures_util::io::{AsyncReadExt, AsyncWriteExt};
        let rt = MemoryRuntime::new();
        let handle = rt.handle();
        rt.block_on(async {
            let mut listener = handle
                .listen("127.0.0.1:50051".parse().unwrap())
                .await
                .unwrap();
            let mut client = handle
                .connect("127.0.0.1:50051".parse().unwrap())
                .await
                .unwrap();
            let mut server = crate::runtime::accept(&mut *listener).await.unwrap();
            rt.connections()[0].freeze();
            client.write_all(b"ping").await.unwrap();
            let mut buf = [0; 4];
            let limit = handle.sleep_until(rt.now() + Duration::from_secs(20));
            match select(server.read_exact(&mut buf), limit).await {
                Either::Left(_) => panic!("bytes crossed a frozen pipe"),
                Either::Right(((), _)) => assert_eq!(rt.elapsed(), Duration::from_secs(20)),
            }
            rt.connections()[0].unfreeze();
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
        });
    }

    #[test]
    fn connections_can_be_broken_from_the_test() {
        use futures_util::io::{AsyncReadExt, AsyncWriteExt};
        let rt = MemoryRuntime::new();
        let handle = rt.handle();
        rt.block_on(async {
            let mut listener = handle.listen("[::1]:0".parse().unwrap()).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut client = handle.connect(addr).await.unwrap();
            let mut server = crate::runtime::accept(&mut *listener).await.unwrap();
            assert_eq!(client.peer(), format!("ipv6:[::1]:{}", addr.port()));
            let conns = rt.connections();
            assert_eq!(conns.len(), 1);
            assert_eq!(conns[0].addrs().1, addr);
            conns[0].break_pipe();
            assert_eq!(
                client.write(b"x").await.unwrap_err().kind(),
                io::ErrorKind::ConnectionReset
            );
            assert_eq!(
                server.read(&mut [0; 1]).await.unwrap_err().kind(),
                io::ErrorKind::ConnectionReset
            );
        });
    }
}

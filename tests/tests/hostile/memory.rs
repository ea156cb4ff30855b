//! The suite on [`MemoryRuntime`]: the server or channel under test runs on the memory
//! runtime, driven by [`run`] on the test's thread, and the raw peer, on its own thread as
//! ever, speaks through one end of a memory pipe ([`BlockingPipe`]).
//!
//! **The clock.** `MemoryRuntime::block_on` jumps virtual time to the next timer whenever
//! nothing can run; with a peer working on another real thread that would fire the settings,
//! header-block and keepalive timers (and the suite's watchdog) early. So [`run`] drives the
//! executor itself and never jumps: virtual time follows real time (the runtime's clock
//! starts at the real `Instant::now()` and is moved to the real now on every round of the
//! driver and before every operation of a raw peer). The cases' real-time waits in the peer
//! thread and their `env.sleep`s then measure the same time, as on sockets.
//!
//! **Wake-ups across threads.** A raw peer's write or read wakes the runtime's task that
//! waits on the other end of the pipe; the driver thread may be parked then, so every pipe
//! operation that completed also unparks it. The driver never parks longer than [`TICK`],
//! which bounds how late a timer fires.
//!
//! **Finding the network.** The cases name only ports; [`run`] installs the case's runtime
//! for raw peers to find through [`network`] (the cases of a binary run one at a time), and
//! [`Peer`](super::peer::Peer) connects and listens there instead of on loopback TCP.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use anygrpc::testing::MemoryRuntime;
use anygrpc::{Listener, Runtime, Transport};
use futures_util::io::{AsyncRead, AsyncWrite};

use super::peer::{READ_LIMIT, Wire};
use super::{Env, serial, watched};

/// The longest the driver parks without a wake-up: how late a timer may fire.
pub const TICK: Duration = Duration::from_millis(1);

/// Bytes each direction of a pipe holds. A pipe's bytes are heap the counting allocator
/// sees, where a socket's are kernel buffers it does not; and a read takes as much of a full
/// pipe as fits, which grows the driver's adaptive read buffer to match. With the default
/// 256 KiB pipes the CONTINUATION flood and the 4 GiB prefix case measured 130 KB and 520 KB
/// over their bounds for that alone; 64 KiB keeps the pipes' share small and leaves every
/// bound as on sockets.
pub const PIPE_CAPACITY: usize = 64 << 10;

/// The memory network raw peers use while a case runs on the memory runtime.
static NETWORK: Mutex<Option<MemoryNet>> = Mutex::new(None);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The memory runtime a case runs on, as raw peers see it: its network and the thread that
/// drives it.
#[derive(Debug, Clone)]
pub struct MemoryNet {
    runtime: MemoryRuntime,
    driver: Thread,
}

/// The memory network of the case running now, if it runs on the memory runtime (raw peers
/// use loopback TCP otherwise).
pub fn network() -> Option<MemoryNet> {
    lock(&NETWORK).clone()
}

/// When the case ends, panicking or not: clears [`NETWORK`] and drops the runtime's tasks
/// (they hold clones of the runtime, which would otherwise keep them alive).
struct Installed(MemoryRuntime);

impl Drop for Installed {
    fn drop(&mut self) {
        *lock(&NETWORK) = None;
        self.0.shutdown();
    }
}

/// Runs `case` on a new [`MemoryRuntime`], raw peers on its network, under the suite's
/// watchdog; the cases of a binary run one at a time.
pub fn run<F: Future<Output = ()>>(case: impl FnOnce(Env) -> F) {
    let _one_at_a_time = serial();
    let runtime = MemoryRuntime::new();
    // Never used by `drive`; off also in case anything calls `block_on`.
    runtime.set_auto_advance(false);
    runtime.set_pipe_capacity(PIPE_CAPACITY);
    *lock(&NETWORK) = Some(MemoryNet {
        runtime: runtime.clone(),
        driver: thread::current(),
    });
    let _installed = Installed(runtime.clone());
    drive(&runtime, watched(runtime.handle(), case));
}

/// A waker that unparks a thread, remembering that it was woken.
#[derive(Debug)]
struct Unpark {
    thread: Thread,
    woken: AtomicBool,
}

impl Unpark {
    /// A waker for the calling thread, already marked woken.
    fn current() -> Arc<Self> {
        Arc::new(Self {
            thread: thread::current(),
            woken: AtomicBool::new(true),
        })
    }

    /// Whether it was woken since the last call; clears the mark.
    fn take(&self) -> bool {
        self.woken.swap(false, Ordering::AcqRel)
    }
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Runs `future` with the runtime's tasks on this thread until it completes, moving virtual
/// time along with real time, and parking (at most [`TICK`]) while nothing can run.
fn drive<F: Future>(runtime: &MemoryRuntime, future: F) -> F::Output {
    let mut future = pin!(future);
    let unpark = Unpark::current();
    let waker = Waker::from(Arc::clone(&unpark));
    loop {
        runtime.advance_to(Instant::now());
        if unpark.take()
            && let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(&waker))
        {
            return out;
        }
        let polls = runtime.run_until_stalled();
        if polls == 0 && !unpark.woken.load(Ordering::Acquire) {
            thread::park_timeout(TICK);
        }
    }
}

/// Polls `op` on the calling thread until it is ready or `limit` passed (then `TimedOut`).
fn block_within<T>(
    limit: Duration,
    mut op: impl FnMut(&mut Context<'_>) -> Poll<io::Result<T>>,
) -> io::Result<T> {
    let deadline = Instant::now() + limit;
    let waker = Waker::from(Unpark::current());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(result) = op(&mut cx) {
            return result;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        thread::park_timeout(left);
    }
}

impl MemoryNet {
    /// Moves virtual time to the real now, and lets the driver run what that or a pipe
    /// operation woke.
    fn nudge(&self) {
        self.runtime.advance_to(Instant::now());
        self.driver.unpark();
    }

    /// A connection to `127.0.0.1:port` on the memory network.
    pub fn connect(&self, port: u16) -> BlockingPipe {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut connecting = self.runtime.connect(addr);
        let stream = block_within(READ_LIMIT, |cx| connecting.as_mut().poll(cx))
            .expect("connect to the server");
        self.nudge();
        BlockingPipe::new(stream, self.clone())
    }

    /// A listener on `127.0.0.1`, on a port the runtime picks.
    pub fn listen(&self) -> BlockingListener {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let mut listening = self.runtime.listen(addr);
        let listener = block_within(READ_LIMIT, |cx| listening.as_mut().poll(cx))
            .expect("bind the raw server");
        BlockingListener {
            listener: Mutex::new(listener),
            net: self.clone(),
        }
    }
}

/// A listener on the memory network, accepting on a blocking thread.
pub struct BlockingListener {
    listener: Mutex<Box<dyn Listener>>,
    net: MemoryNet,
}

impl std::fmt::Debug for BlockingListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingListener")
            .field("port", &self.port())
            .finish()
    }
}

impl BlockingListener {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        lock(&self.listener).local_addr().expect("bound").port()
    }

    /// The next connection, within `limit`.
    pub fn accept(&self, limit: Duration) -> BlockingPipe {
        let mut listener = lock(&self.listener);
        let stream =
            block_within(limit, |cx| listener.poll_accept(cx)).expect("a client connected");
        BlockingPipe::new(stream, self.net.clone())
    }
}

/// One end of a memory pipe, read and written by a blocking thread: a raw peer's [`Wire`].
pub struct BlockingPipe {
    stream: Box<dyn Transport>,
    net: MemoryNet,
    /// Dropped after `stream` (fields drop in order).
    _closing: UnparkOnDrop,
}

impl std::fmt::Debug for BlockingPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingPipe")
            .field("peer", &self.stream.peer())
            .finish()
    }
}

impl BlockingPipe {
    fn new(stream: Box<dyn Transport>, net: MemoryNet) -> Self {
        let closing = UnparkOnDrop(net.driver.clone());
        Self {
            stream,
            net,
            _closing: closing,
        }
    }
}

impl Wire for BlockingPipe {
    fn read_within(&mut self, buf: &mut [u8], limit: Duration) -> io::Result<usize> {
        self.net.nudge();
        let stream = &mut self.stream;
        let read = block_within(limit, |cx| {
            AsyncRead::poll_read(Pin::new(&mut **stream), cx, buf)
        });
        // The read made room in the pipe: its writer may be waiting for it.
        self.net.nudge();
        read
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.net.nudge();
            let stream = &mut self.stream;
            let written = block_within(READ_LIMIT, |cx| {
                AsyncWrite::poll_write(Pin::new(&mut **stream), cx, bytes)
            });
            self.net.nudge();
            match written? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => bytes = &bytes[n..],
            }
        }
        Ok(())
    }
}

/// Unparks the driver when dropped: placed after a pipe's stream, so that the driver runs the
/// task its closing woke.
#[derive(Debug)]
struct UnparkOnDrop(Thread);

impl Drop for UnparkOnDrop {
    fn drop(&mut self) {
        self.0.unpark();
    }
}

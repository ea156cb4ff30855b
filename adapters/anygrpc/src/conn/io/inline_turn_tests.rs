//! The inline turn and its rules, on a real driver over memory pipes: who writes a call's
//! first bytes, who reads, what waits for the task.

use std::sync::Arc;
use std::time::Instant;

use std::sync::atomic::AtomicUsize;

use anygrpc_core::{CallRequest, Config, Connection, Side};
use futures_io::{AsyncRead, AsyncWrite};

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use super::{Driver, DriverTask, ROUNDS_PER_TURN};
use crate::conn::cell::Polling;
use crate::conn::handle::{Command, ConnHandle, LAZY_CREDIT_MAX};
use crate::conn::policy::Urgency;
use crate::conn::slot::CallSlot;
use crate::testing::{MemoryRuntime, MemoryStream, pipe};

/// Reads what is in `end` now, without waiting.
fn available(end: &mut MemoryStream) -> usize {
    let mut buf = vec![0; 64 << 10];
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(end).poll_read(&mut cx, &mut buf) {
        Poll::Ready(Ok(n)) => n,
        _ => 0,
    }
}

/// A transport that counts the reads it was asked for, and the writes.
struct CountingReads {
    inner: MemoryStream,
    reads: Arc<AtomicUsize>,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for CountingReads {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingReads {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl crate::runtime::Transport for CountingReads {}

/// A client driver whose task ran once (preface and SETTINGS written and read off), and
/// the count of reads its transport was asked for.
fn started_counting(rt: &MemoryRuntime) -> (DriverTask, Arc<ConnHandle>, MemoryStream, Counts) {
    let addr = "127.0.0.1:1".parse().expect("an address");
    let (client_end, mut server_end, _control) = pipe(addr, addr, 1 << 20);
    let counts = Counts::default();
    let io = CountingReads {
        inner: client_end,
        reads: counts.reads.clone(),
        writes: counts.writes.clone(),
    };
    let conn = Connection::new(Side::Client, Arc::new(Config::client()), Instant::now());
    let (mut task, shared) =
        Driver::start(conn, Box::new(io), rt.handle(), None, Default::default());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
    assert!(available(&mut server_end) > 0, "preface");
    (task, shared, server_end, counts)
}

/// What a [`CountingReads`] counted.
#[derive(Default)]
struct Counts {
    reads: Arc<AtomicUsize>,
    writes: Arc<AtomicUsize>,
}

/// A client driver whose task ran once.
fn started(rt: &MemoryRuntime) -> (DriverTask, Arc<ConnHandle>, MemoryStream) {
    let (task, shared, server_end, _) = started_counting(rt);
    (task, shared, server_end)
}

/// The start of a call bound to `shared`.
fn start(shared: &Arc<ConnHandle>) -> Command {
    Command::Start {
        slot: CallSlot::bound_to(shared),
        request: CallRequest::new("/a.B/C", "x").into(),
    }
}

#[test]
fn a_call_on_a_quiet_connection_is_written_by_the_caller() {
    let rt = MemoryRuntime::new();
    let (_task, shared, mut server_end) = started(&rt);
    // Queued and kicked: the kick wrote the request; nobody polled the task.
    shared
        .enqueue([start(&shared)], Urgency::Open)
        .expect("open")
        .run();
    assert!(available(&mut server_end) > 0, "written inline");
    // A second call while the first is active is left to the task, to be batched.
    shared
        .enqueue([start(&shared)], Urgency::Open)
        .expect("open")
        .run();
    assert_eq!(available(&mut server_end), 0, "left to the task");
}

#[test]
fn a_poll_asks_a_quiet_transport_once_and_an_inline_poll_not_at_all() {
    let rt = MemoryRuntime::new();
    let (mut task, shared, mut server_end, counts) = started_counting(&rt);
    let reads = counts.reads;
    // The task's poll went round several times (commands, writes) but asked the empty
    // transport for bytes once: its waker was registered by then.
    let first = reads.load(Ordering::Relaxed);
    assert_eq!(first, 1, "one read attempt in the first poll");
    // The caller writes its call without trying to read: reading stays the task's.
    shared
        .enqueue([start(&shared)], Urgency::Open)
        .expect("open")
        .run();
    assert!(available(&mut server_end) > 0, "written inline");
    assert_eq!(reads.load(Ordering::Relaxed), first, "no read inline");
    // The task, polled again, asks once more and stops at the first `Pending`.
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
    assert_eq!(reads.load(Ordering::Relaxed), first + 1);
}

fn send(slot: &Arc<CallSlot>) -> Command {
    Command::Send {
        slot: slot.clone(),
        message: bytes::Bytes::from_static(b"ping"),
        compressed: false,
    }
}

/// Starts a call through the task and returns its slot; what it wrote stays unread.
fn start_call(task: &mut DriverTask, shared: &Arc<ConnHandle>) -> Arc<CallSlot> {
    let slot = CallSlot::bound_to(shared);
    shared
        .enqueue(
            [Command::Start {
                slot: slot.clone(),
                request: CallRequest::new("/a.B/C", "x").into(),
            }],
            Urgency::Open,
        )
        .expect("open")
        .run();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(task).poll(&mut cx).is_pending());
    assert!(slot.lock().stream.is_some(), "started");
    slot
}

/// Starts a call through the task and returns its slot.
fn running_call(
    task: &mut DriverTask,
    shared: &Arc<ConnHandle>,
    server_end: &mut MemoryStream,
) -> Arc<CallSlot> {
    let slot = start_call(task, shared);
    available(server_end);
    slot
}

#[test]
fn a_lone_call_writes_its_messages_itself_and_busy_ones_leave_them_to_the_task() {
    let rt = MemoryRuntime::new();
    let (mut task, shared, mut server_end) = started(&rt);
    let first = running_call(&mut task, &shared, &mut server_end);
    shared
        .enqueue([send(&first)], Urgency::Output)
        .expect("open")
        .run();
    assert!(available(&mut server_end) > 0, "written by the sender");
    assert_eq!(first.lock().sends_accepted, 1, "accepted at once");
    // A cancel is never written inline, even for a lone call.
    shared
        .enqueue([Command::Cancel { slot: first }], Urgency::Cancel)
        .expect("open")
        .run();
    assert_eq!(available(&mut server_end), 0, "cancel left to the task");
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
    available(&mut server_end);
    // Two calls on the connection: the driver's task batches their output.
    let a = running_call(&mut task, &shared, &mut server_end);
    let _b = running_call(&mut task, &shared, &mut server_end);
    shared
        .enqueue([send(&a)], Urgency::Output)
        .expect("open")
        .run();
    assert_eq!(available(&mut server_end), 0, "left to the task");
    assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
    assert!(available(&mut server_end) > 0, "the task wrote it");
}

#[test]
fn what_a_handler_task_queues_in_one_poll_goes_out_in_one_write() {
    let rt = MemoryRuntime::new();
    let (mut task, shared, mut server_end, counts) = started_counting(&rt);
    let slot = running_call(&mut task, &shared, &mut server_end);
    assert!(
        !crate::conn::handler_task::defer(&shared),
        "no handler poll here"
    );
    let before = counts.writes.load(Ordering::Relaxed);
    let (conn, call) = (shared.clone(), slot.clone());
    let mut handler = crate::conn::handler_task::HandlerTask(Box::pin(async move {
        for _ in 0..3 {
            conn.enqueue([send(&call)], Urgency::Output)
                .expect("open")
                .run();
        }
    }));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut handler).poll(&mut cx).is_ready());
    assert_eq!(
        counts.writes.load(Ordering::Relaxed),
        before + 1,
        "one write"
    );
    assert_eq!(slot.lock().sends_accepted, 3, "all three applied");
    assert!(available(&mut server_end) > 3 * 9, "three DATA frames");
}

/// A waker that counts its wakes.
struct CountingWaker(AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn small_credit_waits_for_the_next_turn_and_large_credit_wakes_the_driver() {
    let rt = MemoryRuntime::new();
    let (mut task, shared, mut server_end) = started(&rt);
    let slot = running_call(&mut task, &shared, &mut server_end);
    let wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
    let release = |n| Command::Release {
        slot: slot.clone(),
        n,
    };
    shared
        .enqueue([release(100)], Urgency::Credit(100))
        .expect("open")
        .run();
    shared
        .enqueue([release(1000)], Urgency::Credit(1000))
        .expect("open")
        .run();
    assert_eq!(wakes.0.load(Ordering::Relaxed), 0, "small credit is lazy");
    shared
        .enqueue([release(LAZY_CREDIT_MAX)], Urgency::Credit(LAZY_CREDIT_MAX))
        .expect("open")
        .run();
    assert_eq!(wakes.0.load(Ordering::Relaxed), 1, "the sum is not small");
    // The turn takes all three; the budget starts again.
    assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
    shared
        .enqueue([release(100)], Urgency::Credit(100))
        .expect("open")
        .run();
    assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
    // Lazy credit waiting in the queue does not keep a lone call from writing inline.
    shared
        .enqueue([send(&slot)], Urgency::Output)
        .expect("open")
        .run();
    assert!(available(&mut server_end) > 0, "written by the sender");
}

/// A waker that notes, at each wake, how many messages its call's inbox holds.
struct InboxAtWake {
    slot: Arc<CallSlot>,
    seen: std::sync::Mutex<Vec<usize>>,
}

impl std::task::Wake for InboxAtWake {
    fn wake(self: Arc<Self>) {
        let held = self.slot.lock().inbox.len();
        self.seen.lock().expect("not poisoned").push(held);
    }
}

/// Moves what `from` has written into `to`.
fn deliver(from: &mut MemoryStream, to: &mut Connection) {
    let mut buf = vec![0; 64 << 10];
    let mut cx = Context::from_waker(Waker::noop());
    while let Poll::Ready(Ok(n @ 1..)) = Pin::new(&mut *from).poll_read(&mut cx, &mut buf) {
        to.recv(&buf[..n], Instant::now());
    }
}

#[test]
fn a_waiter_is_woken_once_the_whole_read_is_delivered() {
    let rt = MemoryRuntime::new();
    let addr = "127.0.0.1:1".parse().expect("an address");
    let (client_end, mut server_end, _control) = pipe(addr, addr, 1 << 20);
    let conn = Connection::new(Side::Client, Arc::new(Config::client()), Instant::now());
    let (mut task, shared) = Driver::start(
        conn,
        Box::new(client_end),
        rt.handle(),
        None,
        Default::default(),
    );
    let mut server = Connection::new(Side::Server, Arc::new(Config::server()), Instant::now());
    let slot = start_call(&mut task, &shared);
    deliver(&mut server_end, &mut server);
    let stream = std::iter::from_fn(|| server.poll_event())
        .find_map(|event| match event {
            anygrpc_core::Event::CallStarted { stream, .. } => Some(stream),
            _ => None,
        })
        .expect("the call reached the server");
    for _ in 0..3 {
        server
            .send_message(stream, bytes::Bytes::from_static(b"pong"), false)
            .expect("accepted");
    }
    // The server's SETTINGS, the response head and three messages, in one read.
    let mut out = bytes::BytesMut::new();
    while server.poll_transmit(&mut out) > 0 {}
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        Pin::new(&mut server_end).poll_write(&mut cx, &out),
        Poll::Ready(Ok(n)) if n == out.len()
    ));
    let waiter = Arc::new(InboxAtWake {
        slot: slot.clone(),
        seen: Default::default(),
    });
    let waker = Waker::from(waiter.clone());
    assert!(
        slot.poll_with(&mut Context::from_waker(&waker), |_| None::<()>)
            .is_pending()
    );
    assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
    assert_eq!(
        *waiter.seen.lock().expect("not poisoned"),
        [3],
        "one wake, with every message of the read in the inbox"
    );
}

#[test]
fn a_call_started_from_inside_a_driver_is_left_to_the_task() {
    let rt = MemoryRuntime::new();
    let (mut task, shared, mut server_end) = started(&rt);
    {
        let _inside = Polling::enter();
        shared
            .enqueue([start(&shared)], Urgency::Open)
            .expect("open")
            .run();
    }
    assert_eq!(available(&mut server_end), 0, "not written inline");
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
    assert!(available(&mut server_end) > 0, "the task wrote it");
}

/// A peer that never stops sending: after its SETTINGS, PINGs without end, ten at a time.
/// Every write is taken.
struct EndlessPings {
    at: usize,
    reads: Arc<AtomicUsize>,
}

/// An empty SETTINGS, then PING frames repeated.
const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
const PING: [u8; 17] = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

impl AsyncRead for EndlessPings {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let n = buf.len().min(10 * PING.len());
        for byte in &mut buf[..n] {
            *byte = match self.at.checked_sub(SETTINGS.len()) {
                None => SETTINGS[self.at],
                Some(n) => PING[n % PING.len()],
            };
            self.at += 1;
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for EndlessPings {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl crate::runtime::Transport for EndlessPings {}

#[test]
fn a_connection_that_always_has_work_yields_its_thread() {
    let rt = MemoryRuntime::new();
    let reads = Arc::new(AtomicUsize::new(0));
    let io = EndlessPings {
        at: 0,
        reads: reads.clone(),
    };
    // PINGs do no work: the flood budget and the control backlog would end the connection
    // before the turn budget mattered, so they are out of the way here.
    let config = Config::client()
        .idle_frame_burst(u32::MAX)
        .idle_frame_rate(u32::MAX)
        .max_pending_control_frames(usize::MAX);
    let conn = Connection::new(Side::Client, Arc::new(config), Instant::now());
    let (mut task, _shared) =
        Driver::start(conn, Box::new(io), rt.handle(), None, Default::default());
    let wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    for poll in 1..=3 {
        assert!(
            Pin::new(&mut task).poll(&mut cx).is_pending(),
            "poll {poll}"
        );
        assert_eq!(
            wakes.0.load(Ordering::Relaxed),
            poll,
            "yielded, and asked to go on"
        );
    }
    let most = 3 * ROUNDS_PER_TURN * super::READS_PER_TURN;
    assert!(
        reads.load(Ordering::Relaxed) <= most,
        "{} reads",
        reads.load(Ordering::Relaxed)
    );
}

#[test]
fn done_callbacks_run_once_the_turn_let_go_of_the_driver() {
    let rt = MemoryRuntime::new();
    let (mut task, shared, _server_end) = started(&rt);
    let slot = start_call(&mut task, &shared);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    slot.on_done(Box::new(move || {
        record.lock().expect("not poisoned").push(Polling::active());
    }));
    // The channel closes: the turn that applies it ends the call.
    shared
        .enqueue([Command::Close], Urgency::Control)
        .expect("open")
        .run();
    let mut cx = Context::from_waker(Waker::noop());
    let _ = Pin::new(&mut task).poll(&mut cx);
    assert!(slot.lock().outcome.is_some(), "the call ended");
    assert_eq!(
        *seen.lock().expect("not poisoned"),
        [false],
        "run once, outside the turn"
    );
}

//! In-memory duplex pipes: the connections of in-process channels
//! ([`Server::in_process_channel`](crate::Server::in_process_channel)) and the sockets of the
//! `testing` feature's `MemoryRuntime`. They need only wakers, no executor and no reactor.
//!
//! A pipe is two bounded byte queues, one per direction, shared by its two ends. A writer gets
//! `Pending` while the peer's queue is full (back-pressure, like a socket's send buffer), a reader
//! gets `Ok(0)` once the peer closed or dropped its end, and a writer gets `BrokenPipe` once the
//! peer dropped its end. A [`PipeControl`] can freeze the pipe (bytes stay queued, undelivered:
//! a silent network, for keepalive tests) or break it (every read and write on both ends fails
//! with `ConnectionReset`: a lost connection).

#![cfg_attr(
    not(feature = "testing"),
    allow(
        dead_code,
        unreachable_pub,
        reason = "freezing, breaking and addressed pipes are the `testing` feature's"
    )
)]

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::Transport;

/// Bytes one direction of a pipe holds before writes return `Pending`: 256 KiB, about a
/// loopback socket's send plus receive buffer.
pub const DEFAULT_PIPE_CAPACITY: usize = 256 * 1024;

/// One direction: bytes written by one end, not yet read by the other.
#[derive(Debug, Default)]
struct Direction {
    bytes: VecDeque<u8>,
    /// The writing end closed or dropped: the reader sees EOF once `bytes` is drained.
    write_closed: bool,
    /// The reading end dropped: further writes fail with `BrokenPipe`.
    read_dropped: bool,
    /// The reader waiting for bytes or EOF.
    reader: Option<Waker>,
    /// The writer waiting for room.
    writer: Option<Waker>,
}

impl Direction {
    fn wake_all(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }
}

#[derive(Debug, Default)]
struct PipeState {
    /// `toward[i]`: bytes flowing toward end `i` (end `i` reads it, the other end writes it).
    toward: [Direction; 2],
    /// Bytes stay queued and undelivered while set; writes still fill the queues.
    frozen: bool,
    /// Both ends fail every read and write with `ConnectionReset`.
    broken: bool,
}

#[derive(Debug)]
struct PipeShared {
    state: Mutex<PipeState>,
    capacity: usize,
}

impl PipeShared {
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        // A panic while holding this lock leaves plain data behind: keep using it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn reset() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "in-memory pipe broken by the test",
    )
}

pub use crate::runtime::grpc_peer;

/// One end of an in-memory pipe; implements `AsyncRead`, `AsyncWrite` and [`Transport`].
pub struct MemoryStream {
    shared: Arc<PipeShared>,
    /// Which end: reads `toward[side]`, writes `toward[1 - side]`.
    side: usize,
    local: SocketAddr,
    peer: SocketAddr,
    /// How [`Transport::peer`] names the other end, when not by its address (`unix:`,
    /// `in-process`).
    peer_name: Option<Arc<str>>,
}

impl fmt::Debug for MemoryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStream")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .finish()
    }
}

/// Creates a connected pipe: bytes written to one end are read from the other.
///
/// `a` and `b` are the addresses the two ends report (`a.peer_addr() == b_addr`), and
/// `capacity` is the most bytes each direction holds before writes return `Pending`.
pub fn pipe(
    a: SocketAddr,
    b: SocketAddr,
    capacity: usize,
) -> (MemoryStream, MemoryStream, PipeControl) {
    let shared = Arc::new(PipeShared {
        state: Mutex::new(PipeState::default()),
        capacity: capacity.max(1),
    });
    let end_a = MemoryStream {
        shared: Arc::clone(&shared),
        side: 0,
        local: a,
        peer: b,
        peer_name: None,
    };
    let end_b = MemoryStream {
        shared: Arc::clone(&shared),
        side: 1,
        local: b,
        peer: a,
        peer_name: None,
    };
    (end_a, end_b, PipeControl { shared, a, b })
}

/// A pipe whose ends name their peers `a_peer` and `b_peer` (gRPC peer strings such as
/// `unix:/run/s.sock` or `in-process`) instead of by socket address; both report the
/// unspecified address `0.0.0.0:0`.
pub(crate) fn named_pipe(
    a_peer: &str,
    b_peer: &str,
    capacity: usize,
) -> (MemoryStream, MemoryStream, PipeControl) {
    let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
    let (mut a, mut b, control) = pipe(nowhere, nowhere, capacity);
    a.peer_name = Some(a_peer.into());
    b.peer_name = Some(b_peer.into());
    (a, b, control)
}

impl MemoryStream {
    /// The address this end reports as its own.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// A handle that freezes or breaks this pipe.
    pub fn control(&self) -> PipeControl {
        let (a, b) = if self.side == 0 {
            (self.local, self.peer)
        } else {
            (self.peer, self.local)
        };
        PipeControl {
            shared: Arc::clone(&self.shared),
            a,
            b,
        }
    }
}

impl AsyncRead for MemoryStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut state = self.shared.lock();
        if state.broken {
            return Poll::Ready(Err(reset()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let frozen = state.frozen;
        let dir = &mut state.toward[self.side];
        if frozen || (dir.bytes.is_empty() && !dir.write_closed) {
            dir.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = dir.bytes.len().min(buf.len());
        for (slot, byte) in buf.iter_mut().zip(dir.bytes.drain(..n)) {
            *slot = byte;
        }
        if let Some(w) = dir.writer.take() {
            w.wake();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for MemoryStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let capacity = self.shared.capacity;
        let mut state = self.shared.lock();
        if state.broken {
            return Poll::Ready(Err(reset()));
        }
        let dir = &mut state.toward[1 - self.side];
        if dir.read_dropped {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the peer dropped its end",
            )));
        }
        if dir.write_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "this end was closed for writing",
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = capacity.saturating_sub(dir.bytes.len());
        if room == 0 {
            dir.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        dir.bytes.extend(&buf[..n]);
        if let Some(w) = dir.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shared.lock().broken {
            return Poll::Ready(Err(reset()));
        }
        Poll::Ready(Ok(()))
    }

    /// Shuts down the writing half: the peer reads the queued bytes, then EOF.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        if state.broken {
            return Poll::Ready(Err(reset()));
        }
        let dir = &mut state.toward[1 - self.side];
        dir.write_closed = true;
        if let Some(w) = dir.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for MemoryStream {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let outgoing = &mut state.toward[1 - self.side];
        outgoing.write_closed = true;
        outgoing.wake_all();
        let incoming = &mut state.toward[self.side];
        incoming.read_dropped = true;
        incoming.bytes = VecDeque::new();
        incoming.wake_all();
    }
}

impl Transport for MemoryStream {
    fn peer(&self) -> String {
        match &self.peer_name {
            Some(name) => name.to_string(),
            None => grpc_peer(self.peer),
        }
    }
}

/// Freezes, thaws or breaks one pipe from the test, whoever holds its ends.
#[derive(Clone)]
pub struct PipeControl {
    shared: Arc<PipeShared>,
    a: SocketAddr,
    b: SocketAddr,
}

impl fmt::Debug for PipeControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("PipeControl")
            .field("a", &self.a)
            .field("b", &self.b)
            .field("frozen", &state.frozen)
            .field("broken", &state.broken)
            .finish()
    }
}

impl PipeControl {
    /// The addresses of the two ends: (connecting side, accepting side) for runtime connections.
    pub fn addrs(&self) -> (SocketAddr, SocketAddr) {
        (self.a, self.b)
    }

    /// Stops delivering bytes in both directions: readers wait, writers fill the queues up to
    /// their capacity and then wait. Nothing is lost; [`unfreeze`](Self::unfreeze) delivers it.
    pub fn freeze(&self) {
        self.shared.lock().frozen = true;
    }

    /// Resumes delivery after [`freeze`](Self::freeze).
    pub fn unfreeze(&self) {
        let mut state = self.shared.lock();
        state.frozen = false;
        state.toward.iter_mut().for_each(Direction::wake_all);
    }

    /// Whether the pipe is frozen.
    pub fn is_frozen(&self) -> bool {
        self.shared.lock().frozen
    }

    /// Breaks the pipe for good: every read, write, flush and close on both ends fails with
    /// `ConnectionReset` from now on, and waiting readers and writers are woken to see it.
    #[doc(alias = "break")]
    pub fn break_pipe(&self) {
        let mut state = self.shared.lock();
        state.broken = true;
        state.toward.iter_mut().for_each(Direction::wake_all);
    }

    /// Whether [`break_pipe`](Self::break_pipe) was called.
    pub fn is_broken(&self) -> bool {
        self.shared.lock().broken
    }

    /// Whether both ends were dropped.
    pub fn is_closed(&self) -> bool {
        let state = self.shared.lock();
        state.toward.iter().all(|d| d.read_dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::io::{AsyncReadExt, AsyncWriteExt};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct CountWaker(AtomicUsize);
    impl Wake for CountWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<CountWaker>, Waker) {
        let c = Arc::new(CountWaker(AtomicUsize::new(0)));
        (Arc::clone(&c), Waker::from(c))
    }

    fn addrs() -> (SocketAddr, SocketAddr) {
        (
            SocketAddr::from(([127, 0, 0, 1], 40000)),
            SocketAddr::from(([127, 0, 0, 1], 50051)),
        )
    }

    fn read_now(
        end: &mut MemoryStream,
        cx: &mut Context<'_>,
        len: usize,
    ) -> Poll<io::Result<Vec<u8>>> {
        let mut buf = vec![0; len];
        Pin::new(end)
            .poll_read(cx, &mut buf)
            .map_ok(|n| buf[..n].to_vec())
    }

    #[test]
    fn bytes_flow_both_ways_and_peers_are_named() {
        let (a, b) = addrs();
        let (mut x, mut y, _) = pipe(a, b, 16);
        assert_eq!(x.peer(), "ipv4:127.0.0.1:50051");
        assert_eq!(y.peer(), "ipv4:127.0.0.1:40000");
        futures_executor::block_on(async {
            x.write_all(b"ping").await.unwrap();
            let mut buf = [0; 4];
            y.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            y.write_all(b"pong").await.unwrap();
            x.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"pong");
        });
    }

    #[test]
    fn named_pipes_name_their_peers() {
        let (x, y, _) = named_pipe("unix:", "unix:/run/s.sock", 4);
        assert_eq!(x.peer(), "unix:");
        assert_eq!(y.peer(), "unix:/run/s.sock");
    }

    #[test]
    fn ipv6_peer_is_bracketed() {
        let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 5000));
        let (x, _y, _) = pipe(addrs().0, v6, 4);
        assert_eq!(x.peer(), "ipv6:[::1]:5000");
    }

    #[test]
    fn writes_stop_at_capacity_and_resume_after_a_read() {
        let (a, b) = addrs();
        let (mut x, mut y, _) = pipe(a, b, 8);
        let (wakes, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            Pin::new(&mut x).poll_write(&mut cx, &[1; 5]),
            Poll::Ready(Ok(5))
        ));
        // Only 3 bytes of room left: a partial write, then Pending one byte over capacity.
        assert!(matches!(
            Pin::new(&mut x).poll_write(&mut cx, &[2; 5]),
            Poll::Ready(Ok(3))
        ));
        assert!(Pin::new(&mut x).poll_write(&mut cx, &[3]).is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
        let got = read_now(&mut y, &mut cx, 2);
        assert!(matches!(got, Poll::Ready(Ok(ref v)) if v == &[1, 1]));
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "the blocked writer is woken by the read"
        );
        assert!(matches!(
            Pin::new(&mut x).poll_write(&mut cx, &[3; 9]),
            Poll::Ready(Ok(2))
        ));
    }

    #[test]
    fn close_gives_eof_after_the_queued_bytes() {
        let (a, b) = addrs();
        let (mut x, mut y, _) = pipe(a, b, 64);
        futures_executor::block_on(async {
            x.write_all(b"last words").await.unwrap();
            x.close().await.unwrap();
            let mut all = Vec::new();
            y.read_to_end(&mut all).await.unwrap();
            assert_eq!(all, b"last words");
            // Half-close: the other direction still works.
            y.write_all(b"ok").await.unwrap();
            let mut buf = [0; 2];
            x.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ok");
            assert_eq!(
                x.write(b"x").await.unwrap_err().kind(),
                io::ErrorKind::BrokenPipe
            );
        });
    }

    #[test]
    fn dropping_an_end_gives_eof_to_readers_and_broken_pipe_to_writers() {
        let (a, b) = addrs();
        let (mut x, y, control) = pipe(a, b, 64);
        let (wakes, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        assert!(read_now(&mut x, &mut cx, 4).is_pending());
        drop(y);
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "the waiting reader is woken by the drop"
        );
        assert!(matches!(read_now(&mut x, &mut cx, 4), Poll::Ready(Ok(ref v)) if v.is_empty()));
        let err = Pin::new(&mut x).poll_write(&mut cx, b"hi");
        assert!(matches!(err, Poll::Ready(Err(ref e)) if e.kind() == io::ErrorKind::BrokenPipe));
        assert!(!control.is_closed());
        drop(x);
        assert!(control.is_closed());
    }

    #[test]
    fn frozen_pipes_hold_bytes_until_thawed() {
        let (a, b) = addrs();
        let (mut x, mut y, control) = pipe(a, b, 4);
        let (wakes, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        control.freeze();
        assert!(matches!(
            Pin::new(&mut x).poll_write(&mut cx, b"abcdef"),
            Poll::Ready(Ok(4))
        ));
        assert!(Pin::new(&mut x).poll_write(&mut cx, b"ef").is_pending());
        assert!(read_now(&mut y, &mut cx, 8).is_pending());
        control.unfreeze();
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            2,
            "reader and writer are woken"
        );
        assert!(matches!(read_now(&mut y, &mut cx, 8), Poll::Ready(Ok(ref v)) if v == b"abcd"));
    }

    #[test]
    fn broken_pipes_fail_both_ends() {
        let (a, b) = addrs();
        let (mut x, mut y, _) = pipe(a, b, 64);
        let (wakes, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        assert!(read_now(&mut y, &mut cx, 4).is_pending());
        x.control().break_pipe();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        for end in [&mut x, &mut y] {
            let read = read_now(end, &mut cx, 4);
            assert!(
                matches!(read, Poll::Ready(Err(ref e)) if e.kind() == io::ErrorKind::ConnectionReset)
            );
            let write = Pin::new(&mut *end).poll_write(&mut cx, b"x");
            assert!(
                matches!(write, Poll::Ready(Err(ref e)) if e.kind() == io::ErrorKind::ConnectionReset)
            );
        }
    }
}

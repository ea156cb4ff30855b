//! A connection's transport turn: the task spawned for each connection reads the peer's
//! bytes into the [`Engine`], writes what it has to say, runs its timer and lets the engine
//! apply commands and route events in between, for at most [`ROUNDS_PER_TURN`] rounds per
//! turn. A turn that received new calls ends once their events are routed: the application
//! serves them after it, and the next turn writes the answers (`conn::handler_task`). Written once, for every executor. A caller starting a call may poll the driver
//! itself, on the task's behalf (`conn::cell`).

use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use anygrpc_core::{Connection, Transmit};
use futures_io::{AsyncRead, AsyncWrite};

use crate::conn::cell::{Poller, Turn, TurnCell};
use crate::conn::engine::{Dispatch, Engine};
use crate::conn::handle::ConnHandle;
use crate::read_buffer::ReadBuffer;
use crate::runtime::{BoxFuture, RuntimeRef, Transport};
use crate::stats::{ConnectionEvent, StatsHandlers, StatsSide};

/// Bytes gathered from the connection before they are written.
const WRITE_CHUNK: usize = 64 << 10;
/// Most slices handed to one vectored write (Linux takes up to 1,024): a batch of small
/// messages is two slices each (frame headers, payload).
const MAX_SLICES: usize = 256;
/// Reads per wake-up before other work gets a turn.
const READS_PER_TURN: usize = 16;
/// Rounds of a turn (commands, timers, reads, handlers, writes) before it yields: a
/// connection that always has work (a peer that never stops sending) would otherwise keep its
/// executor thread from every other task. The turn then wakes its task and returns
/// `Pending`, so it goes on once the others had their turn.
pub(crate) const ROUNDS_PER_TURN: usize = 16;

/// The task that runs one connection: its engine and its transport.
pub(crate) struct Driver {
    engine: Engine,
    io: Box<dyn Transport>,
    runtime: RuntimeRef,
    read_buf: ReadBuffer,
    out: Transmit,
    timer: Option<(Instant, BoxFuture<'static, ()>)>,
    read_closed: bool,
    /// Writing to the transport failed: what is still readable is read, then it is over.
    write_failed: bool,
    /// The engine was told what the transport authenticated. A TLS transport knows it once
    /// its handshake is done, which is before the first bytes it yields.
    auth_told: bool,
}

impl Driver {
    /// A driver for a new connection: spawn the task, keep the handle.
    pub(crate) fn start(
        conn: Connection,
        io: Box<dyn Transport>,
        runtime: RuntimeRef,
        dispatch: Option<Arc<dyn Dispatch>>,
        stats: StatsHandlers,
    ) -> (DriverTask, Arc<ConnHandle>) {
        let shared = Arc::new(ConnHandle::new(conn.config().initial_stream_window));
        let peer: Arc<str> = Arc::from(io.peer());
        stats.connection(&ConnectionEvent::Opened {
            side: StatsSide::of(conn.side()),
            peer: &peer,
        });
        let engine = Engine::new(conn, shared.clone(), runtime.clone(), dispatch, peer, stats);
        let driver = Self {
            engine,
            io,
            runtime,
            read_buf: ReadBuffer::default(),
            out: Transmit::new(),
            timer: None,
            read_closed: false,
            write_failed: false,
            auth_told: false,
        };
        let cell = Arc::new(TurnCell::new(driver));
        let weak: Weak<TurnCell<Driver>> = Arc::downgrade(&cell);
        shared.attach(weak);
        (DriverTask(cell), shared)
    }

    /// Writes what the connection has to say; `true` if bytes moved. Sets `io.write_blocked`
    /// when the transport took all it could: the waker is registered, so this poll need not
    /// try again.
    fn poll_write(&mut self, cx: &mut Context<'_>, io: &mut TurnIo) -> bool {
        if io.write_blocked || self.write_failed {
            return false;
        }
        let mut progress = false;
        loop {
            if self.out.len() < WRITE_CHUNK {
                while self
                    .engine
                    .connection()
                    .poll_transmit_chained(&mut self.out)
                    > 0
                {
                    if self.out.len() >= WRITE_CHUNK * 4 {
                        break;
                    }
                }
            }
            if self.out.is_empty() {
                break;
            }
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (slot, chunk) in slices.iter_mut().zip(self.out.chunks()) {
                *slot = IoSlice::new(chunk);
                count += 1;
            }
            match Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]) {
                Poll::Ready(result @ (Ok(0) | Err(_))) => {
                    if let Err(e) = result {
                        self.engine.transport_failed(e.to_string());
                    }
                    // The peer may have written its last frames (a Trailers-Only answer)
                    // before it went: what is readable is still read, then the transport is
                    // over (`poll_read`).
                    self.out = Transmit::new();
                    self.write_failed = true;
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    self.out.advance(n);
                    progress = true;
                }
                Poll::Pending => {
                    io.write_blocked = true;
                    break;
                }
            }
        }
        if progress {
            let _ = Pin::new(&mut self.io).poll_flush(cx);
        }
        progress
    }

    /// Reads what the peer sent; `true` if anything happened. Sets `io.read_blocked` once the
    /// transport has nothing more: its waker is registered, so this poll need not ask again
    /// (on async-io every attempt is a system call).
    fn poll_read(&mut self, cx: &mut Context<'_>, io: &mut TurnIo) -> bool {
        let mut progress = false;
        for _ in 0..READS_PER_TURN {
            // Over its receive budget the connection reads nothing until the application
            // releases messages (their release wakes the driver: `input_paused`).
            if self.read_closed || io.read_blocked {
                break;
            }
            if !self.engine.connection().wants_input() {
                if self.write_failed {
                    // Nothing more will be written and nothing more is read: over now.
                    self.read_closed = true;
                    self.engine
                        .connection()
                        .transport_closed(self.runtime.now());
                    progress = true;
                }
                break;
            }
            match Pin::new(&mut self.io).poll_read(cx, self.read_buf.space()) {
                Poll::Ready(Ok(0)) => {
                    self.read_closed = true;
                    self.engine
                        .connection()
                        .transport_closed(self.runtime.now());
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    self.engine.transport_failed(e.to_string());
                    self.read_closed = true;
                    self.engine
                        .connection()
                        .transport_closed(self.runtime.now());
                    progress = true;
                }
                Poll::Ready(Ok(n)) => {
                    if !self.auth_told {
                        self.auth_told = true;
                        self.engine.authenticated(self.io.auth_context());
                    }
                    let now = self.runtime.now();
                    self.engine.connection().recv(self.read_buf.read(n), now);
                    self.read_buf.adapt(n);
                    progress = true;
                }
                Poll::Pending if self.write_failed => {
                    // Writing failed and nothing more is readable now: the transport is over.
                    self.read_closed = true;
                    self.engine
                        .connection()
                        .transport_closed(self.runtime.now());
                    progress = true;
                }
                Poll::Pending => io.read_blocked = true,
            }
        }
        progress
    }

    /// Runs the connection's timer; `true` if it fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.engine.connection().poll_timeout() else {
            self.timer = None;
            return false;
        };
        if self.timer.as_ref().is_none_or(|(at, _)| *at != deadline) {
            self.timer = Some((deadline, self.runtime.sleep_until(deadline)));
        }
        let Some((_, sleep)) = self.timer.as_mut() else {
            return false;
        };
        // Due by the clock even if the timer has not woken us yet.
        if self.runtime.now() >= deadline || sleep.as_mut().poll(cx).is_ready() {
            self.timer = None;
            self.engine
                .connection()
                .handle_timeout(self.runtime.now().max(deadline));
            return true;
        }
        false
    }
}

/// What one poll of the driver learned about its transport.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TurnIo {
    /// Reading would wait (or is not this poller's job): the task's waker is registered.
    read_blocked: bool,
    /// Writing would wait: the waker is registered for writability.
    write_blocked: bool,
}

impl TurnIo {
    /// A poll by a caller on the task's behalf: it writes and runs timers, but leaves reading
    /// to the task, whose waker the transport already holds (an attempt would be a wasted
    /// system call on a quiet socket).
    pub(crate) fn write_only() -> Self {
        Self {
            read_blocked: true,
            write_blocked: false,
        }
    }
}

impl Driver {
    /// Runs the connection until nothing moves or [`ROUNDS_PER_TURN`] rounds are done, as one
    /// poll with `cx`.
    pub(crate) fn poll_turn(&mut self, cx: &mut Context<'_>, mut io: TurnIo) -> Poll<()> {
        for _ in 0..ROUNDS_PER_TURN {
            let runtime = &self.runtime;
            let mut progress = self.engine.apply_queued(cx.waker(), || runtime.now());
            // Due timers first: what the peer sent after a deadline (its reset of the call)
            // must not decide how the call ended.
            progress |= self.poll_timer(cx);
            progress |= self.poll_read(cx, &mut io);
            progress |= self.engine.route_events();
            if let Some(calls) = self.engine.take_new_calls() {
                // The application serves them once this turn let go of the driver; the turn
                // after that applies and writes their answers, all in one go.
                crate::conn::after_turn::defer(Box::new(move || calls.serve()));
                crate::conn::after_turn::turn_again();
                return Poll::Pending;
            }
            progress |= self.poll_write(cx, &mut io);
            progress |= self.engine.route_events();
            progress |= self.poll_timer(cx);
            if self.engine.connection().is_closed() && (self.out.is_empty() || self.read_closed) {
                self.engine.route_events();
                let _ = Pin::new(&mut self.io).poll_close(cx);
                self.engine.shut();
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
        // Out of budget with work left: yield, and be polled again (an inline turn wakes the
        // task, whose waker it runs with).
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Turn for Driver {
    fn poll_turn(&mut self, cx: &mut Context<'_>, by: Poller) -> Poll<()> {
        let io = match by {
            Poller::Task => TurnIo::default(),
            Poller::Inline => TurnIo::write_only(),
        };
        Driver::poll_turn(self, cx, io)
    }

    fn abandon(&mut self) {
        self.engine.abandon();
    }
}

/// The future to spawn for a connection: polls its driver until the connection is over.
pub(crate) struct DriverTask(Arc<TurnCell<Driver>>);

impl std::fmt::Debug for DriverTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DriverTask")
    }
}

impl Future for DriverTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_task(cx)
    }
}

#[cfg(all(test, feature = "testing"))]
mod inline_turn_tests;

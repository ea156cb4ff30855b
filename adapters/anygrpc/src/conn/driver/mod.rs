//! The connection driver: one task per connection owns the sans-IO `Connection` and its
//! transport, applies the calls' commands, routes events to call slots, batches writes and runs
//! the connection's timers. Written once, for every executor. A caller starting a call may
//! poll the driver itself, on the task's behalf (`conn::cell`).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use anygrpc_core::{
    Connection, ErrorCode, Event, Metadata, Side, Status, StreamId, Transmit, grpc::RequestHead,
};
use bytes::Bytes;
use futures_io::{AsyncRead, AsyncWrite};

use crate::conn::cell::{Poller, Turn, TurnCell};
use crate::conn::handle::{Command, ConnHandle};
use crate::conn::slot::{CallSlot, Outcome};
use crate::read_buffer::ReadBuffer;
use crate::runtime::{BoxFuture, RuntimeRef, Transport};

/// A call a server connection received, handed to the application's dispatcher.
#[derive(Debug)]
pub(crate) struct IncomingCall {
    pub(crate) slot: Arc<CallSlot>,
    pub(crate) conn: Arc<ConnHandle>,
    pub(crate) head: Box<RequestHead>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) peer: Arc<str>,
    /// What the transport authenticated about the peer (TLS).
    pub(crate) auth: Option<Arc<crate::auth::AuthContext>>,
    pub(crate) runtime: RuntimeRef,
}

/// Where a server connection sends the calls it receives.
pub(crate) trait Dispatch: Send + Sync + 'static {
    /// Starts serving `call`: answers it at once (unknown method, interceptor refusal) or
    /// returns the handler's task, which the driver polls once itself (see
    /// [`Driver::run_new_handlers`]) and spawns only if it did not finish.
    fn dispatch(&self, call: IncomingCall) -> Option<BoxFuture<'static, ()>>;
}

/// Output a call queued while its stream's send buffer was full.
#[derive(Debug)]
enum Blocked {
    Message(Bytes, bool),
    HalfClose,
    /// The server's trailers, behind messages still waiting for room.
    Trailers(Status, Metadata),
}

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

/// The task that runs one connection.
pub(crate) struct Driver {
    conn: Connection,
    io: Box<dyn Transport>,
    shared: Arc<ConnHandle>,
    runtime: RuntimeRef,
    slots: HashMap<StreamId, Arc<CallSlot>>,
    /// Messages the connection refused (send buffer full), retried on `Writable`, and a
    /// half-close that must follow them.
    blocked: HashMap<StreamId, VecDeque<Blocked>>,
    dispatch: Option<Arc<dyn Dispatch>>,
    peer: Arc<str>,
    read_buf: ReadBuffer,
    out: Transmit,
    timer: Option<(Instant, BoxFuture<'static, ()>)>,
    commands: Vec<Command>,
    /// Handler tasks of calls dispatched in this turn, to be polled once after the turn's
    /// events (their request messages) reached their slots.
    new_handlers: Vec<BoxFuture<'static, ()>>,
    /// Waiters of the calls that a turn's events or commands reached, woken once all of them
    /// are delivered.
    wakes: Vec<Waker>,
    read_closed: bool,
    /// Writing to the transport failed: what is still readable is read, then it is over.
    write_failed: bool,
    /// Why the transport failed, for the status of the calls it takes down (a TLS alert).
    transport_error: Option<String>,
}

impl Driver {
    /// A driver for a new connection: spawn the task, keep the handle.
    pub(crate) fn start(
        conn: Connection,
        io: Box<dyn Transport>,
        runtime: RuntimeRef,
        dispatch: Option<Arc<dyn Dispatch>>,
    ) -> (DriverTask, Arc<ConnHandle>) {
        let shared = Arc::new(ConnHandle::new(conn.config().initial_stream_window));
        let peer: Arc<str> = Arc::from(io.peer());
        let driver = Self {
            conn,
            io,
            shared: shared.clone(),
            runtime,
            slots: HashMap::new(),
            blocked: HashMap::new(),
            dispatch,
            peer,
            read_buf: ReadBuffer::default(),
            out: Transmit::new(),
            timer: None,
            commands: Vec::new(),
            new_handlers: Vec::new(),
            wakes: Vec::new(),
            read_closed: false,
            write_failed: false,
            transport_error: None,
        };
        let cell = Arc::new(TurnCell::new(driver));
        let weak: Weak<TurnCell<Driver>> = Arc::downgrade(&cell);
        shared.attach(weak);
        (DriverTask(cell), shared)
    }

    /// Carries out one command; `now` is the time of this batch of commands.
    fn apply(&mut self, command: Command, now: Instant) {
        match command {
            Command::Start { slot, request } => match self.conn.start_call(request, now) {
                Ok(id) => {
                    slot.lock().stream = Some(id);
                    self.slots.insert(id, slot);
                    self.shared.call_began();
                }
                Err(error) => {
                    let unprocessed = true;
                    slot.finish(Outcome {
                        status: error.to_status(),
                        trailers: Metadata::new(),
                        unprocessed,
                    });
                }
            },
            Command::Send {
                slot,
                message,
                compressed,
            } => {
                let Some(id) = slot.lock().stream else { return };
                if let Some(queue) = self.blocked.get_mut(&id) {
                    queue.push_back(Blocked::Message(message, compressed));
                    return;
                }
                self.send(id, &slot, message, compressed);
            }
            Command::HalfClose { slot } => {
                let Some(id) = slot.lock().stream else { return };
                if let Some(queue) = self.blocked.get_mut(&id) {
                    queue.push_back(Blocked::HalfClose);
                    return;
                }
                let _ = self.conn.finish_sending(id);
            }
            Command::Headers {
                slot,
                metadata,
                encoding,
            } => {
                let Some(id) = slot.lock().stream else { return };
                let _ = self.conn.send_headers(id, metadata, encoding);
            }
            Command::Trailers {
                slot,
                status,
                metadata,
            } => {
                let Some(id) = slot.lock().stream else { return };
                if let Some(queue) = self.blocked.get_mut(&id) {
                    // Messages sent ahead still wait for room: the trailers go after them.
                    queue.push_back(Blocked::Trailers(status, metadata));
                    return;
                }
                if self.conn.send_trailers(id, status, metadata).is_ok() {
                    self.forget(id);
                }
            }
            Command::Cancel { slot } => {
                let Some(id) = slot.lock().stream else { return };
                self.blocked.remove(&id);
                let _ = self.conn.cancel(id);
                if self.conn.side() == Side::Server {
                    self.forget(id);
                    slot.finish(Outcome {
                        status: Status::cancelled("cancelled"),
                        trailers: Metadata::new(),
                        unprocessed: false,
                    });
                }
            }
            Command::Release { slot, n } => {
                let Some(id) = slot.lock().stream else { return };
                self.conn.release_capacity(id, n);
            }
            Command::Shutdown => {
                self.conn.shutdown(now);
                self.shared.set_draining();
            }
            Command::Close => {
                if self.conn.side() == Side::Client {
                    // The application closed its channel: the calls it still had running were
                    // cancelled by it (CANCELLED, as grpc-go and grpc.aio), not lost.
                    for slot in self.slots.values() {
                        slot.finish(Outcome {
                            status: Status::cancelled("the channel was closed"),
                            trailers: Metadata::new(),
                            unprocessed: false,
                        });
                    }
                }
                self.conn.close(ErrorCode::NO_ERROR, now);
            }
        }
    }

    fn send(&mut self, id: StreamId, slot: &Arc<CallSlot>, message: Bytes, compressed: bool) {
        match self.conn.send_message(id, message.clone(), compressed) {
            Ok(()) => slot.update_later(|s| s.sends_accepted += 1, &mut self.wakes),
            Err(anygrpc_core::CallError::SendBufferFull(_)) => {
                self.blocked
                    .entry(id)
                    .or_default()
                    .push_back(Blocked::Message(message, compressed));
            }
            Err(error @ anygrpc_core::CallError::MessageTooLarge { .. }) => {
                // Dropping it would lose data behind a successful write: the call ends with
                // RESOURCE_EXHAUSTED instead, on both ends.
                let status = error.to_status();
                match self.conn.side() {
                    Side::Client => {
                        let _ = self.conn.cancel(id);
                    }
                    Side::Server => {
                        self.blocked.remove(&id);
                        if self
                            .conn
                            .send_trailers(id, status.clone(), Metadata::new())
                            .is_ok()
                        {
                            self.forget(id);
                        }
                    }
                }
                slot.finish(Outcome {
                    status,
                    trailers: Metadata::new(),
                    unprocessed: false,
                });
            }
            Err(_) => {
                // The call ended: the write fails with the call's status. An ended call's writer
                // sees its outcome; counting the message as accepted would report a success.
                slot.update(|s| {
                    if s.outcome.is_none() {
                        s.sends_accepted += 1;
                    }
                });
            }
        }
    }

    /// Retries output refused earlier, in order, after `Writable`.
    fn unblock(&mut self, id: StreamId) {
        let Some(slot) = self.slots.get(&id).cloned() else {
            self.blocked.remove(&id);
            return;
        };
        while let Some(next) = self.blocked.get_mut(&id).and_then(VecDeque::pop_front) {
            match next {
                Blocked::HalfClose => {
                    let _ = self.conn.finish_sending(id);
                }
                Blocked::Trailers(status, metadata) => {
                    if self.conn.send_trailers(id, status, metadata).is_ok() {
                        self.forget(id);
                    }
                    self.blocked.remove(&id);
                    return;
                }
                Blocked::Message(message, compressed) => {
                    match self.conn.send_message(id, message.clone(), compressed) {
                        Err(anygrpc_core::CallError::SendBufferFull(_)) => {
                            if let Some(queue) = self.blocked.get_mut(&id) {
                                queue.push_front(Blocked::Message(message, compressed));
                            }
                            return;
                        }
                        // Accepted, or the call ended (its status tells the writer).
                        _ => slot.update_later(|s| s.sends_accepted += 1, &mut self.wakes),
                    }
                }
            }
        }
        self.blocked.remove(&id);
    }

    fn forget(&mut self, id: StreamId) {
        if self.slots.remove(&id).is_some() {
            self.shared.call_ended();
        }
        self.blocked.remove(&id);
    }

    /// Hands the connection's events to the calls; `true` if there were any.
    ///
    /// A connection that stopped taking calls is marked draining first: the calls it reports
    /// as never processed (still queued behind the peer's stream limit when the transport
    /// died) are retried on whatever connection the channel picks next, and that must not be
    /// this one. The core reports those calls before `Event::Closed`.
    fn route_events(&mut self) -> bool {
        if !self.conn.accepts_calls() && self.conn.side() == Side::Client {
            self.shared.set_draining();
        }
        let mut progress = false;
        while let Some(event) = self.conn.poll_event() {
            self.on_event(event);
            progress = true;
        }
        self.wake_waiters();
        progress
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::CallStarted {
                stream,
                head,
                deadline,
            } => {
                let slot = CallSlot::new();
                slot.lock().stream = Some(stream);
                slot.lock().conn = Some(self.shared.clone());
                self.slots.insert(stream, slot.clone());
                self.shared.call_began();
                match &self.dispatch {
                    Some(dispatch) => {
                        let handler = dispatch.dispatch(IncomingCall {
                            slot,
                            conn: self.shared.clone(),
                            head,
                            deadline,
                            peer: self.peer.clone(),
                            auth: self.io.auth_context(),
                            runtime: self.runtime.clone(),
                        });
                        self.new_handlers.extend(handler);
                    }
                    None => {
                        let _ = self.conn.send_trailers(
                            stream,
                            Status::unimplemented("no services"),
                            Metadata::new(),
                        );
                        self.forget(stream);
                    }
                }
            }
            Event::Headers { stream, metadata } => {
                if let Some(slot) = self.slots.get(&stream) {
                    slot.update_later(|s| s.headers = Some(metadata), &mut self.wakes);
                }
            }
            Event::Message { stream, message } => match self.slots.get(&stream) {
                Some(slot) => slot.update_later(|s| s.inbox.push_back(message), &mut self.wakes),
                None => self.conn.release_capacity(stream, message.credit()),
            },
            Event::HalfClosed { stream } => {
                if let Some(slot) = self.slots.get(&stream) {
                    slot.update_later(|s| s.recv_closed = true, &mut self.wakes);
                }
            }
            Event::Finished {
                stream,
                status,
                metadata,
                unprocessed,
            } => {
                if let Some(slot) = self.slots.get(&stream).cloned() {
                    self.forget(stream);
                    if !unprocessed {
                        // A retried call has not ended: its head is still to come.
                        slot.update(|s| {
                            if s.headers.is_none() {
                                s.headers = Some(Metadata::new());
                            }
                        });
                    }
                    slot.finish(Outcome {
                        status: self.explain(status),
                        trailers: metadata,
                        unprocessed,
                    });
                }
            }
            Event::Cancelled { stream, status } => {
                if let Some(slot) = self.slots.get(&stream).cloned() {
                    self.forget(stream);
                    slot.finish(Outcome {
                        status,
                        trailers: Metadata::new(),
                        unprocessed: false,
                    });
                }
            }
            Event::Writable { stream } => self.unblock(stream),
            Event::GoAway { .. } => self.shared.set_draining(),
            Event::PingAcknowledged { .. } | Event::Closed { .. } => {}
        }
    }

    /// Wakes the calls whose slots this turn's commands or events changed.
    fn wake_waiters(&mut self) {
        for waker in self.wakes.drain(..) {
            waker.wake();
        }
    }

    /// Ends everything: the connection is over.
    fn shut(&mut self) {
        let (commands, wakers) = self.shared.close();
        let status = match &self.transport_error {
            Some(error) => Status::unavailable(format!("the connection closed: {error}")),
            None => Status::unavailable("the connection closed"),
        };
        for command in commands {
            if let Command::Start { slot, .. } = command {
                slot.finish(Outcome {
                    status: status.clone(),
                    trailers: Metadata::new(),
                    unprocessed: true,
                });
            }
        }
        for (_, slot) in self.slots.drain() {
            slot.finish(Outcome {
                status: status.clone(),
                trailers: Metadata::new(),
                unprocessed: false,
            });
        }
        let mut wakers = wakers;
        wakers.wake_all();
    }

    /// A call taken down by the transport says why it failed (a TLS alert, a reset).
    fn explain(&self, status: Status) -> Status {
        match &self.transport_error {
            Some(error) if status.code() == anygrpc_core::Code::Unavailable => {
                Status::unavailable(format!("{}: {error}", status.message()))
            }
            _ => status,
        }
    }

    /// Polls the handlers dispatched in this turn once, here, now that their requests are in
    /// their slots: a handler that answers without waiting (most unary ones) is done before
    /// the driver writes, with no task spawned and no wake-up between tasks. The others are
    /// spawned, and their task polls them again. `true` if there were any.
    fn run_new_handlers(&mut self) -> bool {
        if self.new_handlers.is_empty() {
            return false;
        }
        // What the handlers queue is applied in the driver's next round anyway: they need not
        // wake it.
        self.shared.forget_waker();
        let mut cx = Context::from_waker(Waker::noop());
        for mut handler in std::mem::take(&mut self.new_handlers) {
            // The task catches a panicking handler itself (see `server::Dispatcher`).
            if handler.as_mut().poll(&mut cx).is_pending() {
                self.runtime
                    .spawn(Box::pin(crate::conn::handler_task::HandlerTask(handler)));
            }
        }
        true
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
                while self.conn.poll_transmit_chained(&mut self.out) > 0 {
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
                        self.transport_error.get_or_insert(e.to_string());
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
            if !self.conn.wants_input() {
                if self.write_failed {
                    // Nothing more will be written and nothing more is read: over now.
                    self.read_closed = true;
                    self.conn.transport_closed(self.runtime.now());
                    progress = true;
                }
                break;
            }
            match Pin::new(&mut self.io).poll_read(cx, self.read_buf.space()) {
                Poll::Ready(Ok(0)) => {
                    self.read_closed = true;
                    self.conn.transport_closed(self.runtime.now());
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    self.transport_error.get_or_insert(e.to_string());
                    self.read_closed = true;
                    self.conn.transport_closed(self.runtime.now());
                    progress = true;
                }
                Poll::Ready(Ok(n)) => {
                    let now = self.runtime.now();
                    self.conn.recv(self.read_buf.read(n), now);
                    self.read_buf.adapt(n);
                    progress = true;
                }
                Poll::Pending if self.write_failed => {
                    // Writing failed and nothing more is readable now: the transport is over.
                    self.read_closed = true;
                    self.conn.transport_closed(self.runtime.now());
                    progress = true;
                }
                Poll::Pending => io.read_blocked = true,
            }
        }
        progress
    }

    /// Runs the connection's timer; `true` if it fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.conn.poll_timeout() else {
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
            self.conn.handle_timeout(self.runtime.now().max(deadline));
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
            let mut progress = false;
            self.shared
                .begin_round(cx.waker(), &mut self.commands, !self.conn.wants_input());
            let mut commands = std::mem::take(&mut self.commands);
            if !commands.is_empty() {
                // One clock read for the batch: a streaming handler queues dozens at a time.
                let now = self.runtime.now();
                for command in commands.drain(..) {
                    self.apply(command, now);
                }
                self.wake_waiters();
                progress = true;
            }
            self.commands = commands;
            // Due timers first: what the peer sent after a deadline (its reset of the call)
            // must not decide how the call ended.
            progress |= self.poll_timer(cx);
            progress |= self.poll_read(cx, &mut io);
            progress |= self.route_events();
            progress |= self.run_new_handlers();
            progress |= self.poll_write(cx, &mut io);
            progress |= self.route_events();
            progress |= self.poll_timer(cx);
            if self.conn.is_closed() && (self.out.is_empty() || self.read_closed) {
                self.route_events();
                let _ = Pin::new(&mut self.io).poll_close(cx);
                self.shut();
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

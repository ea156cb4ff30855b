//! A connection's engine: the core `Connection`, the table of its calls, and the two ways
//! between them. [`Engine::apply_queued`] carries out the commands calls queued on the
//! handle; [`Engine::route_events`] hands the connection's events to the calls' slots and,
//! on a server, gathers the new calls for the application to serve after the turn
//! ([`Engine::take_new_calls`]). No I/O: the transport turn (`conn::io`) moves
//! the connection's bytes, and the tests below wire two engines together in memory, as the
//! core's tests do with two connections.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use anygrpc_core::{
    Connection, ErrorCode, Event, Metadata, Side, Status, StreamId, grpc::RequestHead,
};
use bytes::Bytes;

use crate::conn::after_turn;
use crate::conn::handle::{Command, ConnHandle};
use crate::conn::handler_task::NewCalls;
use crate::conn::slot::{CallSlot, CallState, Outcome};
use crate::runtime::{BoxFuture, RuntimeRef};
use crate::stats::{CallEvent, ConnectionEvent, StatsHandlers, StatsSide};
use crate::trace::{CallSpan, ConnSpan};

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
    /// returns the handler's task, which is polled once where it was dispatched and spawned
    /// only if it did not finish (`conn::handler_task::NewCalls::serve`). Runs the
    /// application's code, never under the driver.
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

/// A connection and its calls, without its transport.
pub(crate) struct Engine {
    conn: Connection,
    shared: Arc<ConnHandle>,
    /// Handed to the calls a server receives; the engine itself only spawns the handlers
    /// that did not finish in their first step.
    runtime: RuntimeRef,
    slots: HashMap<StreamId, Arc<CallSlot>>,
    /// Messages the connection refused (send buffer full), retried on `Writable`, and a
    /// half-close that must follow them.
    blocked: HashMap<StreamId, VecDeque<Blocked>>,
    dispatch: Option<Arc<dyn Dispatch>>,
    peer: Arc<str>,
    /// What the transport authenticated about the peer, for the calls it receives.
    auth: Option<Arc<crate::auth::AuthContext>>,
    /// The handle's commands, taken at the start of each round (the two buffers swap).
    commands: Vec<Command>,
    /// Calls received in this turn, for the application to serve once the turn's events
    /// (their request messages) reached their slots and the turn let go of the driver.
    new_calls: Vec<IncomingCall>,
    /// Waiters of the calls that a turn's events or commands reached, woken once all of them
    /// are delivered.
    wakes: Vec<Waker>,
    /// Why the transport failed, for the status of the calls it takes down (a TLS alert).
    transport_error: Option<String>,
    /// Every call was ended and the handle closed.
    ended: bool,
    /// The connection's span: what happens to the connection is told there.
    span: ConnSpan,
    /// The stats handlers of the channel or server it belongs to.
    stats: StatsHandlers,
    /// Why the core closed the connection, when on an error (for the stats handlers).
    close_error: Option<String>,
    /// The peer's stream limit as last reported to the handle (clients).
    reported_stream_limit: Option<u32>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("side", &self.conn.side())
            .field("calls", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine for `conn`, whose calls reach it through `shared`.
    pub(crate) fn new(
        conn: Connection,
        shared: Arc<ConnHandle>,
        runtime: RuntimeRef,
        dispatch: Option<Arc<dyn Dispatch>>,
        peer: Arc<str>,
        stats: StatsHandlers,
    ) -> Self {
        Self {
            span: ConnSpan::new(conn.side(), &peer),
            stats,
            close_error: None,
            reported_stream_limit: None,
            conn,
            shared,
            runtime,
            slots: HashMap::new(),
            blocked: HashMap::new(),
            dispatch,
            peer,
            auth: None,
            commands: Vec::new(),
            new_calls: Vec::new(),
            wakes: Vec::new(),
            transport_error: None,
            ended: false,
        }
    }

    /// The core connection, for the transport turn to feed and drain.
    pub(crate) fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// What the transport authenticated about the peer (TLS), for the calls it receives from
    /// now on.
    pub(crate) fn authenticated(&mut self, auth: Option<Arc<crate::auth::AuthContext>>) {
        self.auth = auth;
    }

    /// Notes why the transport failed (the first reason wins).
    pub(crate) fn transport_failed(&mut self, error: String) {
        self.transport_error.get_or_insert(error);
    }

    /// Starts a round of a turn polled with `waker`: takes the commands queued on the handle
    /// and carries them out, at one time read from `now` for the batch (a streaming handler
    /// queues dozens at a time). `true` if there were any.
    pub(crate) fn apply_queued(&mut self, waker: &Waker, now: impl FnOnce() -> Instant) -> bool {
        let paused = !self.conn.wants_input();
        self.shared.begin_round(waker, &mut self.commands, paused);
        if self.commands.is_empty() {
            return false;
        }
        let mut commands = std::mem::take(&mut self.commands);
        let now = now();
        for command in commands.drain(..) {
            self.apply(command, now);
        }
        self.commands = commands;
        self.wake_waiters();
        true
    }

    /// Carries out one command; `now` is the time of this batch of commands.
    fn apply(&mut self, command: Command, now: Instant) {
        match command {
            // A start of an earlier attempt of a call now bound elsewhere has nothing to do.
            Command::Start { slot, .. } if !self.is_bound_here(&slot) => {}
            Command::Start { slot, request } => match self.conn.start_call(request, now) {
                Ok(id) => {
                    let claimed = {
                        let mut state = slot.lock();
                        state.stream = Some(id);
                        std::mem::take(&mut state.claimed)
                    };
                    self.slots.insert(id, slot);
                    self.shared.call_began(claimed);
                }
                Err(error) => {
                    if std::mem::take(&mut slot.lock().claimed) {
                        self.shared.release_claim();
                    }
                    let unprocessed = true;
                    slot.finish(Outcome {
                        status: error.to_status(),
                        trailers: Metadata::new(),
                        unprocessed,
                        from_attempt: true,
                    });
                }
            },
            Command::Send {
                slot,
                message,
                compressed,
            } => {
                let Some(id) = self.stream_of(&slot) else {
                    return;
                };
                if let Some(queue) = self.blocked.get_mut(&id) {
                    queue.push_back(Blocked::Message(message, compressed));
                    return;
                }
                self.send(id, &slot, message, compressed);
            }
            Command::HalfClose { slot } => {
                let Some(id) = self.stream_of(&slot) else {
                    return;
                };
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
                let Some(id) = self.stream_of(&slot) else {
                    return;
                };
                let _ = self.conn.send_headers(id, metadata, encoding);
            }
            Command::Trailers {
                slot,
                status,
                metadata,
            } => {
                let Some(id) = self.stream_of(&slot) else {
                    return;
                };
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
                let Some(id) = self.stream_of(&slot) else {
                    return;
                };
                self.blocked.remove(&id);
                let _ = self.conn.cancel(id);
                if self.conn.side() == Side::Server {
                    self.forget(id);
                    slot.finish(Outcome {
                        status: Status::cancelled("cancelled"),
                        trailers: Metadata::new(),
                        unprocessed: false,
                        from_attempt: false,
                    });
                }
            }
            Command::Release { slot, n } => {
                let Some(id) = self.stream_of(&slot) else {
                    return;
                };
                self.conn.release_capacity(id, n);
            }
            Command::HandOver { attempt, call } => {
                let routed = self.stream_of(&attempt).filter(|id| {
                    self.slots
                        .get(id)
                        .is_some_and(|slot| Arc::ptr_eq(slot, &attempt))
                });
                if let Some(id) = routed {
                    self.slots.insert(id, call.clone());
                }
                let route = routed.map(|id| (self.shared.clone(), id));
                let handed = attempt.hand_over(&call, route);
                if let Some(outcome) = handed.outcome {
                    call.finish(outcome);
                }
                for write in handed.writes {
                    self.apply(write, now);
                }
            }
            Command::Shutdown => {
                self.span.shutting_down();
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
                            from_attempt: false,
                        });
                    }
                }
                self.conn.close(ErrorCode::NO_ERROR, now);
            }
        }
    }

    fn send(&mut self, id: StreamId, slot: &Arc<CallSlot>, message: Bytes, compressed: bool) {
        match self.conn.send_message(id, message.clone(), compressed) {
            Ok(()) => slot.update_later(CallState::accept_send, &mut self.wakes),
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
                    from_attempt: false,
                });
            }
            Err(_) => {
                // The call ended: the write fails with the call's status. An ended call's writer
                // sees its outcome; counting the message as accepted would report a success.
                slot.update(|s| {
                    if s.outcome.is_none() {
                        s.accept_send();
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
                        _ => slot.update_later(CallState::accept_send, &mut self.wakes),
                    }
                }
            }
        }
        self.blocked.remove(&id);
    }

    /// The stream of `slot`'s call on this connection; `None` before it started, or when the
    /// call is bound to another connection now (a retry took it there): a command its earlier
    /// attempt left queued here must not act on a stream of this connection that has the
    /// same number.
    fn stream_of(&self, slot: &Arc<CallSlot>) -> Option<StreamId> {
        let state = slot.lock();
        state.stream.filter(|_| self.owns(&state))
    }

    /// `slot`'s call is bound to this connection.
    fn is_bound_here(&self, slot: &Arc<CallSlot>) -> bool {
        self.owns(&slot.lock())
    }

    fn owns(&self, call: &CallState) -> bool {
        call.conn
            .as_ref()
            .is_some_and(|conn| Arc::ptr_eq(conn, &self.shared))
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
    pub(crate) fn route_events(&mut self) -> bool {
        if !self.conn.accepts_calls() && self.conn.side() == Side::Client {
            self.shared.set_draining();
        }
        let mut progress = false;
        while let Some(event) = self.conn.poll_event() {
            self.on_event(event);
            progress = true;
        }
        self.report_stream_limit();
        self.wake_waiters();
        progress
    }

    /// Client: tells the handle when the server's SETTINGS_MAX_CONCURRENT_STREAMS changed
    /// (connection scaling, gRFC A105, opens another connection when it is reached).
    fn report_stream_limit(&mut self) {
        if self.conn.side() != Side::Client || !self.conn.peer_settings_received() {
            return;
        }
        let limit = self.conn.peer_max_concurrent_streams();
        if self.reported_stream_limit != Some(limit) {
            self.reported_stream_limit = Some(limit);
            self.shared.set_stream_limit(limit);
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::CallStarted {
                stream,
                head,
                deadline,
            } => {
                let slot = CallSlot::new();
                {
                    let mut state = slot.lock();
                    state.stream = Some(stream);
                    state.conn = Some(self.shared.clone());
                    state.span = CallSpan::server(&String::from_utf8_lossy(&head.path), &self.peer);
                }
                self.slots.insert(stream, slot.clone());
                self.shared.call_began(false);
                match &self.dispatch {
                    Some(_) => self.new_calls.push(IncomingCall {
                        slot,
                        conn: self.shared.clone(),
                        head,
                        deadline,
                        peer: self.peer.clone(),
                        auth: self.auth.clone(),
                        runtime: self.runtime.clone(),
                    }),
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
                    slot.update_later(
                        |s| {
                            if let Some(stats) = s.stats.clone() {
                                let metadata = metadata.clone();
                                after_turn::defer(Box::new(move || {
                                    stats.record(&CallEvent::HeadersReceived {
                                        metadata: &metadata,
                                    })
                                }));
                            }
                            s.head_received(metadata);
                        },
                        &mut self.wakes,
                    );
                }
            }
            Event::Message { stream, message } => match self.slots.get(&stream) {
                Some(slot) => slot.update_later(
                    |s| {
                        if let Some(stats) = s.stats.clone() {
                            let (wire_size, compressed) =
                                (message.data.len(), message.encoding.is_some());
                            // The handler's code runs after the turn, never under it.
                            after_turn::defer(Box::new(move || {
                                stats.received(wire_size, compressed)
                            }));
                        }
                        s.inbox.push_back(message)
                    },
                    &mut self.wakes,
                ),
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
                    // A Trailers-Only end leaves the head unset: the slot decides on a retry
                    // first (the call is not committed), then sets it.
                    slot.finish(Outcome {
                        status: self.explain(status),
                        trailers: metadata,
                        unprocessed,
                        from_attempt: true,
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
                        from_attempt: true,
                    });
                }
            }
            Event::Writable { stream } => self.unblock(stream),
            Event::GoAway { code, debug, .. } => {
                self.span.goaway_received(code, &debug);
                self.shared.set_draining();
            }
            Event::Closed { error } => {
                self.span
                    .closed(error.as_ref(), self.transport_error.as_deref());
                self.close_error = error.map(|e| e.to_string());
            }
            // PingAcknowledged holds nothing for the calls; events a newer core adds
            // are not this layer's yet.
            _ => {}
        }
    }

    /// Tells the stats handlers the connection closed (once, when it ends), after the turn.
    fn report_closed(&mut self) {
        if self.stats.is_empty() {
            return;
        }
        let error = self
            .close_error
            .take()
            .or_else(|| self.transport_error.clone());
        let (stats, peer) = (self.stats.clone(), self.peer.clone());
        let side = StatsSide::of(self.conn.side());
        after_turn::defer(Box::new(move || {
            stats.connection(&ConnectionEvent::Closed {
                side,
                peer: &peer,
                error: error.as_deref(),
            })
        }));
    }

    /// Wakes the calls whose slots this turn's commands or events changed.
    fn wake_waiters(&mut self) {
        for waker in self.wakes.drain(..) {
            waker.wake();
        }
    }

    /// Ends everything: the connection is over (its transport closed too).
    pub(crate) fn shut(&mut self) {
        let status = match &self.transport_error {
            Some(error) => Status::unavailable(format!("the connection closed: {error}")),
            None => Status::unavailable("the connection closed"),
        };
        self.end(&status);
    }

    /// Ends everything after a turn panicked part-way (a bug of ours: user code under the
    /// turn is guarded, see `crate::user_code`). What the turn left is not trusted: the calls
    /// end INTERNAL, the handle refuses every later command, and nothing is polled again.
    pub(crate) fn abandon(&mut self) {
        if !self.ended {
            self.end(&Status::internal(
                "the connection's driver failed part-way through a turn; the connection is closed",
            ));
        }
    }

    /// Ends every call with `status` (those never sent as unprocessed), closes the handle and
    /// wakes who waits for that.
    fn end(&mut self, status: &Status) {
        self.ended = true;
        self.report_closed();
        let (commands, mut wakers) = self.shared.close();
        for command in commands {
            if let Command::Start { slot, .. } = command {
                slot.finish(Outcome {
                    status: status.clone(),
                    trailers: Metadata::new(),
                    unprocessed: true,
                    from_attempt: true,
                });
            }
        }
        self.blocked.clear();
        for (_, slot) in self.slots.drain() {
            slot.finish(Outcome {
                status: status.clone(),
                trailers: Metadata::new(),
                unprocessed: false,
                from_attempt: true,
            });
        }
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

    /// The calls received since the last look, to be served (their handlers' first steps)
    /// once the turn let go of the driver; `None` if there were none.
    pub(crate) fn take_new_calls(&mut self) -> Option<NewCalls> {
        if self.new_calls.is_empty() {
            return None;
        }
        Some(NewCalls {
            calls: std::mem::take(&mut self.new_calls),
            dispatch: self.dispatch.clone()?,
            runtime: self.runtime.clone(),
            conn: self.shared.clone(),
        })
    }
}

/// An engine dropped before its connection ended (its task was dropped: the executor shut
/// down) ends its calls UNAVAILABLE, as a lost transport does: none waits forever.
impl Drop for Engine {
    fn drop(&mut self) {
        if !self.ended {
            self.end(&Status::unavailable(
                "the connection's task was dropped before the connection ended",
            ));
        }
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests;

//! The small shared state of one call: what the connection driver delivered (messages, head,
//! outcome) and how to reach the driver. Locked for one push or pop, never across an await.

use crate::conn::small_deque::SmallDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use anygrpc_core::{Code, Message, Metadata, Status, StreamId};

use crate::conn::handle::{Command, ConnHandle, Kick};
use crate::conn::policy::Urgency;
use crate::conn::replay::ReplayBuffer;

/// How a call ended.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) status: Status,
    pub(crate) trailers: Metadata,
    /// The server never processed the call: safe to retry transparently.
    pub(crate) unprocessed: bool,
    /// A client attempt ended (the server's status, a reset, the connection lost, or no
    /// connection to pick), rather than the application or the call's own deadline ending
    /// the call: a configured retry may try again.
    pub(crate) from_attempt: bool,
}

/// What the retry hook of a call is told of its attempt's end.
#[derive(Debug)]
pub(crate) struct AttemptEnd<'a> {
    /// How the attempt ended.
    pub(crate) outcome: &'a Outcome,
    /// The response head arrived, or the request outgrew the retry buffer: the call is
    /// committed to this attempt (gRFC A6) and is not sent again.
    pub(crate) committed: bool,
    /// What the application wrote after the call's first commands, kept for a retry (`None`
    /// once committed).
    pub(crate) replay: Option<&'a ReplayBuffer>,
}

/// A client call's retry hook: given an attempt's end, either lets the call end (`None`) or
/// returns what sends it again, which runs once the slot is reset for the next attempt and
/// its lock let go. The hook itself runs under the slot's lock: it decides, and must take no
/// lock of the call's.
pub(crate) type RetryHook = Box<dyn FnMut(AttemptEnd<'_>) -> Option<Resend> + Send>;

/// How a call's next attempt goes out, as its retry hook chose it.
pub(crate) struct Resend {
    /// The messages the next attempt sends again before any new one (what the application
    /// wrote before, accepted already as far as it is concerned).
    pub(crate) replayed: u64,
    /// Sends the attempt (now, or from a task after a backoff).
    pub(crate) send: Box<dyn FnOnce() + Send>,
}

/// The INTERNAL status a single-response client call ends with instead of an OK `status`
/// when its inbox does not hold exactly one message (grpc-go's "cardinality violation"); a
/// non-OK status stands. `None` when the rule holds or does not apply.
fn response_cardinality(state: &CallState, status: &Status) -> Option<Status> {
    if !state.single_response || status.code() != Code::Ok {
        return None;
    }
    match state.inbox.len() {
        1 => None,
        0 => Some(no_response()),
        _ => Some(too_many_responses()),
    }
}

/// The status of a single-response client call that ended OK without a response message.
pub(crate) fn no_response() -> Status {
    Status::internal("the server ended the call OK without a response message")
}

/// The status of a single-response client call that received a second response message.
pub(crate) fn too_many_responses() -> Status {
    Status::internal("the server sent more than one response message to a single-response call")
}

/// What [`CallSlot::hand_over`] did.
#[derive(Default)]
pub(crate) struct HandedOver {
    /// How the attempt ended, if it did: the call ends so.
    pub(crate) outcome: Option<Outcome>,
    /// The call's writes not forwarded to the attempt yet, for its stream (re-routed).
    pub(crate) writes: Vec<Command>,
}

/// A callback run once when the call ends.
pub(crate) type DoneCallback = Box<dyn FnOnce() + Send>;

/// State shared by a call handle and the connection driver.
#[derive(Default)]
pub(crate) struct CallState {
    /// The call's stream, once the driver started it.
    pub(crate) stream: Option<StreamId>,
    /// The connection the call runs on, once bound.
    pub(crate) conn: Option<Arc<ConnHandle>>,
    /// Commands issued before the call was bound to a connection, in order.
    pub(crate) unbound: Vec<Command>,
    /// Received messages not read yet.
    pub(crate) inbox: SmallDeque<Message>,
    /// No more messages will arrive (server: client half-closed; client: call ended).
    pub(crate) recv_closed: bool,
    /// Client: the call takes exactly one response message (unary and client-streaming), so
    /// an OK end with none or several in the inbox ends it INTERNAL instead (see
    /// [`response_cardinality`]).
    pub(crate) single_response: bool,
    /// Client: the response head's metadata, once received (empty for Trailers-Only).
    pub(crate) headers: Option<Metadata>,
    /// Set once, when the call ends.
    pub(crate) outcome: Option<Outcome>,
    /// Messages handed to the driver, and how many of them the connection accepted.
    pub(crate) sends_submitted: u64,
    pub(crate) sends_accepted: u64,
    /// Server: the sizes of the newest messages submitted, at least those not accepted yet
    /// (the handler prunes it), for the bound in bytes on what runs ahead of the driver.
    pub(crate) submitted_sizes: SubmittedSizes,
    wakers: Vec<Waker>,
    done_callbacks: Vec<DoneCallback>,
    /// The outcome is set and the done callbacks are running: who awaits the end waits for
    /// them.
    pub(crate) callbacks_running: bool,
    /// Decides whether an ended attempt is sent again (transparent and configured retries).
    pub(crate) retry: Option<RetryHook>,
    /// Client: what the call wrote, kept for a retry until it commits (`conn::replay`).
    pub(crate) replay: Option<ReplayBuffer>,
    /// Client: sends of a retried attempt that repeat earlier writes: their acceptance does
    /// not count again (see [`CallState::accept_send`]).
    pub(crate) replays_unaccepted: u64,
    /// Client, a hedged call's attempt: it was handed over to its call
    /// ([`CallSlot::hand_over`]); what it receives from now on goes there.
    handed_over: bool,
    /// Client: the call's connection claimed a stream for it (connection scaling), given
    /// back when the call starts there or ends before it does.
    pub(crate) claimed: bool,
    /// Client, a hedged streaming call: until it commits, what the application writes waits
    /// in `unbound` for the call's task, which forwards it to every live attempt; a write
    /// wakes the task.
    pub(crate) fans_out: bool,
    /// The call's span (`crate::trace`), told how it ended.
    pub(crate) span: crate::trace::CallSpan,
    /// Where the call's events go, for what the driver receives (the response head, messages).
    pub(crate) stats: Option<crate::stats::CallRecorder>,
}

impl CallState {
    /// The connection accepted one of the call's messages: a write waiting for it may go on,
    /// unless it repeated an earlier one for a retry.
    pub(crate) fn accept_send(&mut self) {
        if self.replays_unaccepted > 0 {
            self.replays_unaccepted -= 1;
        } else {
            self.sends_accepted += 1;
        }
    }

    /// The waiters of the call, taken to be woken once its lock is let go.
    pub(crate) fn take_wakers(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.wakers)
    }

    /// The response head arrived: the call commits to this attempt, its kept request goes.
    pub(crate) fn head_received(&mut self, metadata: Metadata) {
        self.headers = Some(metadata);
        self.replay = None;
    }
}

impl std::fmt::Debug for CallState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallState")
            .field("stream", &self.stream)
            .field("inbox", &self.inbox.len())
            .field("recv_closed", &self.recv_closed)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// The sizes of the messages a server call submitted, newest last, with their sum kept as
/// they come and go (so the bound on bytes run ahead costs the same at any depth).
#[derive(Debug, Default)]
pub(crate) struct SubmittedSizes {
    sizes: SmallDeque<usize>,
    total: usize,
}

impl SubmittedSizes {
    /// Notes one more submitted message of `len` bytes.
    pub(crate) fn push(&mut self, len: usize) {
        self.sizes.push_back(len);
        self.total += len;
    }

    /// Forgets all but the newest `keep` sizes and returns the sum of those kept.
    pub(crate) fn keep_newest(&mut self, keep: usize) -> usize {
        while self.sizes.len() > keep {
            if let Some(len) = self.sizes.pop_front() {
                self.total -= len;
            }
        }
        self.total
    }

    /// How many sizes are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sizes.len()
    }
}

/// One call's shared slot.
#[derive(Debug, Default)]
pub(crate) struct CallSlot {
    state: Mutex<CallState>,
    /// Client: whether the last response the application read arrived compressed (read
    /// without the lock, by `last_response_compressed`).
    pub(crate) last_compressed: std::sync::atomic::AtomicBool,
}

impl CallSlot {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A client call's slot already bound to `conn`, as `Channel::submit` binds it (tests
    /// that queue commands on a handle themselves).
    #[cfg(all(test, feature = "testing"))]
    pub(crate) fn bound_to(conn: &Arc<ConnHandle>) -> Arc<Self> {
        let slot = Self::new();
        slot.lock().conn = Some(conn.clone());
        slot
    }

    /// Locks the state; a poisoned lock (a panic while held, which our code never does) is
    /// recovered rather than propagated.
    pub(crate) fn lock(&self) -> MutexGuard<'_, CallState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends a command to the call's connection (see `conn::policy`), or keeps it until
    /// the call is bound. A connection that closed meanwhile ends the call with UNAVAILABLE.
    pub(crate) fn submit(self: &Arc<Self>, command: Command) {
        let mut state = self.lock();
        if state.outcome.is_some() {
            return;
        }
        if let Some(replay) = state.replay.as_mut() {
            if !replay.record(&command) {
                // Too much to keep: the call commits to the attempt under way.
                state.replay = None;
            }
        }
        let Some(conn) = state.conn.clone() else {
            state.unbound.push(command);
            if state.fans_out {
                // A hedged call's task forwards what the application writes.
                let wakers = state.take_wakers();
                drop(state);
                wakers.into_iter().for_each(Waker::wake);
            }
            return;
        };
        let sent = conn.enqueue([command], Urgency::Output);
        drop(state);
        match sent {
            Ok(kick) => kick.run(),
            Err(_) => self.finish(Outcome {
                status: Status::unavailable("the connection closed"),
                trailers: Metadata::new(),
                unprocessed: false,
                from_attempt: true,
            }),
        }
    }

    /// Returns credit for `n` bytes of received messages the call consumed (see
    /// [`conn::policy`](crate::conn::policy)); nothing to do once the call ended or before it is bound.
    pub(crate) fn release(self: &Arc<Self>, n: usize) {
        let state = self.lock();
        if state.outcome.is_some() {
            return;
        }
        if let Some(conn) = &state.conn {
            let release = Command::Release {
                slot: self.clone(),
                n,
            };
            let _ = conn.enqueue([release], Urgency::Credit(n)).map(Kick::run);
        }
    }

    /// Ends the call (first outcome wins) and wakes every waiter; an attempt's end goes to
    /// the call's retry hook first, which may send the call again instead (a transparent
    /// retry of a call the server never processed, or a configured one).
    ///
    /// A call with done callbacks (the application's code) that ends under a driver's turn
    /// ends once the turn let go of the driver (`conn::after_turn`): its outcome, its
    /// callbacks and its wake-ups then come together, in that order.
    pub(crate) fn finish(self: &Arc<Self>, outcome: Outcome) {
        let mut state = self.lock();
        if state.outcome.is_some() {
            return;
        }
        if !state.done_callbacks.is_empty() && crate::conn::after_turn::in_turn() {
            drop(state);
            let slot = self.clone();
            crate::conn::after_turn::defer(Box::new(move || slot.finish(outcome)));
            return;
        }
        if outcome.unprocessed || outcome.from_attempt {
            let CallState {
                retry,
                replay,
                headers,
                ..
            } = &mut *state;
            // The hook only decides (it takes no lock): it runs under the slot's lock, so no
            // other end of the call can come between its decision and the reset.
            let resend = retry.as_mut().and_then(|retry| {
                retry(AttemptEnd {
                    outcome: &outcome,
                    committed: headers.is_some() || replay.is_none(),
                    replay: replay.as_ref(),
                })
            });
            if let Some(resend) = resend {
                // The next attempt starts afresh and sends what the application wrote so far
                // (it was kept): those writes count as accepted, their repeats do not; what
                // the application writes from now on waits for the next attempt.
                state.stream = None;
                state.conn = None;
                state.headers = None;
                state.inbox.clear();
                state.recv_closed = false;
                state.unbound.clear();
                state.sends_accepted = state.sends_submitted;
                state.replays_unaccepted = resend.replayed;
                drop(state);
                (resend.send)();
                return;
            }
        }
        // The call ends: nothing more to keep.
        state.replay = None;
        // A client call that ended without a response head had a Trailers-Only response.
        if state.headers.is_none() && !outcome.unprocessed && outcome.from_attempt {
            state.headers = Some(Metadata::new());
        }
        let outcome = match response_cardinality(&state, &outcome.status) {
            Some(status) => Outcome { status, ..outcome },
            None => outcome,
        };
        state.span.ended(&outcome.status);
        state.outcome = Some(outcome);
        state.recv_closed = true;
        let callbacks = std::mem::take(&mut state.done_callbacks);
        if callbacks.is_empty() {
            let wakers = std::mem::take(&mut state.wakers);
            drop(state);
            for waker in wakers {
                waker.wake();
            }
            return;
        }
        // Callbacks first: whoever awaits the end (`callbacks_running` holds it back) then
        // finds them run, on any executor. They see the outcome.
        state.callbacks_running = true;
        drop(state);
        for callback in callbacks {
            crate::user_code::observe(callback);
        }
        let mut state = self.lock();
        state.callbacks_running = false;
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        for waker in wakers {
            waker.wake();
        }
    }

    /// Ends the call with `status` (if it had not ended) and resets its stream (CANCEL) if it
    /// is bound; `false` if it had already ended.
    pub(crate) fn cancel(self: &Arc<Self>, status: Status) -> bool {
        if self.lock().outcome.is_some() {
            return false;
        }
        // Reported before the reset goes to the driver, which reports it too (as CANCELLED):
        // the first outcome wins, and it must be this one.
        self.finish(Outcome {
            status,
            trailers: Metadata::new(),
            unprocessed: false,
            from_attempt: false,
        });
        // The call is bound now or never: `bind` checks the outcome under the same lock.
        let conn = self.lock().conn.clone();
        if let Some(conn) = conn {
            let command = Command::Cancel { slot: self.clone() };
            let _ = conn.enqueue([command], Urgency::Cancel).map(Kick::run);
        }
        true
    }

    /// Hands a hedged call's committed attempt (this slot) over to the `call`: what it
    /// received so far moves there, and with `route` (the connection and stream, when its
    /// driver re-routed the stream to `call`) so does the stream itself. Without `route`, only
    /// an attempt that ended can be handed over (one still running waits for its driver).
    /// Once only; returns how the attempt ended, if it did, for the call to end so.
    pub(crate) fn hand_over(
        &self,
        call: &CallSlot,
        route: Option<(Arc<ConnHandle>, StreamId)>,
    ) -> HandedOver {
        let mut attempt = self.lock();
        if attempt.handed_over || (route.is_none() && attempt.outcome.is_none()) {
            return HandedOver::default();
        }
        attempt.handed_over = true;
        let headers = attempt.headers.take();
        let mut inbox = std::mem::take(&mut attempt.inbox);
        let outcome = attempt.outcome.clone();
        drop(attempt);
        let mut writes = Vec::new();
        call.update(|c| {
            if c.outcome.is_some() {
                return;
            }
            c.headers = headers;
            c.inbox.extend(inbox.drain());
            if let Some((conn, stream)) = route {
                c.conn = Some(conn);
                c.stream = Some(stream);
                // Written since the task last forwarded: they follow on the stream itself.
                writes = std::mem::take(&mut c.unbound);
                c.fans_out = false;
            }
        });
        HandedOver { outcome, writes }
    }

    /// Runs `f` on the state, then wakes every waiter.
    pub(crate) fn update(&self, f: impl FnOnce(&mut CallState)) {
        let mut state = self.lock();
        f(&mut state);
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        for waker in wakers {
            waker.wake();
        }
    }

    /// Runs `f` on the state and adds its waiters to `wakers`, for the caller to wake once it
    /// has delivered everything it has: a waiter on another thread that ran at the first of a
    /// batch of messages would find only that one, and sleep again before the next.
    pub(crate) fn update_later(&self, f: impl FnOnce(&mut CallState), wakers: &mut Vec<Waker>) {
        let mut state = self.lock();
        f(&mut state);
        wakers.append(&mut state.wakers);
    }

    /// Polls until `ready` returns `Some`, registering the task's waker otherwise.
    pub(crate) fn poll_with<T>(
        &self,
        cx: &mut Context<'_>,
        ready: impl FnOnce(&mut CallState) -> Option<T>,
    ) -> Poll<T> {
        let mut state = self.lock();
        if let Some(value) = ready(&mut state) {
            return Poll::Ready(value);
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Runs `callback` when the call ends (at once if it already did).
    /// Records the call's end with `stats` once it ended (a done callback: after the driver's
    /// turn let go, never under it).
    pub(crate) fn record_the_end(self: &Arc<Self>, stats: &crate::stats::CallRecorder) {
        let stats = stats.clone();
        let weak = Arc::downgrade(self);
        self.on_done(Box::new(move || {
            if let Some(outcome) = weak.upgrade().and_then(|slot| slot.lock().outcome.clone()) {
                stats.record(&crate::stats::CallEvent::Ended {
                    status: &outcome.status,
                    trailers: &outcome.trailers,
                });
            }
        }));
    }

    pub(crate) fn on_done(&self, callback: DoneCallback) {
        let mut state = self.lock();
        if state.outcome.is_some() {
            drop(state);
            crate::user_code::observe(callback);
        } else {
            state.done_callbacks.push(callback);
        }
    }
}

//! A connection's handle: the one way commands reach its driver.
//!
//! Everyone who talks to a connection (its calls, its channel or server, their drain) holds
//! an `Arc<ConnHandle>`. [`ConnHandle::enqueue`] queues commands under the handle's lock and
//! says, through [`conn::policy`](crate::conn::policy), how they get applied; the [`Kick`] it
//! returns carries that out once the caller holds no lock of its own. The driver takes the
//! queued commands at the start of each round of its turn.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Waker};

use anygrpc_core::{CallRequest, Metadata, Status, grpc::Encoding};
use bytes::Bytes;

use crate::conn::cell::PollInline;
use crate::conn::policy::{self, Action, Situation, Urgency};
use crate::conn::slot::CallSlot;
use crate::wakers::WakerSet;

/// What a call (or the owner of the connection) asks the driver to do.
pub(crate) enum Command {
    /// Client: start the call.
    Start {
        slot: Arc<CallSlot>,
        request: Arc<CallRequest>,
    },
    /// Send one message (already encoded and, if `compressed`, compressed).
    Send {
        slot: Arc<CallSlot>,
        message: Bytes,
        compressed: bool,
    },
    /// Client: half-close.
    HalfClose { slot: Arc<CallSlot> },
    /// Server: send the response head.
    Headers {
        slot: Arc<CallSlot>,
        metadata: Metadata,
        encoding: Option<Encoding>,
    },
    /// Server: end the call.
    Trailers {
        slot: Arc<CallSlot>,
        status: Status,
        metadata: Metadata,
    },
    /// Cancel the call (RST_STREAM CANCEL).
    Cancel { slot: Arc<CallSlot> },
    /// The call consumed `n` bytes of messages.
    Release { slot: Arc<CallSlot>, n: usize },
    /// Client: a hedged call committed to `attempt`: its stream is routed to `call` from now
    /// on, with what it received so far (`CallSlot::hand_over`).
    HandOver {
        attempt: Arc<CallSlot>,
        call: Arc<CallSlot>,
    },
    /// Graceful shutdown: no new calls, running ones finish.
    Shutdown,
    /// Close now with GOAWAY(NO_ERROR): every call ends.
    Close,
}

impl Command {
    /// A client call's write (a message or the half-close) again, for the call of `slot`
    /// (a hedged call forwards its writes to each attempt); `None` for any other command.
    pub(crate) fn for_slot(&self, slot: &Arc<CallSlot>) -> Option<Command> {
        match self {
            Command::Send {
                message,
                compressed,
                ..
            } => Some(Command::Send {
                slot: slot.clone(),
                message: message.clone(),
                compressed: *compressed,
            }),
            Command::HalfClose { .. } => Some(Command::HalfClose { slot: slot.clone() }),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Start { .. } => "Start",
            Command::Send { .. } => "Send",
            Command::HalfClose { .. } => "HalfClose",
            Command::Headers { .. } => "Headers",
            Command::Trailers { .. } => "Trailers",
            Command::Cancel { .. } => "Cancel",
            Command::Release { .. } => "Release",
            Command::HandOver { .. } => "HandOver",
            Command::Shutdown => "Shutdown",
            Command::Close => "Close",
        })
    }
}

/// State shared between the driver and everyone who sends it commands.
#[derive(Debug, Default)]
struct ConnState {
    commands: Vec<Command>,
    /// The driver task's waker, while it waits for commands.
    waker: Option<Waker>,
    /// The driver has stopped: commands are refused.
    closed: bool,
    /// The connection takes no new calls (GOAWAY either way, shutdown, closed).
    draining: bool,
    /// Calls started and not finished, for balancing and shutdown.
    active: usize,
    /// Calls ever started here, to tell an idle connection from a busy one.
    started: u64,
    /// Client: the server's SETTINGS_MAX_CONCURRENT_STREAMS as the driver last reported it
    /// (`None` until its first SETTINGS arrived).
    stream_limit: Option<u32>,
    /// Streams claimed for calls picked for this connection and not started yet (connection
    /// scaling, gRFC A105, claims one per pick so that two picks cannot take the last one).
    claimed: usize,
    /// Who waits for a call slot under that limit: woken when the limit changes or a call
    /// ends.
    room_waiters: WakerSet,
    /// Queued commands that did not wake the driver (small credit returns), and the bytes of
    /// credit noted since the driver's last turn.
    lazy: usize,
    lazy_credit: usize,
    /// The connection holds its whole receive budget: the driver stopped reading, and only
    /// released credit gets it going again, so no release may wait.
    input_paused: bool,
    close_wakers: WakerSet,
}

/// Carries out what [`ConnHandle::enqueue`] decided: polls the driver here or wakes its task.
#[must_use = "the commands wait until the driver is kicked"]
pub(crate) struct Kick {
    waker: Option<Waker>,
    cell: Option<Weak<dyn PollInline>>,
}

impl Kick {
    /// A kick that does nothing: the driver's next turn, or someone else, takes the commands.
    fn none() -> Self {
        Self {
            waker: None,
            cell: None,
        }
    }

    /// Polls the driver here or wakes it. Call it holding no lock.
    pub(crate) fn run(self) {
        let inline = self
            .cell
            .and_then(|cell| cell.upgrade())
            .is_some_and(|cell| cell.poll_inline());
        if let (false, Some(waker)) = (inline, self.waker) {
            waker.wake();
        }
    }
}

/// The handle through which calls reach a connection's driver.
#[derive(Default)]
pub(crate) struct ConnHandle {
    state: Mutex<ConnState>,
    /// The driver itself, for a caller to poll it inline.
    cell: OnceLock<Weak<dyn PollInline>>,
    /// Credit (bytes of received messages consumed) that may wait for the driver's next turn
    /// instead of waking it: a quarter of the stream window at most. The core announces a
    /// stream's credit once half its window was released (the connection's once half of
    /// what its receive budget allows was freed), so the rest, released at once, always gets
    /// the peer going again. While the connection's input is paused no credit waits.
    lazy_credit_limit: usize,
}

impl std::fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnHandle")
            .field("state", &self.state)
            .field("lazy_credit_limit", &self.lazy_credit_limit)
            .finish_non_exhaustive()
    }
}

/// The most credit left for the driver's next turn, whatever the windows.
pub(crate) const LAZY_CREDIT_MAX: usize = 256 << 10;

impl ConnHandle {
    /// A handle for a connection whose streams' receive window is `stream_window` bytes.
    pub(crate) fn new(stream_window: u32) -> Self {
        Self {
            lazy_credit_limit: LAZY_CREDIT_MAX.min(usize::try_from(stream_window / 4).unwrap_or(0)),
            ..Self::default()
        }
    }

    /// Ties the handle to the cell its driver is polled through (once, at the start).
    pub(crate) fn attach(&self, cell: Weak<dyn PollInline>) {
        let _ = self.cell.set(cell);
    }

    fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `commands`, queued because of `urgency`; `Err` gives them back when the driver
    /// stopped. Nothing runs them until the returned [`Kick`] is given, which the caller does
    /// once it holds no lock of its own: [`policy::decide`] said whether that polls the
    /// driver here, wakes its task, waits for the running handler poll to end, or leaves them
    /// to the driver's next turn.
    pub(crate) fn enqueue(
        self: &Arc<Self>,
        commands: impl IntoIterator<Item = Command>,
        urgency: Urgency,
    ) -> Result<Kick, Vec<Command>> {
        let mut state = self.lock();
        if state.closed {
            return Err(commands.into_iter().collect());
        }
        let situation = Situation {
            active: state.active,
            urgent_waiting: state.commands.len() > state.lazy,
            in_handler_poll: crate::conn::handler_task::polling(),
            input_paused: state.input_paused,
            lazy_credit: state.lazy_credit,
            lazy_credit_limit: self.lazy_credit_limit,
        };
        let before = state.commands.len();
        state.commands.extend(commands);
        Ok(match policy::decide(urgency, &situation) {
            Action::Inline => self.kick(&mut state, true),
            Action::Wake => self.kick(&mut state, false),
            Action::Defer => {
                drop(state);
                crate::conn::handler_task::defer(self);
                Kick::none()
            }
            Action::Wait => {
                state.lazy += state.commands.len() - before;
                if let Urgency::Credit(n) = urgency {
                    state.lazy_credit += n;
                }
                Kick::none()
            }
        })
    }

    /// The kick that applies queued commands: inline when `inline` (and the driver is free
    /// then), else by waking its task.
    fn kick(&self, state: &mut ConnState, inline: bool) -> Kick {
        Kick {
            waker: state.waker.take(),
            cell: inline.then(|| self.cell.get().cloned()).flatten(),
        }
    }

    /// `true` while new calls may be started here.
    pub(crate) fn is_usable(&self) -> bool {
        let state = self.lock();
        !state.closed && !state.draining
    }

    /// `true` once the driver has stopped.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Calls in progress, and calls ever started.
    pub(crate) fn activity(&self) -> (usize, u64) {
        let state = self.lock();
        (state.active, state.started)
    }

    /// Completes when the driver has stopped.
    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if state.closed {
            return Poll::Ready(());
        }
        state.close_wakers.register(cx.waker());
        Poll::Pending
    }
}

/// What the driver does to the handle.
impl ConnHandle {
    /// The start of a round of the driver's turn polled with `waker`: takes the queued
    /// commands into `commands` (empty, and given back with the handle's buffer), and notes
    /// whether the connection's input is paused.
    pub(crate) fn begin_round(&self, waker: &Waker, commands: &mut Vec<Command>, paused: bool) {
        let mut state = self.lock();
        if state.waker.as_ref().is_none_or(|w| !w.will_wake(waker)) {
            state.waker = Some(waker.clone());
        }
        std::mem::swap(&mut state.commands, commands);
        state.lazy = 0;
        state.lazy_credit = 0;
        state.input_paused = paused;
    }

    /// A call began on the connection.
    pub(crate) fn call_began(&self, claimed: bool) {
        let mut state = self.lock();
        state.active += 1;
        state.started += 1;
        if claimed {
            state.claimed = state.claimed.saturating_sub(1);
        }
    }

    /// A call on the connection ended.
    pub(crate) fn call_ended(&self) {
        let mut state = self.lock();
        state.active = state.active.saturating_sub(1);
        if !state.room_waiters.is_empty() {
            let mut waiters = state.room_waiters.take();
            drop(state);
            waiters.wake_all();
        }
    }

    /// Client: the driver saw the server's SETTINGS_MAX_CONCURRENT_STREAMS become `limit`.
    pub(crate) fn set_stream_limit(&self, limit: u32) {
        let mut state = self.lock();
        state.stream_limit = Some(limit);
        let mut waiters = state.room_waiters.take();
        drop(state);
        waiters.wake_all();
    }

    /// Client: claims a stream for a call about to be bound here, if the server's limit
    /// leaves one (counting the calls running and those claimed before; until the server's
    /// SETTINGS arrive, one); otherwise `waker` is woken when that may change (a call ends,
    /// the limit is known or moves). The claim ends when the call starts
    /// (`call_began(true)`) or with [`release_claim`](Self::release_claim).
    pub(crate) fn try_claim_stream(&self, waker: Option<&Waker>) -> bool {
        let mut state = self.lock();
        let limit = usize::try_from(state.stream_limit.unwrap_or(1)).unwrap_or(usize::MAX);
        if state.active + state.claimed < limit {
            state.claimed += 1;
            return true;
        }
        if let Some(waker) = waker {
            state.room_waiters.register(waker);
        }
        false
    }

    /// Client: the server's limit as last reported (100, the core's assumption, before).
    #[cfg(test)]
    pub(crate) fn stream_limit(&self) -> u32 {
        self.lock().stream_limit.unwrap_or(100)
    }

    /// A claimed stream will not be used (the call ended before it started here).
    pub(crate) fn release_claim(&self) {
        let mut state = self.lock();
        state.claimed = state.claimed.saturating_sub(1);
        let mut waiters = state.room_waiters.take();
        drop(state);
        waiters.wake_all();
    }

    /// The connection takes no new calls.
    pub(crate) fn set_draining(&self) {
        self.lock().draining = true;
    }

    /// The driver stopped: refuses every later command, and gives back those still queued
    /// and the waiters for the end, to be woken once the calls were ended.
    pub(crate) fn close(&self) -> (Vec<Command>, WakerSet) {
        let mut state = self.lock();
        state.closed = true;
        state.draining = true;
        state.active = 0;
        (
            std::mem::take(&mut state.commands),
            state.close_wakers.take(),
        )
    }
}

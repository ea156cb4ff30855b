//! Hedged calls (gRFC A6): several attempts of one call live at once, each on its own slot,
//! and one task that sends them on `client::hedging`'s schedule and commits the call to the
//! first that answers.
//!
//! The application holds the call's slot; the attempts never touch it until one commits:
//! - an attempt whose response head arrived commits while it runs: the others are cancelled
//!   (RST_STREAM CANCEL) and its connection's driver routes its stream to the call from then
//!   on, with what arrived so far (`Command::HandOver`), so that credit and cancels reach it
//!   through the call as for any call;
//! - an attempt that ended with OK or a fatal code commits as it ended: the call ends so;
//! - an attempt that ended with a non-fatal code lets the others go on; the call ends with
//!   the last attempt's status once no attempt is left and no more will be sent.
//!
//! The call ending first (cancelled, its deadline) cancels every attempt still live.
//!
//! A call whose request streams (client streaming, bidi) keeps what the application writes
//! in its retry buffer (`conn::replay`); until it commits, each write waits in the call's
//! slot for this task, which forwards it to every live attempt, and a later attempt starts
//! with everything written so far. Outgrowing the buffer commits the call to its oldest live
//! attempt. Once handed over, the call writes to its stream directly.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use anygrpc_core::{Metadata, Status};
use bytes::Bytes;

use super::attempt::Attempt;
use super::channel::Channel;
use super::hedging::{AttemptVerdict, Hedging};
use super::retry::{self, Throttle};
use super::service_config::HedgingPolicy;
use crate::conn::handle::{Command, Kick};
use crate::conn::policy::Urgency;
use crate::conn::slot::{CallSlot, Outcome};
use crate::runtime::BoxFuture;
use crate::stats::{CallEvent, CallRecorder};

/// What [`HedgedCall::forward_writes`] found.
enum Forwarded {
    /// The writes went to the attempts; with what was written so far, when asked for.
    Written(Option<(Vec<(Bytes, bool)>, bool)>),
    /// The call outgrew its retry buffer: it must commit.
    Overflowed,
}

/// One hedged call, as its task keeps it.
struct HedgedCall {
    channel: Channel,
    call: Arc<CallSlot>,
    /// The request every attempt sends.
    attempt: Attempt,
    hedging: Hedging,
    /// The attempts not ended yet.
    live: Vec<(Arc<CallSlot>, u32)>,
    /// The one transparent retry (gRFC A6) of an attempt the server never processed is
    /// still to be used.
    transparent_left: bool,
    /// How the last attempt to end ended (the call's end when none is left).
    last_end: Option<Outcome>,
    /// The attempt the call committed to while it ran, until its driver handed it over.
    committed: Option<Arc<CallSlot>>,
    /// The timer of the next attempt, and when it fires.
    timer: Option<(Instant, BoxFuture<'static, ()>)>,
    /// The request streams: the application's writes are forwarded to the attempts.
    streaming: bool,
    /// The channel's retry throttle, shared with retries.
    throttle: Option<Arc<Throttle>>,
    stats: Option<CallRecorder>,
}

impl Channel {
    /// Sends the first attempt of the hedged call of `call` and spawns the task that sends
    /// the others and commits the call.
    pub(super) fn start_hedged(
        &self,
        call: Arc<CallSlot>,
        attempt: Attempt,
        policy: &HedgingPolicy,
        throttle: Option<Arc<Throttle>>,
        stats: Option<CallRecorder>,
    ) {
        let now = self.inner.runtime.now();
        let call_streams = call.lock().fans_out;
        let mut hedged = HedgedCall {
            channel: self.clone(),
            call,
            attempt,
            hedging: Hedging::new(policy, now),
            live: Vec::new(),
            transparent_left: true,
            last_end: None,
            committed: None,
            timer: None,
            streaming: call_streams,
            throttle,
            stats,
        };
        hedged.send_attempt(0, now, (Vec::new(), false), false);
        self.inner
            .runtime
            .spawn(Box::pin(async move { poll_fn(|cx| hedged.poll(cx)).await }));
    }
}

impl HedgedCall {
    /// Sends attempt number `n` (0 for the first) on a slot of its own, with `written`: what
    /// the application wrote so far, and whether it half-closed; `transparent_retry` for the
    /// transparent retry of one the server never processed.
    fn send_attempt(
        &mut self,
        n: u32,
        now: Instant,
        written: (Vec<(Bytes, bool)>, bool),
        transparent_retry: bool,
    ) {
        let slot = CallSlot::new();
        {
            let call = self.call.lock();
            let mut state = slot.lock();
            state.single_response = call.single_response;
            state.stats = call.stats.clone();
        }
        let mut attempt = self.attempt.clone();
        if self.streaming {
            (attempt.replayed, attempt.half_close) = written;
        }
        if n > 0 {
            // Later attempts carry the count before them, as retries do; a value that does
            // not fit the metadata cannot happen for a small number.
            let _ = Arc::make_mut(&mut attempt.request)
                .metadata
                .insert(retry::PREVIOUS_ATTEMPTS, &n.to_string());
        }
        if let Some(deadline) = attempt.deadline {
            Arc::make_mut(&mut attempt.request).timeout =
                Some(deadline.saturating_duration_since(now));
        }
        if let Some(stats) = &self.stats {
            stats.record(&CallEvent::AttemptStarted { transparent_retry });
        }
        self.live.push((slot.clone(), n));
        self.channel.submit(slot, attempt);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self
                .call
                .poll_with(cx, |s| s.outcome.as_ref().map(|_| ()))
                .is_ready()
            {
                // Cancelled, or past its deadline: no attempt of it goes on, the one it
                // committed to included (its driver may have routed it to the call already:
                // its stream is reset all the same).
                let live = self.live.drain(..).map(|(attempt, _)| attempt);
                for attempt in live.chain(self.committed.take()) {
                    attempt.cancel(Status::cancelled("the hedged call ended"));
                }
                return Poll::Ready(());
            }
            if let Some(attempt) = &self.committed {
                return self.poll_hand_over(cx, attempt.clone());
            }
            let now = self.channel.inner.runtime.now();
            if let Some(done) = self.look_at_attempts(now) {
                return done;
            }
            if self.committed.is_some() {
                continue;
            }
            let throttle = self.throttle.clone();
            let due = self.hedging.due(now, throttle.as_deref());
            match self.forward_writes(due) {
                Forwarded::Overflowed => {
                    if let Some(done) = self.commit_to_oldest() {
                        return done;
                    }
                    continue;
                }
                Forwarded::Written(written) => {
                    if let Some(written) = written {
                        let n = self.hedging.sent();
                        self.hedging.sent_one(now);
                        self.send_attempt(n, now, written, false);
                        continue;
                    }
                }
            }
            if self.live.is_empty() && self.hedging.exhausted(throttle.as_deref()) {
                let outcome = self.last_end.take().unwrap_or_else(|| Outcome {
                    status: Status::unavailable("no hedged attempt could be sent"),
                    trailers: Metadata::new(),
                    unprocessed: false,
                    from_attempt: false,
                });
                self.call.finish(outcome);
                return Poll::Ready(());
            }
            if self.wait(cx, now, self.hedging.exhausted(throttle.as_deref())) {
                return Poll::Pending;
            }
        }
    }

    /// A streaming call: forwards what the application wrote since the last look to every
    /// live attempt (they count as accepted for its writers), and with `snapshot` returns
    /// everything written so far, for a new attempt, taken at the same moment.
    fn forward_writes(&mut self, snapshot: bool) -> Forwarded {
        if !self.streaming {
            return Forwarded::Written(snapshot.then(|| (Vec::new(), false)));
        }
        let mut call = self.call.lock();
        let Some(replay) = call.replay.as_ref() else {
            return Forwarded::Overflowed;
        };
        let written = snapshot.then(|| (replay.messages().to_vec(), replay.half_closed()));
        let writes = std::mem::take(&mut call.unbound);
        let sends = writes
            .iter()
            .filter(|w| matches!(w, Command::Send { .. }))
            .count();
        call.sends_accepted += u64::try_from(sends).unwrap_or(u64::MAX);
        let wakers = if sends > 0 {
            call.take_wakers()
        } else {
            Vec::new()
        };
        drop(call);
        wakers.into_iter().for_each(std::task::Waker::wake);
        for write in writes {
            for (attempt, _) in &self.live {
                if let Some(write) = write.for_slot(attempt) {
                    attempt.submit(write);
                }
            }
        }
        Forwarded::Written(written)
    }

    /// The call outgrew its retry buffer: it commits to its oldest live attempt, as it
    /// stands. `Some` when the task is done (no attempt was live: the call ends).
    fn commit_to_oldest(&mut self) -> Option<Poll<()>> {
        if self.live.is_empty() {
            let outcome = self.last_end.take().unwrap_or_else(|| Outcome {
                status: Status::resource_exhausted(
                    "the hedged call outgrew its retry buffer with no attempt running",
                ),
                trailers: Metadata::new(),
                unprocessed: false,
                from_attempt: false,
            });
            self.call.finish(outcome);
            return Some(Poll::Ready(()));
        }
        let (attempt, _) = self.live.remove(0);
        self.commit(&attempt);
        self.hand_over_running(attempt);
        None
    }

    /// Asks the driver of `attempt` (committed while it runs) to hand it over to the call.
    fn hand_over_running(&mut self, attempt: Arc<CallSlot>) {
        let handed = attempt
            .lock()
            .conn
            .clone()
            .map(|conn| {
                let command = Command::HandOver {
                    attempt: attempt.clone(),
                    call: self.call.clone(),
                };
                conn.enqueue([command], Urgency::Control).map(Kick::run)
            })
            .is_some_and(|queued| queued.is_ok());
        if !handed {
            // Its connection is gone (or it was never bound): the attempt ends, and is handed
            // over as it ended.
            attempt.cancel(Status::unavailable("the connection closed"));
        }
        self.committed = Some(attempt);
    }

    /// Looks at every live attempt: commits the call to one that answered (or ended it), and
    /// forgets those that failed without committing. `Some` when the task is done.
    fn look_at_attempts(&mut self, now: Instant) -> Option<Poll<()>> {
        let throttle = self.throttle.clone();
        let mut i = 0;
        while i < self.live.len() {
            let (answered, ended) = {
                let state = self.live[i].0.lock();
                (state.headers.is_some(), state.outcome.clone())
            };
            match ended {
                None if answered => {
                    let (attempt, _) = self.live.remove(i);
                    self.commit(&attempt);
                    self.hand_over_running(attempt);
                    return None;
                }
                None => i += 1,
                Some(outcome) if outcome.unprocessed && self.transparent_left => {
                    // Refused, or never sent: once, at once, as it was (not an attempt).
                    let (_, n) = self.live.remove(i);
                    self.transparent_left = false;
                    let written = match self.forward_writes(true) {
                        Forwarded::Written(written) => written.unwrap_or_default(),
                        Forwarded::Overflowed => {
                            self.last_end = Some(outcome);
                            continue;
                        }
                    };
                    self.send_attempt(n, now, written, true);
                }
                Some(outcome) => {
                    let (attempt, _) = self.live.remove(i);
                    let verdict = self.hedging.ended(
                        &outcome.status,
                        &outcome.trailers,
                        now,
                        throttle.as_deref(),
                    );
                    if verdict == AttemptVerdict::Commit {
                        self.commit(&attempt);
                        if let Some(outcome) = attempt.hand_over(&self.call, None).outcome {
                            self.call.finish(outcome);
                        }
                        return Some(Poll::Ready(()));
                    }
                    self.last_end = Some(outcome);
                }
            }
        }
        None
    }

    /// The call commits to `attempt`: every other is cancelled.
    fn commit(&mut self, attempt: &Arc<CallSlot>) {
        for (other, _) in self.live.drain(..) {
            if !Arc::ptr_eq(&other, attempt) {
                other.cancel(Status::cancelled("another hedged attempt answered first"));
            }
        }
        self.timer = None;
    }

    /// After a running attempt committed: waits until its driver handed it over, or hands
    /// it over here if it ended first (its driver then does nothing).
    fn poll_hand_over(&mut self, cx: &mut Context<'_>, attempt: Arc<CallSlot>) -> Poll<()> {
        let settled = self.call.poll_with(cx, |s| s.stream.map(|_| ()));
        if settled.is_ready() {
            return Poll::Ready(());
        }
        match attempt.poll_with(cx, |s| s.outcome.as_ref().map(|_| ())) {
            Poll::Ready(()) => {
                if let Some(outcome) = attempt.hand_over(&self.call, None).outcome {
                    self.call.finish(outcome);
                }
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Registers for what can move the call on: an attempt's head or end, the next
    /// attempt's time (unless no more will be sent, or one is due but held back by the
    /// throttle). `false` when something is ready already (look again).
    fn wait(&mut self, cx: &mut Context<'_>, now: Instant, exhausted: bool) -> bool {
        for (attempt, _) in &self.live {
            let moved = attempt.poll_with(cx, |s| {
                (s.headers.is_some() || s.outcome.is_some()).then_some(())
            });
            if moved.is_ready() {
                return false;
            }
        }
        let at = match self.hedging.next_at() {
            Some(at) if !exhausted && at > now => at,
            _ => {
                self.timer = None;
                return true;
            }
        };
        if self.timer.as_ref().is_none_or(|(when, _)| *when != at) {
            self.timer = Some((at, self.channel.inner.runtime.sleep_until(at)));
        }
        let fired = self
            .timer
            .as_mut()
            .is_some_and(|(_, sleep)| sleep.as_mut().poll(cx).is_ready());
        if fired {
            // A finished timer is never polled again.
            self.timer = None;
        }
        !fired
    }
}

//! What the connection holds for its peer, bounded by `Config::recv_budget`.
//!
//! Every stream is charged, at each change, for the memory it holds on the peer's behalf:
//! a fixed cost for its state (when the peer opened it), the decoded size of the head it received, the capacity of the
//! message it is reassembling, and the credit of the messages it delivered that the
//! application has not released (each message's bytes plus a fixed cost for its bookkeeping).
//! The connection keeps the sum, and three rules keep the sum within the budget:
//!
//! 1. **The connection window is what the budget has left.** Connection credit goes back as
//!    charged memory is freed (released messages, discarded bytes, padding, forgotten
//!    streams), never beyond `min(connection_window, recv_budget - held)`. The peer can never
//!    have more DATA on its way than we have room for.
//! 2. **Input pauses when the budget is full.** A few things cost more than the window they
//!    use (an empty message costs 5 bytes of window and a queue entry); when they fill the
//!    budget, [`Connection::wants_input`] turns `false` and the transport stops being read
//!    until the application releases messages.
//! 3. **Messages that cannot complete give way.** When the peer cannot be given a frame's
//!    worth of window and messages still being reassembled hold half the budget, the newest
//!    of them fail with RESOURCE_EXHAUSTED (one reset each, from the reset budget), so the
//!    oldest can complete. This is what ends a peer that opens a thousand streams and never
//!    finishes a message; the reset budget then closes its connection.

use super::Connection;
use super::streams::Stream;
use crate::error::{ErrorCode, StreamId};
use crate::grpc::Status;

/// What one live stream the peer opened costs beyond what it received: its state and its map
/// entry.
pub(crate) const STREAM_COST: usize = core::mem::size_of::<Stream>() + 32;

/// Window the peer must be able to use for the connection to make progress: one frame of the
/// smallest SETTINGS_MAX_FRAME_SIZE.
const MIN_PROGRESS: usize = 16 << 10;

impl Connection {
    /// Bytes of memory held for the peer now, as charged against `Config::recv_budget`.
    pub fn held_for_peer(&self) -> usize {
        self.held
    }

    /// `false` while the connection holds its whole receive budget for the peer: stop reading
    /// the transport until it turns `true` again (the application released messages, or the
    /// connection closed). `recv` still takes what it is given, beyond the budget.
    pub fn wants_input(&self) -> bool {
        self.closed.is_some() || self.held < self.config.recv_budget
    }

    /// The connection's sums equal what its streams are charged (fuzz and test invariant).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn held_is_consistent(&self) -> bool {
        let (total, partial) = self
            .streams
            .values()
            .fold((0, 0), |(t, p), s| (t + s.charged, p + s.charged_partial));
        total == self.held && partial == self.held_partial
    }

    /// Each stream's charge: (id, total, partial, head, unreleased), for fuzz reports.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn held_breakdown(&self) -> Vec<(u32, usize, usize, usize, u64)> {
        let mut v: Vec<_> = self
            .streams
            .iter()
            .map(|(id, s)| {
                (
                    id.0,
                    s.charged,
                    s.charged_partial,
                    s.head_cost,
                    s.unreleased,
                )
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Charges `id` again for what it holds now, keeping the connection's sums.
    pub(super) fn recharge(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let decoder = stream.decoder.held_capacity();
        let partial = stream.decoder.partial_capacity();
        let unreleased = usize::try_from(stream.unreleased).unwrap_or(usize::MAX);
        // A stream the peer opened costs its state too; our own calls are the application's.
        let state = if stream.local { 0 } else { STREAM_COST };
        let total = state
            .saturating_add(stream.head_cost)
            .saturating_add(decoder)
            .saturating_add(unreleased);
        // Saturating: the sums never drift (`held_is_consistent`, checked by the fuzzers), and
        // if they did, no input may make the core panic.
        self.held = self
            .held
            .saturating_sub(stream.charged)
            .saturating_add(total);
        self.held_partial = self
            .held_partial
            .saturating_sub(stream.charged_partial)
            .saturating_add(partial);
        stream.charged = total;
        stream.charged_partial = partial;
    }

    /// A stream is forgotten: what it was charged is free again.
    pub(super) fn uncharge(&mut self, stream: &Stream) {
        self.held = self.held.saturating_sub(stream.charged);
        self.held_partial = self.held_partial.saturating_sub(stream.charged_partial);
    }

    /// The most the peer may have outstanding on the connection window now.
    fn connection_window_limit(&self) -> usize {
        let room = self.config.recv_budget.saturating_sub(self.held);
        room.min(self.config.connection_window as usize)
    }

    /// Returns connection credit up to what the budget has room for (rule 1), batched: once
    /// the peer used half of what it may have.
    pub(super) fn credit_connection(&mut self) {
        let limit = u32::try_from(self.connection_window_limit()).unwrap_or(u32::MAX);
        if let Some(increment) = self.conn_recv.refill(limit) {
            self.control.push_back(super::Control::WindowUpdate {
                stream: StreamId::CONNECTION,
                increment,
            });
        }
    }

    /// The peer can neither send a frame's worth now nor be given the window for one.
    fn starved(&self) -> bool {
        !self.wants_input()
            || (self.conn_recv.remaining() < MIN_PROGRESS
                && self.connection_window_limit() < MIN_PROGRESS)
    }

    /// Rule 3: while starved with half the budget in partial messages, fails the newest of
    /// the streams reassembling one, as long as another remains to complete.
    pub(super) fn relieve_pressure(&mut self) {
        while self.closed.is_none()
            && self.starved()
            && self.held_partial.saturating_mul(2) >= self.config.recv_budget
        {
            let mut partial = self
                .streams
                .iter()
                .filter(|(_, s)| s.charged_partial > 0 && !s.reported())
                .map(|(id, _)| *id);
            let (Some(first), Some(second)) = (partial.next(), partial.next()) else {
                return;
            };
            let newest = partial.fold(first.max(second), StreamId::max);
            if !self.spend_reset() {
                return;
            }
            let status = Status::resource_exhausted(format!(
                "the connection's receive budget ({} bytes) is held by messages still arriving",
                self.config.recv_budget
            ));
            self.fail_call(newest, status, ErrorCode::ENHANCE_YOUR_CALM);
            self.recharge(newest);
        }
    }
}

//! What a client call sent, kept so that a retry (transparent or configured, gRFC A6) can send
//! it again, until the call *commits*: its response head arrived, or keeping more would pass
//! the call's or the channel's buffer limit. A committed call is never retried.
//!
//! The messages are the encoded `Bytes` the connection got, so keeping them costs a reference
//! count each, but it keeps their memory alive: hence the limits, per call and per channel
//! (A6's defaults: 256 KiB and 16 MiB).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use crate::conn::handle::Command;

/// A channel's retry buffer: the bytes its calls keep for retries together, and their limit.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    used: AtomicUsize,
    limit: usize,
}

impl RetryBudget {
    /// A budget of `limit` bytes for a channel's calls together.
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Takes `n` bytes of the budget; `false` (and nothing taken) when they do not fit.
    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    /// Gives back `n` bytes taken before.
    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes kept by the channel's calls now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// One call's kept request: what followed its first attempt's own commands (the request
/// head and the first message stay with the retry hook), and whether it half-closed. Gives
/// its bytes back to the channel when dropped.
#[derive(Debug)]
pub(crate) struct ReplayBuffer {
    /// Messages the application wrote after the call started, encoded, in order.
    messages: Vec<(Bytes, bool)>,
    /// The request ended (the application half-closed).
    half_closed: bool,
    /// The bytes kept, the first message's included; at most `per_call`.
    bytes: usize,
    per_call: usize,
    budget: Arc<RetryBudget>,
}

impl ReplayBuffer {
    /// The buffer of a call whose first attempt carries `first_bytes` of message and, with
    /// `half_closed`, the whole request; `None` when even that does not fit (the call is
    /// committed from the start).
    pub(crate) fn new(
        first_bytes: usize,
        half_closed: bool,
        per_call: usize,
        budget: Arc<RetryBudget>,
    ) -> Option<Self> {
        if first_bytes > per_call || !budget.take(first_bytes) {
            return None;
        }
        Some(Self {
            messages: Vec::new(),
            half_closed,
            bytes: first_bytes,
            per_call,
            budget,
        })
    }

    /// Keeps what `command` sends, if it sends part of the request; `false` when it does not
    /// fit the call's or the channel's limit: the call commits (drop the buffer).
    pub(crate) fn record(&mut self, command: &Command) -> bool {
        match command {
            Command::Send {
                message,
                compressed,
                ..
            } => {
                let len = message.len();
                let fits = self
                    .bytes
                    .checked_add(len)
                    .is_some_and(|total| total <= self.per_call);
                if !fits || !self.budget.take(len) {
                    return false;
                }
                self.bytes += len;
                self.messages.push((message.clone(), *compressed));
                true
            }
            Command::HalfClose { .. } => {
                self.half_closed = true;
                true
            }
            _ => true,
        }
    }

    /// The messages kept, in order.
    pub(crate) fn messages(&self) -> &[(Bytes, bool)] {
        &self.messages
    }

    /// The application ended the request.
    pub(crate) fn half_closed(&self) -> bool {
        self.half_closed
    }
}

impl Drop for ReplayBuffer {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::slot::CallSlot;

    fn send(slot: &Arc<CallSlot>, len: usize) -> Command {
        Command::Send {
            slot: slot.clone(),
            message: Bytes::from(vec![7; len]),
            compressed: false,
        }
    }

    #[test]
    fn a_buffer_keeps_messages_and_the_half_close_in_order() {
        let slot = CallSlot::new();
        let budget = RetryBudget::new(1000);
        let mut buffer = ReplayBuffer::new(10, false, 100, budget.clone()).unwrap();
        assert!(buffer.record(&send(&slot, 20)));
        assert!(buffer.record(&send(&slot, 30)));
        assert!(!buffer.half_closed());
        assert!(buffer.record(&Command::HalfClose { slot }));
        assert!(buffer.half_closed());
        let lens: Vec<usize> = buffer.messages().iter().map(|(m, _)| m.len()).collect();
        assert_eq!(lens, [20, 30]);
        assert_eq!(budget.used(), 60);
        drop(buffer);
        assert_eq!(budget.used(), 0, "a dropped buffer gives its bytes back");
    }

    #[test]
    fn the_per_call_limit_commits_the_call() {
        let slot = CallSlot::new();
        let budget = RetryBudget::new(1000);
        assert!(
            ReplayBuffer::new(101, true, 100, budget.clone()).is_none(),
            "a first message over the limit commits at once"
        );
        let mut buffer = ReplayBuffer::new(60, false, 100, budget.clone()).unwrap();
        assert!(buffer.record(&send(&slot, 40)), "exactly the limit fits");
        assert!(!buffer.record(&send(&slot, 1)));
        assert_eq!(budget.used(), 100, "the refused message took nothing");
    }

    #[test]
    fn the_channel_budget_is_shared_by_its_calls() {
        let slot = CallSlot::new();
        let budget = RetryBudget::new(100);
        let first = ReplayBuffer::new(70, true, 100, budget.clone()).unwrap();
        assert!(
            ReplayBuffer::new(40, true, 100, budget.clone()).is_none(),
            "the channel's limit, not the call's"
        );
        let mut second = ReplayBuffer::new(20, false, 100, budget.clone()).unwrap();
        assert!(!second.record(&send(&slot, 20)));
        drop(first);
        assert!(second.record(&send(&slot, 20)), "room came back");
        assert_eq!(budget.used(), 40);
    }
}

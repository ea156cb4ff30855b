//! A call attempt: what one try of a call sends to one connection. The first try, the
//! transparent retry of a call the server never processed, and (next) configured retries and
//! hedging all go out as an [`Attempt`] through `Channel::submit`.

use std::sync::Arc;
use std::time::Instant;

use anygrpc_core::CallRequest;
use bytes::Bytes;

use crate::conn::handle::Command;
use crate::conn::slot::CallSlot;

/// One try of a call, before it is bound to a connection.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    /// The request head.
    pub(super) request: CallRequest,
    /// The first request message, encoded, and whether it is compressed.
    pub(super) message: Option<(Bytes, bool)>,
    /// The request ends after `message` (unary and server-streaming calls).
    pub(super) half_close: bool,
    /// Wait for a connection rather than fail while the channel is in TRANSIENT_FAILURE.
    pub(super) wait_for_ready: bool,
    /// The call's deadline, which bounds the wait for a connection too.
    pub(super) deadline: Option<Instant>,
}

impl Attempt {
    /// `true` when the attempt carries the whole request, so it can be sent again as it is.
    pub(super) fn is_replayable(&self) -> bool {
        self.message.is_some() && self.half_close
    }

    /// The commands that start the attempt for the call of `slot`, in order.
    pub(super) fn into_commands(self, slot: &Arc<CallSlot>) -> Vec<Command> {
        let mut commands = Vec::with_capacity(3);
        commands.push(Command::Start {
            slot: slot.clone(),
            request: self.request,
        });
        if let Some((message, compressed)) = self.message {
            commands.push(Command::Send {
                slot: slot.clone(),
                message,
                compressed,
            });
        }
        if self.half_close {
            commands.push(Command::HalfClose { slot: slot.clone() });
        }
        commands
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(message: bool, half_close: bool) -> Attempt {
        Attempt {
            request: CallRequest::new("/a.B/C", "x"),
            message: message.then(|| (Bytes::from_static(b"m"), false)),
            half_close,
            wait_for_ready: false,
            deadline: None,
        }
    }

    #[test]
    fn an_attempt_starts_sends_and_half_closes_in_that_order() {
        let slot = CallSlot::new();
        let names: Vec<String> = attempt(true, true)
            .into_commands(&slot)
            .iter()
            .map(|c| format!("{c:?}"))
            .collect();
        assert_eq!(names, ["Start", "Send", "HalfClose"]);
        let names: Vec<String> = attempt(false, false)
            .into_commands(&slot)
            .iter()
            .map(|c| format!("{c:?}"))
            .collect();
        assert_eq!(names, ["Start"]);
    }

    #[test]
    fn only_a_whole_request_can_be_sent_again() {
        assert!(attempt(true, true).is_replayable());
        assert!(
            !attempt(true, false).is_replayable(),
            "more messages may follow"
        );
        assert!(!attempt(false, false).is_replayable());
    }
}

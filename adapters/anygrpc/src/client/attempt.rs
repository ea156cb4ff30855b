//! A call attempt: what one try of a call sends to one connection. The first try, the
//! transparent retry of a call the server never processed, and configured retries (with what
//! the application wrote so far, kept by `conn::replay`) all go out as an [`Attempt`] through
//! `Channel::submit`.

use std::sync::Arc;
use std::time::Instant;

use anygrpc_core::CallRequest;
use bytes::Bytes;

use crate::conn::handle::Command;
use crate::conn::slot::CallSlot;

/// One try of a call, before it is bound to a connection.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    /// The request head, shared with the call's later attempts (copied only by one that
    /// changes it).
    pub(super) request: Arc<CallRequest>,
    /// The first request message, encoded, and whether it is compressed.
    pub(super) message: Option<(Bytes, bool)>,
    /// A retried attempt: the messages the application wrote after the first, sent again.
    pub(super) replayed: Vec<(Bytes, bool)>,
    /// The request ends after these messages (unary and server-streaming calls; a retried
    /// call whose application had half-closed).
    pub(super) half_close: bool,
    /// Wait for a connection rather than fail while the channel is in TRANSIENT_FAILURE.
    pub(super) wait_for_ready: bool,
    /// The call's deadline, which bounds the wait for a connection too.
    pub(super) deadline: Option<Instant>,
}

impl Attempt {
    /// The commands that start the attempt for the call of `slot`, in order (made as they
    /// are handed over: a call bound at once collects them in no list of its own).
    pub(super) fn into_commands(
        self,
        slot: &Arc<CallSlot>,
    ) -> impl Iterator<Item = Command> + use<> {
        let start = Command::Start {
            slot: slot.clone(),
            request: self.request,
        };
        let sends = {
            let slot = slot.clone();
            self.message
                .into_iter()
                .chain(self.replayed)
                .map(move |(message, compressed)| Command::Send {
                    slot: slot.clone(),
                    message,
                    compressed,
                })
        };
        let half_close = self
            .half_close
            .then(|| Command::HalfClose { slot: slot.clone() });
        std::iter::once(start).chain(sends).chain(half_close)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(message: bool, half_close: bool) -> Attempt {
        Attempt {
            request: Arc::new(CallRequest::new("/a.B/C", "x")),
            message: message.then(|| (Bytes::from_static(b"m"), false)),
            replayed: Vec::new(),
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
            .map(|c| format!("{c:?}"))
            .collect();
        assert_eq!(names, ["Start", "Send", "HalfClose"]);
        let names: Vec<String> = attempt(false, false)
            .into_commands(&slot)
            .map(|c| format!("{c:?}"))
            .collect();
        assert_eq!(names, ["Start"]);
    }

    #[test]
    fn a_retried_attempt_sends_the_kept_messages_after_the_first() {
        let slot = CallSlot::new();
        let mut retried = attempt(true, true);
        retried.replayed = vec![
            (Bytes::from_static(b"two"), false),
            (Bytes::from_static(b"three"), true),
        ];
        let sent: Vec<String> = retried
            .into_commands(&slot)
            .map(|c| match c {
                Command::Send { message, .. } => String::from_utf8_lossy(&message).into_owned(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(sent, ["Start", "m", "two", "three", "HalfClose"]);
    }
}

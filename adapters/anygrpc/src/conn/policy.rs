//! When queued commands reach the driver: one pure function of why they were queued and what
//! the connection looks like at that moment.
//!
//! The rules, each of which made a benchmark row faster or kept a case correct:
//!
//! - A call's first commands on a quiet connection are written by the caller itself (an
//!   inline turn): no wake-up and no context switch before the bytes reach the socket. Under
//!   load the driver's task gathers many calls into one write instead.
//! - A running call alone on its connection writes its own output the same way.
//! - While a server handler is polled, its output waits until the poll ends, and goes out
//!   as one batch then (`conn::handler_task`).
//! - Credit for small amounts of consumed messages waits for the driver's next turn: waking
//!   it would cost a turn per message received. Not while the connection's input is paused
//!   over its receive budget: only released credit gets it going again.
//! - A cancel never runs inline: it comes from drops, which happen anywhere, under any lock
//!   of the application's. Nor do the owner's commands (shutdown, close).

/// Why commands are queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Urgency {
    /// A new call's opening commands (its start, first message and half-close).
    Open,
    /// More of a running call's output: a message, its head or end, a half-close.
    Output,
    /// Nothing new: what a server handler queued during its poll, which has just ended.
    AfterHandlerPoll,
    /// A cancel of a call.
    Cancel,
    /// Credit for this many bytes of received messages the call consumed.
    Credit(usize),
    /// The owner's commands (shutdown, close), and answers given from outside a call's task.
    Control,
}

/// The connection as the commands are queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Situation {
    /// Calls in progress on the connection.
    pub(crate) active: usize,
    /// Commands queued earlier still wait for the driver (credit left for its next turn
    /// aside).
    pub(crate) urgent_waiting: bool,
    /// A server handler's poll is running on this thread.
    pub(crate) in_handler_poll: bool,
    /// The connection holds its whole receive budget and reads nothing until credit returns.
    pub(crate) input_paused: bool,
    /// Credit left for the driver's next turn since its last one, in bytes.
    pub(crate) lazy_credit: usize,
    /// The most credit that may wait for the driver's next turn, in bytes.
    pub(crate) lazy_credit_limit: usize,
}

/// What the caller does with the commands it queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Poll the driver here when it is free (an inline turn), else wake its task.
    Inline,
    /// Wake the driver's task.
    Wake,
    /// Kick the connection once the running handler poll ends.
    Defer,
    /// Nothing: the driver's next turn takes them.
    Wait,
}

/// Decides what happens to commands queued for `urgency` on a connection in `situation`.
pub(crate) fn decide(urgency: Urgency, situation: &Situation) -> Action {
    let quiet = !situation.urgent_waiting;
    match urgency {
        Urgency::Open if situation.active == 0 && quiet => Action::Inline,
        Urgency::Output if situation.in_handler_poll => Action::Defer,
        Urgency::Output if situation.active <= 1 && quiet => Action::Inline,
        Urgency::AfterHandlerPoll if situation.active <= 1 => Action::Inline,
        Urgency::Credit(n)
            if !situation.input_paused
                && situation.lazy_credit.saturating_add(n) <= situation.lazy_credit_limit =>
        {
            Action::Wait
        }
        _ => Action::Wake,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The situations the table's rows start from.
    const IDLE: Situation = Situation {
        active: 0,
        urgent_waiting: false,
        in_handler_poll: false,
        input_paused: false,
        lazy_credit: 0,
        lazy_credit_limit: 1000,
    };

    fn with(change: impl FnOnce(&mut Situation)) -> Situation {
        let mut situation = IDLE;
        change(&mut situation);
        situation
    }

    #[test]
    fn every_case_of_the_policy() {
        use Action::*;
        use Urgency::*;
        let table: &[(&str, Urgency, Situation, Action)] = &[
            // A new call.
            ("open on an idle connection", Open, IDLE, Inline),
            ("open beside a call", Open, with(|s| s.active = 1), Wake),
            (
                "open behind queued commands",
                Open,
                with(|s| s.urgent_waiting = true),
                Wake,
            ),
            (
                "open inside a handler poll",
                Open,
                with(|s| s.in_handler_poll = true),
                Inline,
            ),
            // A running call's output.
            (
                "output of the only call",
                Output,
                with(|s| s.active = 1),
                Inline,
            ),
            ("output of a call on an idle table", Output, IDLE, Inline),
            (
                "output beside another call",
                Output,
                with(|s| s.active = 2),
                Wake,
            ),
            (
                "output behind queued commands",
                Output,
                with(|s| {
                    s.active = 1;
                    s.urgent_waiting = true;
                }),
                Wake,
            ),
            (
                "output inside a handler poll",
                Output,
                with(|s| {
                    s.active = 1;
                    s.in_handler_poll = true;
                }),
                Defer,
            ),
            (
                "output inside a handler poll of a busy connection",
                Output,
                with(|s| {
                    s.active = 50;
                    s.urgent_waiting = true;
                    s.in_handler_poll = true;
                }),
                Defer,
            ),
            // The end of a handler's poll.
            (
                "after the poll of the only call",
                AfterHandlerPoll,
                with(|s| {
                    s.active = 1;
                    s.urgent_waiting = true;
                }),
                Inline,
            ),
            (
                "after a poll beside another call",
                AfterHandlerPoll,
                with(|s| s.active = 2),
                Wake,
            ),
            // Cancels never run inline nor wait.
            ("cancel on an idle connection", Cancel, IDLE, Wake),
            (
                "cancel inside a handler poll",
                Cancel,
                with(|s| {
                    s.active = 1;
                    s.in_handler_poll = true;
                }),
                Wake,
            ),
            // Credit.
            ("a little credit", Credit(10), IDLE, Wait),
            ("credit up to the limit", Credit(1000), IDLE, Wait),
            ("credit over the limit", Credit(1001), IDLE, Wake),
            (
                "credit that fills what waits",
                Credit(400),
                with(|s| s.lazy_credit = 600),
                Wait,
            ),
            (
                "credit beyond what may wait",
                Credit(401),
                with(|s| s.lazy_credit = 600),
                Wake,
            ),
            (
                "credit while the input is paused",
                Credit(1),
                with(|s| s.input_paused = true),
                Wake,
            ),
            (
                "credit whose sum overflows",
                Credit(usize::MAX),
                with(|s| s.lazy_credit = 1),
                Wake,
            ),
            (
                "credit inside a handler poll",
                Credit(10),
                with(|s| s.in_handler_poll = true),
                Wait,
            ),
            // The owner.
            ("control on an idle connection", Control, IDLE, Wake),
            (
                "control inside a handler poll",
                Control,
                with(|s| s.in_handler_poll = true),
                Wake,
            ),
        ];
        for (case, urgency, situation, expected) in table {
            assert_eq!(decide(*urgency, situation), *expected, "{case}");
        }
    }

    /// Whatever the connection looks like, a cancel and the owner's commands wake the task.
    #[test]
    fn cancels_and_control_always_wake_the_task() {
        for active in 0..3 {
            for bits in 0..8u8 {
                let situation = with(|s| {
                    s.active = active;
                    s.urgent_waiting = bits & 1 != 0;
                    s.in_handler_poll = bits & 2 != 0;
                    s.input_paused = bits & 4 != 0;
                });
                for urgency in [Urgency::Cancel, Urgency::Control] {
                    assert_eq!(
                        decide(urgency, &situation),
                        Action::Wake,
                        "{urgency:?} in {situation:?}"
                    );
                }
            }
        }
    }
}

//! The call layer's connection machinery, as one written contract. Nothing here imports the
//! client or the server; they import it. Its parts:
//!
//! - [`handle`]: the one way in. Calls and owners queue commands with
//!   `ConnHandle::enqueue(commands, urgency)`.
//! - [`policy`]: one pure function decides what a caller does after queuing (inline turn,
//!   wake, defer, wait).
//! - [`engine`]: the core `Connection`, the call table, applying commands and routing events.
//!   No I/O.
//! - [`io`]: the transport turn (reads, writes, the timer), with a work budget.
//! - [`cell`]: the hand-off of the turn on one atomic word, checked under loom.
//! - [`slot`]: one call's shared state ([`replay`]: what a client call keeps for a retry); [`handler_task`]: serving the calls a server turn
//!   received, and a handler's task; [`after_turn`]: the application's code a turn defers
//!   until it let go of the driver;
//!   [`drain`]: closing connections with a grace period.
//!
//! # Who owns what
//!
//! - A connection's **driver** (`conn::io::Driver`: its [`engine::Engine`] and its transport)
//!   is owned by its [`cell::TurnCell`]. It is polled one *turn* at a time,
//!   by the connection's own task or by a caller on the task's behalf (an inline turn), never
//!   by two at once; who may poll is decided by one atomic word (see [`cell`]).
//! - Calls reach the driver only through the connection's [`handle::ConnHandle`]: one
//!   `enqueue(commands, urgency)` queues them under its lock, and [`policy::decide`], one pure
//!   function of the urgency and the connection's state, says whether the caller then runs an
//!   inline turn, wakes the task, waits for the running handler poll to end, or leaves them to
//!   the driver's next turn.
//!
//! # Lock order
//!
//! The turn bit of the cell, then the driver's mutex (uncontended: only the bit's holder
//! takes it). Apart from those: a call's slot, then the handle's state (`ConnHandle`): a call
//! queues its commands holding its slot, so that a call ending meanwhile cannot be bound; the
//! handle's lock never encloses another lock. Nobody waits for the turn bit: a poller that
//! finds it taken leaves its commands to the holder.
//!
//! # What an inline turn may do
//!
//! Apply commands, write, run due timers. It does not read (the transport holds the task's
//! waker for that), does not run when the caller is itself inside a turn (turns do not
//! nest), and wakes the task when the task was polled meanwhile or the driver finished.
//!
//! # Where user code runs, and what a panic there does
//!
//! Never under a turn. What a turn meets of the application's code it defers
//! ([`after_turn`]) until it has let go of the driver and of the turn bit, and that code then
//! runs on the same thread:
//!
//! - the calls a server turn received ([`handler_task::NewCalls`]): server interceptors, the
//!   handler's factory (`Dispatch`), and each handler's first step, which answers most unary
//!   calls with no task spawned and no hand-off. The turn that received them ends once their
//!   events are routed and asks for another ([`after_turn::turn_again`]), which writes every
//!   answer of the batch in one go: the task runs it in the same poll ([`cell`]), up to a
//!   few turns per poll;
//! - the done callbacks of the calls a turn ended (and the `on_complete` observers of client
//!   interceptors, which are done callbacks); the wake-ups of those calls follow them.
//!
//! Each is run through `crate::user_code`: a panic fails only its call (UNKNOWN on a server)
//! and no lock of ours is held across it; an observer's panic is swallowed.
//!
//! In the caller's task: client interceptors and call credentials (a panic fails the call
//! with INTERNAL), message encoding and decoding, and the handler after its first step (its
//! own task: a panic ends its call with UNKNOWN).
//!
//! # A panic of our own
//!
//! A turn that panics in our code (a bug: user code under it is guarded) poisons the
//! driver's lock. The next poll, or the cell's drop when the executor dropped the task,
//! abandons the driver: every call ends INTERNAL, the handle refuses later commands, and the
//! driver is never polled again; nothing is recovered silently. A driver dropped before its
//! connection ended (its executor shut down) ends its calls UNAVAILABLE, as a lost transport
//! does.

pub(crate) mod after_turn;
pub(crate) mod cell;
pub(crate) mod drain;
pub(crate) mod engine;
pub(crate) mod handle;
pub(crate) mod handler_task;
pub(crate) mod io;
pub(crate) mod policy;
pub(crate) mod replay;
pub(crate) mod slot;
mod small_deque;

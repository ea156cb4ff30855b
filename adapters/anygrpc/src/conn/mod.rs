//! The call layer's connection machinery, as one written contract: the driver, the call slots,
//! the server's handler tasks and the turn hand-off. Nothing here imports the client or the
//! server; they import it.
//!
//! # Who owns what
//!
//! - A connection's **driver** (`crate::conn::driver::Driver`: the core `Connection`, the transport,
//!   the call table) is owned by its [`cell::TurnCell`]. It is polled one *turn* at a time,
//!   by the connection's own task or by a caller on the task's behalf (an inline turn), never
//!   by two at once; who may poll is decided by one atomic word (see [`cell`]).
//! - Calls reach the driver only through the connection's shared handle (`ConnShared`):
//!   commands queued under its lock, then a kick that either runs an inline turn or wakes the
//!   task.
//!
//! # Lock order
//!
//! The turn bit of the cell, then the driver's mutex (uncontended: only the bit's holder
//! takes it), then the shared handle's state, then a call's slot. Nobody waits for the turn
//! bit: a poller that finds it taken leaves its commands to the holder.
//!
//! # What an inline turn may do
//!
//! Apply commands, write, run due timers. It does not read (the transport holds the task's
//! waker for that), does not run when the caller is itself inside a turn (turns do not
//! nest), and wakes the task when the task was polled meanwhile or the driver finished.

pub(crate) mod cell;
pub(crate) mod driver;
pub(crate) mod handler_task;
pub(crate) mod slot;

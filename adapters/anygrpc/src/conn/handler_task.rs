//! The task a server handler runs in once its first step (on the connection's task) did not
//! finish it.
//!
//! A handler that streams responses queues several messages per poll. Kicking the driver per
//! message would write them one system call each; so while a handler task is polled, what it
//! queues only notes its connection, and the connection is kicked once, after the poll: the
//! batch goes out in one write, from this task when the call is alone on its connection (no
//! hand-off), from the driver's task otherwise.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::conn::handle::{ConnHandle, Kick};
use crate::conn::policy::Urgency;
use crate::runtime::BoxFuture;

thread_local! {
    /// Connections given commands during the handler poll running on this thread.
    static DEFERRED: RefCell<Option<Vec<Arc<ConnHandle>>>> = const { RefCell::new(None) };
}

/// `true` while a handler poll runs on this thread: what it queues is kicked after it.
pub(crate) fn polling() -> bool {
    DEFERRED.with_borrow(Option::is_some)
}

/// Notes that `conn` was given a command to kick after the current handler poll; `false` when
/// no handler poll is running on this thread (kick now).
pub(crate) fn defer(conn: &Arc<ConnHandle>) -> bool {
    DEFERRED.with_borrow_mut(|deferred| match deferred {
        Some(list) => {
            if !list.iter().any(|c| Arc::ptr_eq(c, conn)) {
                list.push(conn.clone());
            }
            true
        }
        None => false,
    })
}

/// A handler's future as a task: kicks the connections it gave commands after each poll.
pub(crate) struct HandlerTask(pub(crate) BoxFuture<'static, ()>);

impl Future for HandlerTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let outer = DEFERRED.replace(Some(Vec::new()));
        let polled = self.0.as_mut().poll(cx);
        let deferred = DEFERRED.replace(outer).unwrap_or_default();
        for conn in deferred {
            let _ = conn
                .enqueue(std::iter::empty(), Urgency::AfterHandlerPoll)
                .map(Kick::run);
        }
        polled
    }
}

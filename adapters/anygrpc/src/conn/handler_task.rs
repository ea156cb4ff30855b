//! Server handlers: the first step of the calls a turn received, and the task a handler runs
//! in once that step did not finish it.
//!
//! A turn does not run the application's code: it hands the calls it received to
//! [`NewCalls::serve`], which runs once the turn let go of the driver (`conn::after_turn`),
//! on the same thread. There the server's interceptors and the handler's factory run
//! (`Dispatch`), and each handler is polled once: one that answers without waiting (most
//! unary ones) is done with no task spawned and no hand-off, and the turn that follows
//! writes every answer of the batch in one go. The others are spawned as a [`HandlerTask`].
//!
//! A handler that streams responses queues several messages per poll. Kicking the driver per
//! message would write them one system call each; so while a handler is polled, what it
//! queues only notes its connection, and the connection is kicked once, after the poll: the
//! batch goes out in one write, from this task when the call is alone on its connection (no
//! hand-off), from the driver's task otherwise.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::conn::engine::{Dispatch, IncomingCall};
use crate::conn::handle::{ConnHandle, Kick};
use crate::conn::policy::Urgency;
use crate::runtime::{BoxFuture, RuntimeRef};

thread_local! {
    /// Connections given commands during the handler poll running on this thread.
    static DEFERRED: RefCell<Option<Vec<Arc<ConnHandle>>>> = const { RefCell::new(None) };
    /// The list of the last handler poll, emptied, for the next (no allocation per poll).
    static SPARE: RefCell<Vec<Arc<ConnHandle>>> = const { RefCell::new(Vec::new()) };
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

/// Runs `poll` as a handler poll; gives its result and the connections it gave commands.
fn as_handler_poll<R>(poll: impl FnOnce() -> R) -> (R, Vec<Arc<ConnHandle>>) {
    /// Puts back the outer poll's list, also when `poll` unwinds.
    struct Restore(Option<Option<Vec<Arc<ConnHandle>>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(outer) = self.0.take() {
                DEFERRED.set(outer);
            }
        }
    }
    let mut restore = Restore(Some(DEFERRED.replace(Some(SPARE.take()))));
    let result = poll();
    let outer = restore.0.take().unwrap_or_default();
    let deferred = DEFERRED.replace(outer).unwrap_or_default();
    (result, deferred)
}

/// Kicks the connections a handler poll gave commands, but `skip` (whose next turn follows).
fn kick(mut deferred: Vec<Arc<ConnHandle>>, skip: Option<&Arc<ConnHandle>>) {
    for conn in deferred.drain(..) {
        if skip.is_some_and(|skip| Arc::ptr_eq(skip, &conn)) {
            continue;
        }
        let _ = conn
            .enqueue(std::iter::empty(), Urgency::AfterHandlerPoll)
            .map(Kick::run);
    }
    // Kept for the next poll on this thread (the larger of the two, if a nested poll left one).
    SPARE.with_borrow_mut(|spare| {
        if spare.capacity() < deferred.capacity() {
            *spare = deferred;
        }
    });
}

/// The calls one turn of a server connection received, to be served after it.
pub(crate) struct NewCalls {
    pub(crate) calls: Vec<IncomingCall>,
    pub(crate) dispatch: Arc<dyn Dispatch>,
    pub(crate) runtime: RuntimeRef,
    /// Their connection, whose next turn writes what the first steps answered.
    pub(crate) conn: Arc<ConnHandle>,
}

impl std::fmt::Debug for NewCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCalls")
            .field("calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

impl NewCalls {
    /// Dispatches each call and polls its handler once; spawns the handlers that did not
    /// finish. Runs the application's code: call it holding no lock and no driver. What the
    /// handlers queued on their own connection is left to its next turn (the caller's to
    /// run: the turn that received the calls asked for it, `after_turn::turn_again`).
    pub(crate) fn serve(self) {
        let NewCalls {
            calls,
            dispatch,
            runtime,
            conn,
        } = self;
        let ((), deferred) = as_handler_poll(|| {
            // A handler that waits is polled again by its task at once, with the task's waker.
            let mut cx = Context::from_waker(Waker::noop());
            for call in calls {
                // The dispatcher guards the application's code (`crate::user_code`), and the
                // handler's future catches its own panic (see `server::Dispatcher`).
                let Some(mut handler) = dispatch.dispatch(call) else {
                    continue;
                };
                if handler.as_mut().poll(&mut cx).is_pending() {
                    runtime.spawn(Box::pin(HandlerTask(handler)));
                }
            }
        });
        kick(deferred, Some(&conn));
    }
}

/// A handler's future as a task: kicks the connections it gave commands after each poll.
pub(crate) struct HandlerTask(pub(crate) BoxFuture<'static, ()>);

impl Future for HandlerTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let (polled, deferred) = as_handler_poll(|| self.0.as_mut().poll(cx));
        kick(deferred, None);
        polled
    }
}

//! Work that must not run under the driver: the application's code. A turn defers it here,
//! and it runs on the same thread once the turn let go of the driver (its lock and its turn
//! bit, `conn::cell`): the calls a server received in the turn, served by their handlers
//! (`conn::handler_task::NewCalls`), and the end of a call that has done callbacks (which
//! must run before the call's waiters see the end). A turn that deferred work whose outcome
//! it must write (the handlers' answers) asks for another turn after it ([`turn_again`]).

use std::cell::RefCell;

/// Deferred work.
pub(crate) type Work = Box<dyn FnOnce() + Send>;

/// What a turn running on this thread deferred.
#[derive(Default)]
struct Queue {
    work: Vec<Work>,
    /// The turn ended early for the work: another turn follows it.
    again: bool,
}

#[cfg(not(all(loom, test)))]
thread_local! {
    /// Set while this thread runs a turn: the work queued for after it.
    static QUEUE: RefCell<Option<Queue>> = const { RefCell::new(None) };
    /// The list of the last turn, emptied, for the next (no allocation per turn).
    static SPARE: RefCell<Vec<Work>> = const { RefCell::new(Vec::new()) };
}
// Under loom the model's threads may share an OS thread: each needs its own queue.
#[cfg(all(loom, test))]
loom::thread_local! {
    static QUEUE: RefCell<Option<Queue>> = RefCell::new(None);
    static SPARE: RefCell<Vec<Work>> = RefCell::new(Vec::new());
}

/// Replaces this thread's queue with `queue`, giving back the one before.
fn replace(queue: Option<Queue>) -> Option<Queue> {
    QUEUE.with(|q| q.replace(queue))
}

/// `true` while a turn runs on this thread.
pub(crate) fn in_turn() -> bool {
    QUEUE.with(|q| q.borrow().is_some())
}

/// Asks, from inside a turn, for another turn once the deferred work ran (see
/// [`Turn::finish`]). Outside a turn it does nothing.
pub(crate) fn turn_again() {
    QUEUE.with(|queue| {
        if let Some(queue) = queue.borrow_mut().as_mut() {
            queue.again = true;
        }
    });
}

/// Runs `work` once the turn running on this thread let go of the driver, or now when no
/// turn runs here.
pub(crate) fn defer(work: Work) {
    let work = QUEUE.with(|queue| match queue.borrow_mut().as_mut() {
        Some(queue) => {
            queue.work.push(work);
            None
        }
        None => Some(work),
    });
    if let Some(work) = work {
        work();
    }
}

/// Marks a turn on this thread; when it is dropped, the work deferred meanwhile runs.
pub(crate) struct Turn {
    /// What the thread queued before (a caller's inline turn may run inside work deferred
    /// by another turn; a guard never loses work).
    outer: Option<Queue>,
    /// The deferred work ran: nothing is left for the drop.
    done: bool,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("after_turn::Turn")
    }
}

impl Turn {
    /// A turn starts on this thread.
    pub(crate) fn start() -> Self {
        let queue = Queue {
            work: SPARE.with(RefCell::take),
            again: false,
        };
        Self {
            outer: replace(Some(queue)),
            done: false,
        }
    }

    /// The turn let go of the driver: runs what it deferred, in order. `true` if the turn
    /// asked for another after it ([`turn_again`]).
    pub(crate) fn finish(mut self) -> bool {
        self.run()
    }

    fn run(&mut self) -> bool {
        self.done = true;
        let mut queued = replace(self.outer.take()).unwrap_or_default();
        for work in queued.work.drain(..) {
            defer(work);
        }
        // Kept for the next turn on this thread (the larger, if an inner turn left one).
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.capacity() < queued.work.capacity() {
                *spare = std::mem::take(&mut queued.work);
            }
        });
        queued.again
    }
}

impl Drop for Turn {
    /// Also when the turn unwound: the calls it ended still run their callbacks and wake
    /// their waiters (each callback is guarded, see `crate::user_code`).
    fn drop(&mut self) {
        if !self.done {
            self.run();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::{Turn, defer, turn_again};

    fn log() -> (
        Arc<Mutex<Vec<&'static str>>>,
        impl Fn(&'static str) -> super::Work,
    ) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = log.clone();
        let entry = move |what: &'static str| -> super::Work {
            let writer = writer.clone();
            Box::new(move || writer.lock().expect("not poisoned").push(what))
        };
        (log, entry)
    }

    #[test]
    fn work_runs_at_once_outside_a_turn_and_after_it_inside_one() {
        let (log, entry) = log();
        defer(entry("outside"));
        let turn = Turn::start();
        defer(entry("first"));
        defer(entry("second"));
        log.lock().expect("not poisoned").push("turn ends");
        assert!(!turn.finish(), "nobody asked for another turn");
        defer(entry("after"));
        assert_eq!(
            *log.lock().expect("not poisoned"),
            ["outside", "turn ends", "first", "second", "after"]
        );
    }

    #[test]
    fn a_turn_asks_for_another_and_only_its_own_finish_says_so() {
        turn_again();
        let turn = Turn::start();
        turn_again();
        let inner = Turn::start();
        assert!(!inner.finish(), "the inner turn asked for nothing");
        assert!(turn.finish(), "the outer turn asked");
        assert!(
            !Turn::start().finish(),
            "asked outside a turn: nothing carried over"
        );
    }

    #[test]
    fn a_turn_that_unwinds_still_runs_its_work_and_leaves_the_thread_as_it_found_it() {
        let (log, entry) = log();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _turn = Turn::start();
            defer(entry("deferred"));
            panic!("a bug in the turn");
        }));
        assert!(unwound.is_err());
        assert_eq!(*log.lock().expect("not poisoned"), ["deferred"]);
        defer(entry("at once"));
        assert_eq!(*log.lock().expect("not poisoned"), ["deferred", "at once"]);
    }
}

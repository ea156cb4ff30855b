//! Work that must not run under the driver: the end of a call that has done callbacks (the
//! application's code, which must run before the call's waiters see the end) waits until
//! the turn has let go of the driver, then runs on the same thread.

use std::cell::RefCell;

/// Deferred work.
pub(crate) type Work = Box<dyn FnOnce() + Send>;

thread_local! {
    /// Set while this thread runs a turn: the work queued for after it.
    static QUEUE: RefCell<Option<Vec<Work>>> = const { RefCell::new(None) };
}

/// `true` while a turn runs on this thread.
pub(crate) fn in_turn() -> bool {
    QUEUE.with_borrow(Option::is_some)
}

/// Runs `work` once the turn running on this thread let go of the driver, or now when no
/// turn runs here.
pub(crate) fn defer(work: Work) {
    let work = QUEUE.with_borrow_mut(|queue| match queue {
        Some(queue) => {
            queue.push(work);
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
    /// What the thread queued before (turns do not nest, but a guard never loses work).
    outer: Option<Vec<Work>>,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("after_turn::Turn")
    }
}

impl Turn {
    /// A turn starts on this thread.
    pub(crate) fn start() -> Self {
        Self {
            outer: QUEUE.replace(Some(Vec::new())),
        }
    }

    /// The turn let go of the driver: runs what it deferred, in order.
    pub(crate) fn finish(self) {
        drop(self);
    }
}

impl Drop for Turn {
    /// Also when the turn unwound: the calls it ended still run their callbacks and wake
    /// their waiters (each callback is guarded, see `crate::user_code`).
    fn drop(&mut self) {
        let queued = QUEUE.replace(self.outer.take()).unwrap_or_default();
        for work in queued {
            defer(work);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::{Turn, defer};

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
        turn.finish();
        defer(entry("after"));
        assert_eq!(
            *log.lock().expect("not poisoned"),
            ["outside", "turn ends", "first", "second", "after"]
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

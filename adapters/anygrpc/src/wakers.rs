//! Wakers to wake together (a state change, a close, a stop), each task's at most once.

use std::task::Waker;

/// The tasks waiting for one event. A task that polls again while waiting is registered once,
/// however often it polls: an accept loop, polled for every connection it accepts, holds one
/// entry, not one per connection.
#[derive(Debug, Default)]
pub(crate) struct WakerSet(Vec<Waker>);

impl WakerSet {
    /// Notes `waker`, unless one that wakes the same task is noted already.
    pub(crate) fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }

    /// Wakes every task noted, and forgets them.
    pub(crate) fn wake_all(&mut self) {
        for waker in self.0.drain(..) {
            waker.wake();
        }
    }

    /// The wakers noted, taken out to be woken after a lock is let go.
    pub(crate) fn take(&mut self) -> Self {
        std::mem::take(self)
    }

    /// No task is noted.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many tasks are noted.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_task_polled_many_times_is_noted_once_and_woken_once() {
        let (a, b) = (
            Arc::new(Count(AtomicUsize::new(0))),
            Arc::new(Count(AtomicUsize::new(0))),
        );
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        let mut set = WakerSet::default();
        for _ in 0..10_000 {
            set.register(&wa);
        }
        set.register(&wb);
        assert_eq!(set.len(), 2);
        set.wake_all();
        assert_eq!(set.len(), 0);
        assert_eq!(a.0.load(Ordering::Relaxed), 1);
        assert_eq!(b.0.load(Ordering::Relaxed), 1);
    }
}

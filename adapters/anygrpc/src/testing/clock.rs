//! The manual clock of [`MemoryRuntime`](super::MemoryRuntime): virtual time and its timers.
//!
//! Time stands still until the test moves it. Moving it wakes the timers it passes, earliest
//! deadline first (ties in the order the timers were first polled), and leaves `now` at the
//! target; the woken tasks run when the executor next runs.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

#[derive(Debug)]
struct ClockState {
    now: Instant,
    /// Pending timers by (deadline, registration number): iteration is firing order.
    timers: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
}

/// A shared manual clock.
#[derive(Clone)]
pub(crate) struct Clock {
    state: Arc<Mutex<ClockState>>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Clock")
            .field("now", &state.now)
            .field("timers", &state.timers.len())
            .finish()
    }
}

impl Clock {
    pub(crate) fn new(start: Instant) -> Self {
        Self {
            state: Arc::new(Mutex::new(ClockState {
                now: start,
                timers: BTreeMap::new(),
                next_id: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ClockState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn now(&self) -> Instant {
        self.lock().now
    }

    /// The earliest deadline of a pending (polled, not yet fired) timer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.lock()
            .timers
            .keys()
            .next()
            .map(|&(deadline, _)| deadline)
    }

    pub(crate) fn pending_timers(&self) -> usize {
        self.lock().timers.len()
    }

    /// Moves the clock to `target` (never backwards), waking every timer due by then in
    /// deadline order. Returns how many timers fired.
    pub(crate) fn advance_to(&self, target: Instant) -> usize {
        let mut fired = 0;
        loop {
            // Wake one deadline's timers at a time, outside the lock, with `now` at that deadline.
            let due = {
                let mut state = self.lock();
                let Some(&(deadline, _)) = state.timers.keys().next() else {
                    break;
                };
                if deadline > target {
                    break;
                }
                if deadline > state.now {
                    state.now = deadline;
                }
                let later = state.timers.split_off(&(deadline, u64::MAX));
                std::mem::replace(&mut state.timers, later)
            };
            fired += due.len();
            due.into_values().for_each(Waker::wake);
        }
        let mut state = self.lock();
        if target > state.now {
            state.now = target;
        }
        fired
    }

    pub(crate) fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep {
            clock: self.clone(),
            deadline,
            key: None,
        }
    }
}

/// A future that completes once the manual clock reaches `deadline`.
pub(crate) struct Sleep {
    clock: Clock,
    deadline: Instant,
    /// The timer's key while registered.
    key: Option<(Instant, u64)>,
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let clock = self.clock.clone();
        let mut state = clock.lock();
        if state.now >= deadline {
            if let Some(key) = self.key.take() {
                state.timers.remove(&key);
            }
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(key) => key,
            None => {
                let key = (deadline, state.next_id);
                state.next_id += 1;
                self.key = Some(key);
                key
            }
        };
        // Re-inserted after a spurious wake-up too, under the same key: firing order is kept.
        state.timers.insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.clock.lock().timers.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    /// Records the order in which its instances are woken.
    struct Tag(usize, Arc<Mutex<Vec<usize>>>);
    impl Wake for Tag {
        fn wake(self: Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    #[test]
    fn timers_fire_in_deadline_order_and_time_stops_at_the_target() {
        let start = Instant::now();
        let clock = Clock::new(start);
        let order = Arc::new(Mutex::new(Vec::new()));
        let ms = Duration::from_millis;
        let mut sleeps: Vec<Sleep> = [30, 10, 20, 10]
            .iter()
            .map(|&d| clock.sleep_until(start + ms(d)))
            .collect();
        for (i, s) in sleeps.iter_mut().enumerate() {
            let waker = Waker::from(Arc::new(Tag(i, Arc::clone(&order))));
            assert!(
                Pin::new(s)
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
        }
        assert_eq!(clock.next_deadline(), Some(start + ms(10)));
        assert_eq!(clock.advance_to(start + ms(25)), 3);
        assert_eq!(
            *order.lock().unwrap(),
            vec![1, 3, 2],
            "deadline order, ties by registration"
        );
        assert_eq!(clock.now(), start + ms(25));
        assert_eq!(clock.pending_timers(), 1);
        let noop = Waker::noop();
        let mut cx = Context::from_waker(noop);
        assert!(Pin::new(&mut sleeps[2]).poll(&mut cx).is_ready());
        assert!(Pin::new(&mut sleeps[0]).poll(&mut cx).is_pending());
    }

    #[test]
    fn the_clock_never_goes_back_and_dropped_timers_unregister() {
        let start = Instant::now();
        let clock = Clock::new(start);
        clock.advance_to(start + Duration::from_secs(5));
        clock.advance_to(start);
        assert_eq!(clock.now(), start + Duration::from_secs(5));
        let mut past = clock.sleep_until(start);
        assert!(
            Pin::new(&mut past)
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_ready()
        );
        let mut later = clock.sleep_until(start + Duration::from_secs(6));
        let wakes = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let waker = Waker::from(Arc::new(Count(Arc::clone(&wakes))));
        assert!(
            Pin::new(&mut later)
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        assert_eq!(clock.pending_timers(), 1);
        drop(later);
        assert_eq!(clock.pending_timers(), 0);
        assert_eq!(clock.advance_to(start + Duration::from_secs(60)), 0);
        assert_eq!(wakes.load(Ordering::SeqCst), 0);
    }
}

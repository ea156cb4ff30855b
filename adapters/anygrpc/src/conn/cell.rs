//! Who polls a connection's driver: the task spawned for it, and, when a call is queued on a
//! quiet connection, the caller itself (an *inline turn*).
//!
//! A call's first bytes go out fastest when the caller writes them: queuing a command and
//! waking the driver's task costs a wake-up and a context switch before anything reaches the
//! socket. So the driver sits in a [`TurnCell`]; the caller polls it once on the task's behalf
//! ([`TurnCell::poll_inline`], with the task's waker, so everything it registers still wakes the
//! task) if no one else is polling it at that moment. Nobody ever waits for the driver.
//!
//! # The hand-off
//!
//! One atomic word says who holds the driver and whether the task missed a turn meanwhile:
//!
//! | state            | meaning                                                          |
//! |------------------|------------------------------------------------------------------|
//! | `FREE`           | nobody polls the driver                                          |
//! | `HELD`           | the task or one inline poller polls it                           |
//! | `HELD \| MISSED` | an inline poller polls it, and the task was polled meanwhile     |
//!
//! - The task takes `FREE → HELD`, or notes `HELD → HELD | MISSED` and returns `Pending`.
//! - An inline poller takes only `FREE → HELD`; finding it held, it leaves the commands to the
//!   holder (its caller then wakes the task, see `Kick`).
//! - Whoever holds it lets go with one swap to `FREE`; an inline poller that finds `MISSED`
//!   in what it swapped out wakes the task.
//!
//! Every step is a read-modify-write of the one word, so all of them fall in one order (the
//! word's modification order): the task's `HELD → HELD | MISSED` either comes before the
//! poller's swap, which then sees `MISSED`, or after it, and then fails and the task takes
//! the driver itself. A wake-up cannot be lost, whatever the memory ordering of the machine;
//! the loom tests below check it. (The first version stored a flag and then tried a lock, on
//! two locations: the Rust memory model lets both sides miss each other there.)
//!
//! The bit, not the mutex around the driver, decides who may poll: the mutex is never
//! contended (it is taken only by the bit's holder) and is there so that no `unsafe` is
//! needed. A holder that unwinds lets go of the bit as it does of the mutex.

use std::cell::Cell as StdCell;
use std::task::{Context, Poll, Waker};

#[cfg(all(loom, test))]
use loom::sync::{
    Mutex, MutexGuard,
    atomic::{AtomicU8, Ordering},
};
#[cfg(not(all(loom, test)))]
use std::sync::{
    Mutex, MutexGuard,
    atomic::{AtomicU8, Ordering},
};

/// Nobody polls the driver.
const FREE: u8 = 0;
/// Someone polls the driver.
const HELD: u8 = 1;
/// The task was polled while an inline poller held the driver: the poller wakes it.
const MISSED: u8 = 2;

/// Turns one poll of the task runs at most: a turn that ended early to let the application
/// serve new calls is followed by another, which writes their answers.
const TURNS_PER_POLL: usize = 4;

/// Who polls a [`Turn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poller {
    /// The connection's own task: it reads, writes and runs timers.
    Task,
    /// A caller on the task's behalf: it applies commands, writes and runs timers, but does
    /// not read (the transport holds the task's waker for that already, and a read attempt
    /// on a quiet socket is a wasted system call).
    Inline,
}

/// What a [`TurnCell`] holds: a connection's driver, polled one turn at a time.
pub(crate) trait Turn {
    /// Runs one turn with `cx`; `Ready` when the connection is over.
    fn poll_turn(&mut self, cx: &mut Context<'_>, by: Poller) -> Poll<()>;

    /// A turn panicked part-way through: ends the connection without trusting what that turn
    /// left. The cell then drops the driver and reports it finished.
    fn abandon(&mut self);
}

/// A connection's driver, shared by its task and inline pollers.
pub(crate) struct TurnCell<T: Turn> {
    /// `FREE`, `HELD` or `HELD | MISSED`: see the module doc.
    state: AtomicU8,
    /// `None` once the driver finished. Only the holder of `HELD` locks it.
    driver: Mutex<Option<T>>,
    /// The waker of the task's latest poll: inline turns run with it.
    task_waker: Mutex<Option<Waker>>,
}

impl<T: Turn> std::fmt::Debug for TurnCell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnCell")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A cell dropped after a turn panicked (its task's executor caught the panic and dropped the
/// task) abandons the driver it holds, as the next poll would have.
#[cfg(not(all(loom, test)))]
impl<T: Turn> Drop for TurnCell<T> {
    fn drop(&mut self) {
        if let Err(poisoned) = self.driver.get_mut() {
            if let Some(driver) = poisoned.into_inner().as_mut() {
                driver.abandon();
            }
        }
    }
}

/// The `HELD` bit, let go when dropped (also when the turn unwinds).
struct Held<'a> {
    state: &'a AtomicU8,
    /// The task's waker, for an inline holder: woken if the task missed its turn.
    wake_on_miss: Option<&'a Waker>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let was = self.state.swap(FREE, Ordering::AcqRel);
        if was & MISSED != 0 {
            if let Some(waker) = self.wake_on_miss {
                waker.wake_by_ref();
            }
        }
    }
}

impl<T: Turn> TurnCell<T> {
    /// A cell holding `driver`, polled by no one yet.
    pub(crate) fn new(driver: T) -> Self {
        Self {
            state: AtomicU8::new(FREE),
            driver: Mutex::new(Some(driver)),
            task_waker: Mutex::new(None),
        }
    }

    /// Polls the driver once, holding the bit; `true` when it finished (now or before).
    fn turn(&self, cx: &mut Context<'_>, by: Poller) -> bool {
        let mut guard = self.lock_driver();
        match guard.as_mut() {
            None => true,
            Some(driver) => {
                let _polling = Polling::enter();
                let ready = driver.poll_turn(cx, by).is_ready();
                if ready {
                    *guard = None;
                }
                ready
            }
        }
    }

    /// Locks the driver. A turn that panicked left the lock poisoned and the driver in
    /// whatever state it was in: the driver is abandoned then (every call ends), never polled
    /// again.
    fn lock_driver(&self) -> MutexGuard<'_, Option<T>> {
        self.driver.lock().unwrap_or_else(|poisoned| {
            let mut guard = poisoned.into_inner();
            if let Some(mut driver) = guard.take() {
                driver.abandon();
            }
            guard
        })
    }

    /// The task's poll: takes the driver, or notes that it missed its turn (the holder then
    /// wakes it). `Ready` once the driver finished.
    ///
    /// What a turn deferred of the application's code (`conn::after_turn`) runs once the
    /// turn let go of the driver and of the bit. A turn that ended early for it (new calls
    /// to serve, whose answers it has to write) is followed by another, up to
    /// [`TURNS_PER_POLL`]; past that the task wakes itself and yields.
    pub(crate) fn poll_task(&self, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut waker = lock(&self.task_waker);
            if waker.as_ref().is_none_or(|w| !w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        for _ in 0..TURNS_PER_POLL {
            if !self.take_for_task() {
                return Poll::Pending;
            }
            let deferred = crate::conn::after_turn::Turn::start();
            let finished = {
                let _held = Held {
                    state: &self.state,
                    wake_on_miss: None,
                };
                self.turn(cx, Poller::Task)
            };
            let again = deferred.finish();
            if finished {
                return Poll::Ready(());
            }
            if !again {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Takes the bit for the task (`true`), or notes that the task missed its turn.
    fn take_for_task(&self) -> bool {
        let mut seen = self.state.load(Ordering::Acquire);
        loop {
            let (next, take) = if seen & HELD == 0 {
                (HELD, true)
            } else {
                (seen | MISSED, false)
            };
            match self
                .state
                .compare_exchange_weak(seen, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return take,
                Err(now) => seen = now,
            }
        }
    }

    /// Polls the driver here, on its task's behalf, unless someone else is polling it, the
    /// task never ran yet, or this thread is inside a driver's turn already (a call started
    /// by a callback a driver ran: turns do not nest). `true` if it was polled.
    pub(crate) fn poll_inline(&self) -> bool {
        if Polling::active() {
            return false;
        }
        let Some(waker) = lock(&self.task_waker).clone() else {
            return false;
        };
        if self
            .state
            .compare_exchange(FREE, HELD, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        let deferred = crate::conn::after_turn::Turn::start();
        let finished = {
            let _held = Held {
                state: &self.state,
                wake_on_miss: Some(&waker),
            };
            self.turn(&mut Context::from_waker(&waker), Poller::Inline)
        };
        let again = deferred.finish();
        // The task must see a finished driver to complete, and take the turn asked for.
        if finished || again {
            waker.wake();
        }
        true
    }
}

/// A turn cell as a caller who queued commands sees it, whatever it drives: the connection's
/// handle holds its driver this way.
pub(crate) trait PollInline: Send + Sync {
    /// See [`TurnCell::poll_inline`].
    fn poll_inline(&self) -> bool;
}

impl<T: Turn + Send> PollInline for TurnCell<T> {
    fn poll_inline(&self) -> bool {
        TurnCell::poll_inline(self)
    }
}

/// Locks the task's waker, taking over from a holder that panicked (a store of one waker
/// cannot be left half-done).
#[cfg(not(all(loom, test)))]
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(all(loom, test))]
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("no panic under the model")
}

#[cfg(not(all(loom, test)))]
thread_local! {
    /// Set while this thread polls a driver.
    static POLLING: StdCell<bool> = const { StdCell::new(false) };
}
#[cfg(all(loom, test))]
loom::thread_local! {
    static POLLING: StdCell<bool> = StdCell::new(false);
}

/// Marks this thread as polling a driver until dropped.
pub(crate) struct Polling(bool);

impl Polling {
    /// Marks this thread as inside a driver's turn.
    pub(crate) fn enter() -> Self {
        Self(POLLING.with(|p| p.replace(true)))
    }

    /// `true` while this thread runs a driver's turn.
    pub(crate) fn active() -> bool {
        POLLING.with(StdCell::get)
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        POLLING.with(|p| p.set(self.0));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Waker};

    use super::{Poller, Turn, TurnCell};

    /// A driver whose first turn panics, counting its turns and abandonments.
    struct Panicking {
        turns: Arc<AtomicUsize>,
        abandoned: Arc<AtomicUsize>,
    }

    impl Turn for Panicking {
        fn poll_turn(&mut self, _: &mut Context<'_>, _: Poller) -> Poll<()> {
            self.turns.fetch_add(1, Ordering::SeqCst);
            panic!("a bug in a turn");
        }

        fn abandon(&mut self) {
            self.abandoned.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A cell whose driver's first turn panicked, with its counts of turns and abandonments.
    fn panicked() -> (TurnCell<Panicking>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let turns = Arc::new(AtomicUsize::new(0));
        let abandoned = Arc::new(AtomicUsize::new(0));
        let cell = TurnCell::new(Panicking {
            turns: turns.clone(),
            abandoned: abandoned.clone(),
        });
        let mut cx = Context::from_waker(Waker::noop());
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = cell.poll_task(&mut cx);
        }));
        assert!(unwound.is_err(), "the panic reaches the task's poller");
        assert_eq!(abandoned.load(Ordering::SeqCst), 0);
        (cell, turns, abandoned)
    }

    #[test]
    fn a_driver_whose_turn_panicked_is_abandoned_once_and_never_polled_again() {
        let (cell, turns, abandoned) = panicked();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(cell.poll_task(&mut cx).is_ready(), "over at the next poll");
        assert_eq!(abandoned.load(Ordering::SeqCst), 1, "abandoned");
        assert!(cell.poll_inline(), "the bit was let go");
        assert!(cell.poll_task(&mut cx).is_ready());
        assert_eq!(turns.load(Ordering::SeqCst), 1, "never polled again");
        assert_eq!(abandoned.load(Ordering::SeqCst), 1, "abandoned once");
        drop(cell);
        assert_eq!(
            abandoned.load(Ordering::SeqCst),
            1,
            "the drop finds it gone"
        );
    }

    /// A driver whose every turn asks for another, counting them.
    struct AlwaysAgain(Arc<AtomicUsize>);

    impl Turn for AlwaysAgain {
        fn poll_turn(&mut self, _: &mut Context<'_>, _: Poller) -> Poll<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            crate::conn::after_turn::turn_again();
            Poll::Pending
        }

        fn abandon(&mut self) {}
    }

    /// Counts wake-ups.
    struct Wakes(AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn turns_asked_for_run_in_the_same_poll_up_to_a_bound_then_the_task_is_woken() {
        let turns = Arc::new(AtomicUsize::new(0));
        let cell = TurnCell::new(AlwaysAgain(turns.clone()));
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        assert!(
            cell.poll_task(&mut Context::from_waker(&waker))
                .is_pending()
        );
        assert_eq!(turns.load(Ordering::SeqCst), super::TURNS_PER_POLL);
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "yields, to be polled again"
        );
        // An inline turn that asks for another leaves it to the task, which it wakes.
        assert!(cell.poll_inline());
        assert_eq!(turns.load(Ordering::SeqCst), super::TURNS_PER_POLL + 1);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_cell_dropped_after_a_panicked_turn_abandons_its_driver() {
        let (cell, turns, abandoned) = panicked();
        // What an executor that caught the panic does next: drop the task.
        drop(cell);
        assert_eq!(abandoned.load(Ordering::SeqCst), 1);
        assert_eq!(turns.load(Ordering::SeqCst), 1);
    }
}

#[cfg(all(loom, test))]
mod loom_tests {
    //! `RUSTFLAGS="--cfg loom" cargo test -p anygrpc --lib --release loom`: every
    //! interleaving of the task and inline pollers, under loom's model of the C++11 memory
    //! model (which is Rust's).

    use std::sync::Arc as StdArc;
    use std::task::Wake;

    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;

    use super::*;

    /// A driver that counts its turns and never finishes (or finishes at turn `finish_at`);
    /// turn `again_at` ends early and asks for another (as one that received new calls does).
    struct Counting {
        turns: StdArc<AtomicUsize>,
        finish_at: usize,
        again_at: usize,
    }

    impl Turn for Counting {
        fn poll_turn(&mut self, _: &mut Context<'_>, _: Poller) -> Poll<()> {
            let n = self.turns.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.again_at {
                crate::conn::after_turn::turn_again();
            }
            if n >= self.finish_at {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }

        fn abandon(&mut self) {}
    }

    /// The task's waker: counts wakes.
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: StdArc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn cell(finish_at: usize) -> (Arc<TurnCell<Counting>>, StdArc<AtomicUsize>) {
        cell_asking_again_at(finish_at, 0)
    }

    fn cell_asking_again_at(
        finish_at: usize,
        again_at: usize,
    ) -> (Arc<TurnCell<Counting>>, StdArc<AtomicUsize>) {
        let turns = StdArc::new(AtomicUsize::new(0));
        let driver = Counting {
            turns: turns.clone(),
            finish_at,
            again_at,
        };
        (Arc::new(TurnCell::new(driver)), turns)
    }

    /// An inline poller on another thread races the task's poll (the task was polled once
    /// before); gives what the task's poll returned and whether the poller ran a turn.
    fn race_inline_and_task(cell: &Arc<TurnCell<Counting>>, wakes: &StdArc<Wakes>) -> (bool, bool) {
        let inline = {
            let cell = cell.clone();
            loom::thread::spawn(move || cell.poll_inline())
        };
        let waker = Waker::from(wakes.clone());
        let ready = cell.poll_task(&mut Context::from_waker(&waker)).is_ready();
        (ready, inline.join().unwrap())
    }

    /// The task was polled once already, so inline pollers have its waker.
    fn first_poll(cell: &TurnCell<Counting>, wakes: &StdArc<Wakes>) {
        let waker = Waker::from(wakes.clone());
        assert!(
            cell.poll_task(&mut Context::from_waker(&waker))
                .is_pending()
        );
    }

    #[test]
    fn loom_a_task_polled_during_an_inline_turn_gets_a_turn_or_a_wake() {
        loom::model(|| {
            let (cell, turns) = cell(usize::MAX);
            let wakes = StdArc::new(Wakes(AtomicUsize::new(0)));
            first_poll(&cell, &wakes);
            let inline = {
                let cell = cell.clone();
                loom::thread::spawn(move || cell.poll_inline())
            };
            let before = turns.load(Ordering::SeqCst);
            let waker = Waker::from(wakes.clone());
            let _ = cell.poll_task(&mut Context::from_waker(&waker));
            let task_turned = turns.load(Ordering::SeqCst) > before;
            let inline_turned = inline.join().unwrap();
            // The task's poll (standing for "commands arrived, look at them") either ran a
            // turn or will be polled again: never neither.
            assert!(
                task_turned || wakes.0.load(Ordering::SeqCst) > 0,
                "lost wake-up (inline turned: {inline_turned})"
            );
            assert_eq!(cell.state.load(Ordering::SeqCst), FREE, "let go");
        });
    }

    #[test]
    fn loom_a_turn_that_asks_for_another_gets_it_or_a_wake() {
        loom::model(|| {
            // The second turn, whoever runs it, asks for a third.
            let (cell, turns) = cell_asking_again_at(usize::MAX, 2);
            let wakes = StdArc::new(Wakes(AtomicUsize::new(0)));
            first_poll(&cell, &wakes);
            race_inline_and_task(&cell, &wakes);
            // The answers of the calls served after the second turn are written by a third
            // turn, or the task was woken to run it.
            assert!(
                turns.load(Ordering::SeqCst) >= 3 || wakes.0.load(Ordering::SeqCst) > 0,
                "a turn asked for another and got neither"
            );
            assert_eq!(cell.state.load(Ordering::SeqCst), FREE, "let go");
        });
    }

    #[test]
    fn loom_two_inline_pollers_and_the_task_never_share_the_driver() {
        loom::model(|| {
            let (cell, turns) = cell(usize::MAX);
            let wakes = StdArc::new(Wakes(AtomicUsize::new(0)));
            first_poll(&cell, &wakes);
            let pollers: Vec<_> = (0..2)
                .map(|_| {
                    let cell = cell.clone();
                    loom::thread::spawn(move || cell.poll_inline())
                })
                .collect();
            let waker = Waker::from(wakes.clone());
            let _ = cell.poll_task(&mut Context::from_waker(&waker));
            let inline = pollers
                .into_iter()
                .map(|p| usize::from(p.join().unwrap()))
                .sum::<usize>();
            // The mutex would panic under loom if two held it; each `true` was one turn.
            assert!(turns.load(Ordering::SeqCst) >= 1 + inline);
            assert_eq!(cell.state.load(Ordering::SeqCst), FREE);
        });
    }

    #[test]
    fn loom_a_driver_finished_inline_wakes_the_task_to_complete() {
        loom::model(|| {
            let (cell, _) = cell(2);
            let wakes = StdArc::new(Wakes(AtomicUsize::new(0)));
            first_poll(&cell, &wakes);
            let (done, _) = race_inline_and_task(&cell, &wakes);
            let waker = Waker::from(wakes.clone());
            // Whoever ran the second turn finished the driver; the task either saw it or was
            // woken to see it.
            assert!(done || wakes.0.load(Ordering::SeqCst) > 0);
            let again = cell.poll_task(&mut Context::from_waker(&waker));
            assert!(again.is_ready(), "a finished driver stays finished");
        });
    }
}

//! The single-threaded executor of [`MemoryRuntime`](super::MemoryRuntime).
//!
//! Spawned tasks wait in a FIFO run queue; nothing runs until the test drives the executor
//! (`run_until_stalled`, `block_on`), on the test's own thread. A task is queued once per wake-up
//! however many times it is woken, and runs in the order it was woken: runs are reproducible.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};

use crate::runtime::BoxFuture;

/// Task polls one `run_until_stalled` may make: past it some task wakes itself forever.
const MAX_POLLS_PER_RUN: usize = 10_000_000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Task {
    /// `None` while the task is being polled, and once it completed or was shut down.
    future: Mutex<Option<BoxFuture<'static, ()>>>,
    /// Set while the task sits in the run queue, so a burst of wake-ups queues it once.
    queued: AtomicBool,
    queue: Arc<RunQueue>,
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            lock(&self.queue.ready).push_back(Arc::clone(&self));
        }
    }
}

#[derive(Default)]
struct RunQueue {
    ready: Mutex<VecDeque<Arc<Task>>>,
    /// Every task spawned and not yet finished, to count them and to shut them down.
    tasks: Mutex<Vec<Weak<Task>>>,
    /// Set while `run_until_stalled` runs: re-entering it from a task is a test bug.
    running: AtomicBool,
    /// Tasks ever spawned.
    spawned: AtomicUsize,
}

/// A handle to the executor; clones share it.
#[derive(Clone, Default)]
pub(crate) struct Executor {
    queue: Arc<RunQueue>,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("ready", &lock(&self.queue.ready).len())
            .field("live", &self.live_tasks())
            .finish()
    }
}

/// Clears the `running` flag even when a task panics.
struct RunningGuard<'a>(&'a AtomicBool);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Executor {
    /// Queues `future` as a new task; it first runs at the next `run_until_stalled`.
    pub(crate) fn spawn(&self, future: BoxFuture<'static, ()>) {
        self.queue.spawned.fetch_add(1, Ordering::Relaxed);
        let task = Arc::new(Task {
            future: Mutex::new(Some(future)),
            queued: AtomicBool::new(false),
            queue: Arc::clone(&self.queue),
        });
        {
            let mut tasks = lock(&self.queue.tasks);
            tasks.retain(|t| t.strong_count() > 0);
            tasks.push(Arc::downgrade(&task));
        }
        task.wake();
    }

    /// Polls queued tasks until the queue is empty. Returns how many polls it made.
    ///
    /// # Panics
    /// When called from inside one of its own tasks, or when tasks keep waking each other
    /// without end (a busy loop in the code under test).
    pub(crate) fn run_until_stalled(&self) -> usize {
        assert!(
            !self.queue.running.swap(true, Ordering::AcqRel),
            "MemoryRuntime::run_until_stalled or block_on called from inside a task it runs"
        );
        let _running = RunningGuard(&self.queue.running);
        let mut polls = 0;
        loop {
            let Some(task) = lock(&self.queue.ready).pop_front() else {
                return polls;
            };
            task.queued.store(false, Ordering::Release);
            let Some(mut future) = lock(&task.future).take() else {
                continue;
            };
            polls += 1;
            assert!(
                polls <= MAX_POLLS_PER_RUN,
                "MemoryRuntime: tasks never stall (a task keeps waking itself)"
            );
            let waker = Waker::from(Arc::clone(&task));
            if future
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
            {
                *lock(&task.future) = Some(future);
            }
        }
    }

    /// Whether a task waits in the run queue.
    pub(crate) fn has_ready(&self) -> bool {
        !lock(&self.queue.ready).is_empty()
    }

    /// Tasks spawned and not finished (waiting or queued). A task nobody can wake any more
    /// (its waker was dropped) is freed and no longer counted.
    pub(crate) fn spawned_tasks(&self) -> usize {
        self.queue.spawned.load(Ordering::Relaxed)
    }

    pub(crate) fn live_tasks(&self) -> usize {
        lock(&self.queue.tasks)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|t| lock(&t.future).is_some())
            .count()
    }

    /// Drops every task's future (closing what they own) without running them again.
    pub(crate) fn shutdown(&self) {
        let tasks: Vec<Arc<Task>> = lock(&self.queue.tasks)
            .drain(..)
            .filter_map(|t| t.upgrade())
            .collect();
        lock(&self.queue.ready).clear();
        // Dropped outside every lock: a future's destructor may wake or spawn.
        let futures: Vec<_> = tasks
            .iter()
            .filter_map(|t| lock(&t.future).take())
            .collect();
        drop(futures);
    }
}

/// A waker for `block_on`'s own future: records that it was woken.
#[derive(Default)]
pub(crate) struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

impl Flag {
    /// Returns whether it was woken since the last call, and clears it.
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// Polls `future` once with `waker`.
pub(crate) fn poll_once<F: std::future::Future + ?Sized>(
    future: std::pin::Pin<&mut F>,
    waker: &Waker,
) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(waker))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[test]
    fn tasks_run_in_spawn_order_and_only_when_driven() {
        let exec = Executor::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3 {
            let log = Arc::clone(&log);
            exec.spawn(Box::pin(async move { log.lock().unwrap().push(i) }));
        }
        assert!(log.lock().unwrap().is_empty());
        assert_eq!(exec.live_tasks(), 3);
        assert_eq!(exec.run_until_stalled(), 3);
        assert_eq!(*log.lock().unwrap(), vec![0, 1, 2]);
        assert_eq!(exec.live_tasks(), 0);
    }

    #[test]
    fn a_woken_task_runs_again_and_a_spawn_from_a_task_runs_in_the_same_pass() {
        let exec = Executor::default();
        let parked: Arc<Mutex<Option<Waker>>> = Arc::default();
        let polls = Arc::new(Mutex::new(0));
        let side = Arc::new(Mutex::new(0));
        let (p, n, s2, inner) = (
            Arc::clone(&parked),
            Arc::clone(&polls),
            Arc::clone(&side),
            exec.clone(),
        );
        exec.spawn(Box::pin(poll_fn(move |cx| {
            let count = {
                let mut n = n.lock().unwrap();
                *n += 1;
                *n
            };
            if count == 1 {
                let s3 = Arc::clone(&s2);
                inner.spawn(Box::pin(async move { *s3.lock().unwrap() += 1 }));
            }
            *p.lock().unwrap() = Some(cx.waker().clone());
            if count >= 3 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })));
        assert_eq!(exec.run_until_stalled(), 2);
        assert_eq!((*polls.lock().unwrap(), *side.lock().unwrap()), (1, 1));
        // Two wake-ups before it runs: queued once.
        let waker = parked.lock().unwrap().take().unwrap();
        waker.wake_by_ref();
        waker.wake();
        assert_eq!(exec.run_until_stalled(), 1);
        assert_eq!(*polls.lock().unwrap(), 2);
        assert_eq!(exec.live_tasks(), 1);
        assert!(!exec.has_ready());
    }

    #[test]
    fn shutdown_drops_waiting_tasks() {
        let exec = Executor::default();
        let alive = Arc::new(());
        let held = Arc::clone(&alive);
        let parked: Arc<Mutex<Option<Waker>>> = Arc::default();
        let p = Arc::clone(&parked);
        exec.spawn(Box::pin(poll_fn(move |cx| {
            let _keep = &held;
            *p.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        })));
        exec.run_until_stalled();
        assert_eq!(Arc::strong_count(&alive), 2);
        exec.shutdown();
        assert_eq!(Arc::strong_count(&alive), 1);
        assert_eq!(exec.live_tasks(), 0);
    }
}

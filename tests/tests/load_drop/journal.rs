//! What the test server's handlers observed, as a list of events the test can wait on.

use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

/// Events recorded by handlers, in order; cloning shares the list.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    inner: Arc<Mutex<Entries>>,
}

#[derive(Debug, Default)]
struct Entries {
    events: Vec<String>,
    wakers: Vec<Waker>,
}

impl Journal {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `event` and wakes whoever waits.
    pub fn record(&self, event: impl Into<String>) {
        let wakers = {
            let mut entries = self.lock();
            entries.events.push(event.into());
            std::mem::take(&mut entries.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<String> {
        self.lock().events.clone()
    }

    /// How many events equal `event` or start with `event` followed by `@`.
    pub fn count(&self, event: &str) -> usize {
        self.lock()
            .events
            .iter()
            .filter(|e| {
                e.as_str() == event || e.strip_prefix(event).is_some_and(|r| r.starts_with('@'))
            })
            .count()
    }

    /// Completes once `ready` holds for the events recorded.
    pub async fn wait_until(&self, ready: impl Fn(&[String]) -> bool) {
        poll_fn(|cx| {
            let mut entries = self.lock();
            if ready(&entries.events) {
                return Poll::Ready(());
            }
            entries.wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Completes once `event` was recorded (exactly, or followed by `@...`).
    pub async fn wait_for(&self, event: &str) {
        self.wait_until(|events| {
            events
                .iter()
                .any(|e| e == event || e.strip_prefix(event).is_some_and(|r| r.starts_with('@')))
        })
        .await
    }
}

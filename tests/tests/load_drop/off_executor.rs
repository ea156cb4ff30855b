//! Runs blocking work (a child process such as `h2load`) on its own thread and awaits it
//! without blocking the executor under test, which may have a single thread.

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

/// The result of the thread, and who waits for it.
struct Handoff<T> {
    result: Option<T>,
    waker: Option<Waker>,
}

/// Runs `work` on a new thread; the future completes with its result. A panic on the thread
/// is re-raised by the future.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let shared = Arc::new(Mutex::new(Handoff::<std::thread::Result<T>> {
        result: None,
        waker: None,
    }));
    let writer = shared.clone();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let waker = {
            let mut handoff = writer.lock().unwrap_or_else(|p| p.into_inner());
            handoff.result = Some(result);
            handoff.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    });
    let result = poll_fn(|cx| {
        let mut handoff = shared.lock().unwrap_or_else(|p| p.into_inner());
        match handoff.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                handoff.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await;
    result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

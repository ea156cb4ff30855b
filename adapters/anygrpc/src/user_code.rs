//! Running the application's code (interceptors, credentials providers, done callbacks,
//! handler factories) so that a panic in it fails only the call it was run for: never the
//! connection whose driver may be running it, never the other calls, and never leaving the
//! call layer's shared state half-updated (the code runs while no lock of ours is held).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};

use futures_util::FutureExt;

use anygrpc_core::Status;

/// Runs `f`; a panic becomes `Err(panicked(what))`, the status of the call it was run for.
pub(crate) fn guarded<T>(
    what: &str,
    panicked: fn(String) -> Status,
    f: impl FnOnce() -> Result<T, Status>,
) -> Result<T, Status> {
    // Unwind safety: `f` is the application's code given our values by reference; what it
    // may leave broken by unwinding is its own state, and the call is failed.
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(panicked(format!("{what} panicked"))))
}

/// Runs `make` (the application's code making a future: an interceptor, a credentials
/// provider) and awaits the future it made; a panic in either gives `panicked()` instead.
pub(crate) async fn guarded_future<F: Future>(
    make: impl FnOnce() -> F,
    panicked: impl FnOnce() -> F::Output,
) -> F::Output {
    // Unwind safety: as for `guarded`.
    match catch_unwind(AssertUnwindSafe(make)) {
        Ok(future) => AssertUnwindSafe(future)
            .catch_unwind()
            .await
            .unwrap_or_else(|_| panicked()),
        Err(_) => panicked(),
    }
}

/// Runs an observer (`on_complete`, a done callback): the call it observes has ended already,
/// so a panic in it is swallowed rather than carried into whoever ended the call.
pub(crate) fn observe(f: impl FnOnce()) {
    // Unwind safety: as for `guarded`; nothing of ours is borrowed mutably across `f`.
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// Runs an observer that answers (a stats handler asked for a call's recorder): a panic in it
/// is swallowed and answers `None`.
pub(crate) fn observed<T>(f: impl FnOnce() -> T) -> Option<T> {
    // Unwind safety: as for `observe`.
    catch_unwind(AssertUnwindSafe(f)).ok()
}

#[cfg(test)]
mod tests {
    use anygrpc_core::Code;

    use super::*;

    #[test]
    fn a_panic_is_the_calls_status_and_an_observers_panic_is_swallowed() {
        let status =
            guarded::<()>("a server interceptor", Status::unknown, || panic!("boom")).unwrap_err();
        assert_eq!(status.code(), Code::Unknown);
        assert_eq!(status.message(), "a server interceptor panicked");
        assert_eq!(guarded("x", Status::internal, || Ok(7)), Ok(7));
        let mut ran = false;
        observe(|| {
            ran = true;
            panic!("observer");
        });
        assert!(ran);
    }
}

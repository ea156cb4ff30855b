//! The hostile-peer suite on tokio over loopback TCP: on a multi-thread runtime (two workers),
//! and on a current-thread one where the server and client run inside `block_on`.

mod hostile;

use std::future::Future;

/// Runs `case` on a new tokio runtime, multi-thread (two workers) or current-thread.
fn run_on<F: Future<Output = ()>>(multi_thread: bool, case: impl FnOnce(hostile::Env) -> F) {
    let _one_at_a_time = hostile::serial();
    let (rt, runtime) = anygrpc_tests::tokio_runtime(multi_thread);
    rt.block_on(hostile::watched(runtime, case));
}

mod multi_thread {
    fn run<F: std::future::Future<Output = ()>>(case: impl FnOnce(crate::hostile::Env) -> F) {
        crate::run_on(true, case);
    }

    crate::hostile::hostile_suite!(super::run);
}

mod current_thread {
    fn run<F: std::future::Future<Output = ()>>(case: impl FnOnce(crate::hostile::Env) -> F) {
        crate::run_on(false, case);
    }

    crate::hostile::hostile_suite!(super::run);
}

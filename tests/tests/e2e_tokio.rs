//! The end-to-end suite on tokio over loopback TCP: on a multi-thread runtime, and on a
//! current-thread one where everything runs inside `block_on`.

mod e2e;

mod multi_thread {
    use std::future::Future;

    use crate::e2e;

    fn run<F: Future<Output = ()>>(case: impl FnOnce(e2e::Env) -> F) {
        let (rt, runtime) = anygrpc_tests::tokio_runtime(true);
        rt.block_on(e2e::watched(runtime, case));
    }

    e2e::e2e_suite!(run);
}

mod current_thread {
    use std::future::Future;

    use crate::e2e;

    fn run<F: Future<Output = ()>>(case: impl FnOnce(e2e::Env) -> F) {
        let (rt, runtime) = anygrpc_tests::tokio_runtime(false);
        rt.block_on(e2e::watched(runtime, case));
    }

    e2e::e2e_suite!(run);
}

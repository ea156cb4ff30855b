//! The load (h2load) and connection-drop suites on tokio over loopback TCP: on a multi-thread
//! runtime, and on a current-thread one where everything runs inside `block_on`.

mod load_drop;

mod multi_thread {
    use std::future::Future;

    use crate::load_drop;

    fn run<F: Future<Output = ()>>(case: impl FnOnce(anygrpc::RuntimeRef) -> F) {
        let (rt, runtime) = anygrpc_tests::tokio_runtime(true);
        rt.block_on(load_drop::watched(runtime, case));
    }

    load_drop::load_drop_suite!(run);
}

mod current_thread {
    use std::future::Future;

    use crate::load_drop;

    fn run<F: Future<Output = ()>>(case: impl FnOnce(anygrpc::RuntimeRef) -> F) {
        let (rt, runtime) = anygrpc_tests::tokio_runtime(false);
        rt.block_on(load_drop::watched(runtime, case));
    }

    load_drop::load_drop_suite!(run);
}

//! The end-to-end suite on tokio over loopback TCP: on a multi-thread runtime, and on a
//! current-thread one where everything runs inside `block_on`.

mod e2e;

mod multi_thread {
    use std::future::Future;
    use std::sync::Arc;

    use crate::e2e;

    fn run<F: Future<Output = ()>>(case: impl FnOnce(e2e::Env) -> F) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let runtime = Arc::new(anygrpc_tokio::TokioRuntime::from_handle(
            rt.handle().clone(),
        ));
        rt.block_on(e2e::watched(runtime, case));
    }

    e2e::e2e_suite!(run);
}

mod current_thread {
    use std::future::Future;
    use std::sync::Arc;

    use crate::e2e;

    fn run<F: Future<Output = ()>>(case: impl FnOnce(e2e::Env) -> F) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let runtime = Arc::new(anygrpc_tokio::TokioRuntime::from_handle(
            rt.handle().clone(),
        ));
        rt.block_on(e2e::watched(runtime, case));
    }

    e2e::e2e_suite!(run);
}

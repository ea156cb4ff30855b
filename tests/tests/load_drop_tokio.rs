//! The load (h2load) and connection-drop suites on tokio over loopback TCP: on a multi-thread
//! runtime, and on a current-thread one where everything runs inside `block_on`.

mod load_drop;

mod multi_thread {
    use std::future::Future;
    use std::sync::Arc;

    use crate::load_drop;

    fn run<F: Future<Output = ()>>(case: impl FnOnce(anygrpc::RuntimeRef) -> F) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let runtime = Arc::new(anygrpc_tokio::TokioRuntime::from_handle(
            rt.handle().clone(),
        ));
        rt.block_on(load_drop::watched(runtime, case));
    }

    load_drop::load_drop_suite!(run);
}

mod current_thread {
    use std::future::Future;
    use std::sync::Arc;

    use crate::load_drop;

    fn run<F: Future<Output = ()>>(case: impl FnOnce(anygrpc::RuntimeRef) -> F) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let runtime = Arc::new(anygrpc_tokio::TokioRuntime::from_handle(
            rt.handle().clone(),
        ));
        rt.block_on(load_drop::watched(runtime, case));
    }

    load_drop::load_drop_suite!(run);
}

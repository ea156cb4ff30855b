//! The hostile-peer suite on a multi-thread tokio runtime (two workers), over loopback TCP.

mod hostile;

use std::future::Future;
use std::sync::Arc;

fn run<F: Future<Output = ()>>(case: impl FnOnce(hostile::Env) -> F) {
    let _one_at_a_time = hostile::serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let runtime = Arc::new(anygrpc_tokio::TokioRuntime::from_handle(
        rt.handle().clone(),
    ));
    rt.block_on(hostile::watched(runtime, case));
}

hostile::hostile_suite!(crate::run);

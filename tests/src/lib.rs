//! Shared helpers of the end-to-end and interop suites in `tests/tests/`.
//!
//! Peers in other languages live in `tests/peers/<language>/`; the Rust side that bootstraps and
//! runs them is shared with the demo, in `anygrpc_examples::python_peer`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod debian_tool;

use anygrpc_examples::python_peer::{GRPCIO_VERSION, GreeterServer, PYTHON_ENV};

/// Starts the Python grpcio Greeter server, or panics saying why: an interop test without its
/// peer fails, it never skips.
pub fn start_python_greeter() -> GreeterServer {
    GreeterServer::start().unwrap_or_else(|e| {
        panic!(
            "the Python grpcio peer is required: {e}\n\
             (needs python3 with venv or pip to install grpcio=={GRPCIO_VERSION}, \
             or {PYTHON_ENV}=/path/to/python with grpcio)"
        )
    })
}

/// A tokio runtime for one test case, multi-thread (two workers) or current-thread, and the
/// anygrpc runtime on its handle.
pub fn tokio_runtime(multi_thread: bool) -> (tokio::runtime::Runtime, anygrpc::RuntimeRef) {
    let mut builder = if multi_thread {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(2);
        builder
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let rt = builder.enable_all().build().expect("a tokio runtime");
    let runtime = std::sync::Arc::new(anygrpc_tokio::TokioRuntime::from_handle(
        rt.handle().clone(),
    ));
    (rt, runtime)
}

//! Shared helpers of the end-to-end and interop suites in `tests/tests/`.
//!
//! Peers in other languages live in `tests/peers/<language>/`; the Rust side that bootstraps and
//! runs them is shared with the demo, in `anygrpc_examples::python_peer`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

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

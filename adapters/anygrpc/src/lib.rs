//! gRPC on any executor. Work in progress: the runtime seam.
#![warn(missing_docs, missing_debug_implementations)]

pub mod runtime;

pub use runtime::{BoxFuture, Listener, Runtime, RuntimeRef, Transport};

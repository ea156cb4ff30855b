//! gRPC on any executor. Work in progress: the runtime seam.
#![warn(missing_docs, missing_debug_implementations)]

pub mod runtime;
/// An in-memory runtime with a manual clock, and the conformance checks of every runtime.
#[cfg(feature = "testing")]
pub mod testing;

pub use runtime::{BoxFuture, Listener, Runtime, RuntimeRef, Transport};

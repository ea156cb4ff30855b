//! Sans-IO HTTP/2 and gRPC protocol engine.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod error;
pub mod frame;
pub mod grpc;
pub mod hpack;
mod reader;

pub use error::{ConnectionError, ErrorCode, StreamId};

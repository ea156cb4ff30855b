//! Sans-IO HTTP/2 and gRPC protocol engine.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod config;
mod connection;
pub mod error;
pub mod event;
pub mod frame;
/// Entry points of the fuzz targets in `core/fuzz/`, smoke-tested by `cargo test`.
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod grpc;
pub mod hpack;
mod reader;

pub use config::Config;
pub use connection::{CLIENT_PREFACE, CallError, CallRequest, Connection, Scheme, Side, Transmit};
pub use error::{ConnectionError, ErrorCode, StreamId};
pub use event::{Event, Message};
pub use grpc::{Code, Encoding, EncodingSet, Metadata, Status};

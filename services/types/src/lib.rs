//! The gRPC rich error model for anygrpc: a `google.rpc.Status` carried in the
//! `grpc-status-details-bin` trailer, with the standard details of `google/rpc/error_details.proto`.
//!
//! A server builds a failing [`Status`](anygrpc::Status) with details; a client reads them back
//! from the [`RpcError`](anygrpc::RpcError):
//!
//! ```
//! use std::time::Duration;
//! use anygrpc::{Code, Status};
//! use anygrpc_types::{ErrorDetails, StatusExt};
//!
//! let mut details = ErrorDetails::new();
//! details.add_bad_request_violation("name", "must not be empty");
//! details.set_retry_delay(Duration::from_secs(2));
//! let status = Status::with_error_details(Code::InvalidArgument, "bad name", &details);
//!
//! let read = status.error_details().expect("details that decode");
//! assert_eq!(read.retry_info().and_then(|r| r.retry_delay), Some(prost_types::Duration { seconds: 2, nanos: 0 }));
//! assert_eq!(read.bad_request().map(|b| b.field_violations.len()), Some(1));
//! ```
//!
//! - The code and message inside the `google.rpc.Status` are always the call's own when we
//!   build one. When a peer sends ones that disagree, the call's `grpc-status` and
//!   `grpc-message` stay the status and reading the details fails with
//!   [`DetailsError::Disagrees`], which still holds the decoded details (grpcio's
//!   `rpc_status.from_call` refuses such a trailer too; grpc-go is reported to take the
//!   trailer's status instead).
//! - A trailer that does not decode is [`DetailsError::Decode`]; the status's own code and
//!   message are untouched by it.
//! - Details of types this crate does not know are kept, as `Any`s, in
//!   [`ErrorDetails::other`], and sent again as they came.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod details;
mod error;
mod ext;

/// The generated `google.rpc` messages: `Status` and the standard error details.
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
}

pub use details::{ErrorDetails, StandardDetail};
pub use error::DetailsError;
pub use ext::{RpcErrorExt, StatusExt};
pub use pb::{
    BadRequest, DebugInfo, ErrorInfo, Help, LocalizedMessage, PreconditionFailure, QuotaFailure,
    RequestInfo, ResourceInfo, RetryInfo,
};
pub use prost_types::Any;

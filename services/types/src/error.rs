//! Why the details of a status could not be read.

use std::fmt;

use anygrpc::Code;

use crate::ErrorDetails;

/// The `grpc-status-details-bin` trailer of a status could not be read as the call's own
/// `google.rpc.Status`. The status's code and message are never affected.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DetailsError {
    /// The trailer is not an encoded `google.rpc.Status`, or a standard detail inside it
    /// (known by its type URL) is not an encoded message of that type.
    Decode {
        /// What did not decode: `google.rpc.Status` or the detail's type URL.
        what: String,
        /// prost's description of the fault.
        reason: String,
    },
    /// The `google.rpc.Status` decodes, but its code or message differ from the call's
    /// `grpc-status` / `grpc-message`, which stay the status.
    Disagrees {
        /// The call's code (from `grpc-status`).
        call_code: Code,
        /// The code inside the `google.rpc.Status`.
        inner_code: i32,
        /// The message inside the `google.rpc.Status`.
        inner_message: String,
        /// The details it carried, decoded, for a caller that wants them anyway.
        details: Box<ErrorDetails>,
    },
}

impl DetailsError {
    /// The status code this error should be reported with, were it to end a call: INTERNAL.
    pub fn code(&self) -> Code {
        Code::Internal
    }
}

impl fmt::Display for DetailsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode { what, reason } => {
                write!(
                    f,
                    "grpc-status-details-bin: {what} does not decode: {reason}"
                )
            }
            Self::Disagrees {
                call_code,
                inner_code,
                inner_message,
                ..
            } => write!(
                f,
                "grpc-status-details-bin disagrees with the call's status {call_code}: \
                 it says code {inner_code}, message {inner_message:?}"
            ),
        }
    }
}

impl std::error::Error for DetailsError {}

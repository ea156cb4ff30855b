//! What can go wrong, and the exit status and text each failure gets.

use anygrpc_tokio::{Code, Status};

/// A failure of the command.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Bad flags or arguments: exit 2, as grpcurl.
    Usage(String),
    /// The RPC (or a reflection request) ended with a non-OK status: exit 64 + its code.
    Rpc(Status),
    /// No connection to the target within `-connect-timeout`: exit 1, as grpcurl.
    Dial {
        /// The address as given.
        address: String,
        /// Why, in words.
        reason: String,
    },
    /// Anything else (bad JSON from us, descriptors that do not link): exit 1.
    Other(String),
}

impl CliError {
    /// A usage error with `message`.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    /// The process exit status for this failure.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => 2,
            Self::Rpc(status) => 64 + status.code() as i32,
            Self::Dial { .. } | Self::Other(_) => 1,
        }
    }

    /// Prints the failure to stderr in grpcurl's layout.
    pub(crate) fn report(&self) {
        match self {
            Self::Usage(message) => eprintln!("anygrpc: {message}\nTry 'anygrpc --help'."),
            Self::Rpc(status) => eprintln!("{}", status_text(status)),
            Self::Dial { address, reason } => {
                eprintln!("Failed to dial target host {address:?}: {reason}")
            }
            Self::Other(message) => eprintln!("Failed: {message}"),
        }
    }
}

/// `ERROR:`, `  Code: <Name>`, `  Message: <details>`, as grpcurl prints a failed RPC.
pub(crate) fn status_text(status: &Status) -> String {
    format!(
        "ERROR:\n  Code: {}\n  Message: {}",
        code_name(status.code()),
        status.message()
    )
}

/// The name Go's `codes.Code.String()` gives `code` (grpcurl prints these).
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

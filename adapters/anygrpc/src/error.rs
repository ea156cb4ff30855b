//! One error type for everything anygrpc raises (after grpc.aio's `BaseError`), so that an
//! application can `?` every call, build and bind into one `Result`.

use std::fmt;
use std::io;

use anygrpc_core::grpc::metadata::MetadataError;
use anygrpc_core::{Code, Status};

use crate::client::{
    ChannelOptionError, RpcError, ServiceConfigError, TargetError, UsageError, WriteError,
};

/// Anything anygrpc can raise, each kind with its own type as its
/// [`source`](std::error::Error::source). The grpc.aio names map as: `AioRpcError` is
/// [`Error::Rpc`], `UsageError` is [`Error::Usage`]; `AbortError` has no counterpart, as a
/// handler ends its call by returning `Err(ctx.abort(..))`.
///
/// ```
/// use anygrpc::{Code, Error, RpcError, Status};
///
/// fn lookup(found: bool) -> Result<u32, Error> {
///     let _target = anygrpc::Target::parse("dns:///example.com:443")?;
///     if !found {
///         Err(RpcError::from_status(Status::not_found("no such user")))?;
///     }
///     Ok(7)
/// }
///
/// let err = lookup(false).unwrap_err();
/// assert_eq!(err.code(), Some(Code::NotFound));
/// assert!(std::error::Error::source(&err).is_some());
/// assert_eq!(lookup(true).unwrap(), 7);
/// ```
#[non_exhaustive]
pub enum Error {
    /// A call ended without success (grpc.aio's `AioRpcError`): its status and metadata.
    Rpc(RpcError),
    /// A call object was used in a way its kind does not allow (grpc.aio's `UsageError`).
    Usage(UsageError),
    /// A channel's target does not parse or names no known scheme.
    Target(TargetError),
    /// A service config is not valid JSON or not a valid config.
    ServiceConfig(ServiceConfigError),
    /// A channel option has an unknown name or a bad value.
    ChannelOption(ChannelOptionError),
    /// A metadata key or value is not valid.
    Metadata(MetadataError),
    /// TLS credentials could not be made (a bad certificate or key).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    Credentials(crate::tls::CredentialsError),
    /// A socket could not be bound, connected or served.
    Io(io::Error),
}

impl Error {
    /// The gRPC status code, for a failed call (`None` for the other kinds).
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Rpc(error) => Some(error.code()),
            _ => None,
        }
    }

    /// The error as a status, to end a server call with (a handler calling another service
    /// passes the downstream failure on with `?`): a failed call's own status, else INTERNAL
    /// (UNKNOWN for I/O) naming the error.
    pub fn to_status(&self) -> Status {
        match self {
            Error::Rpc(error) => error.status().clone(),
            Error::Io(error) => Status::unknown(error.to_string()),
            other => Status::internal(other.to_string()),
        }
    }
}

/// The message, as `fn main() -> anygrpc::Result<()>` prints a failure (the
/// variant's structure is in `{:#?}`).
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return match self {
                Error::Rpc(error) => f.debug_tuple("Rpc").field(error).finish(),
                Error::Usage(error) => f.debug_tuple("Usage").field(error).finish(),
                Error::Target(error) => f.debug_tuple("Target").field(error).finish(),
                Error::ServiceConfig(error) => f.debug_tuple("ServiceConfig").field(error).finish(),
                Error::ChannelOption(error) => f.debug_tuple("ChannelOption").field(error).finish(),
                Error::Metadata(error) => f.debug_tuple("Metadata").field(error).finish(),
                #[cfg(feature = "tls")]
                Error::Credentials(error) => f.debug_tuple("Credentials").field(error).finish(),
                Error::Io(error) => f.debug_tuple("Io").field(error).finish(),
            };
        }
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rpc(error) => error.fmt(f),
            Error::Usage(error) => write!(f, "usage error: {error}"),
            Error::Target(error) => write!(f, "bad target: {error}"),
            Error::ServiceConfig(error) => write!(f, "bad service config: {error}"),
            Error::ChannelOption(error) => write!(f, "bad channel option: {error}"),
            Error::Metadata(error) => write!(f, "bad metadata: {error}"),
            #[cfg(feature = "tls")]
            Error::Credentials(error) => write!(f, "bad TLS credentials: {error}"),
            Error::Io(error) => write!(f, "I/O error: {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(match self {
            Error::Rpc(error) => error,
            Error::Usage(error) => error,
            Error::Target(error) => error,
            Error::ServiceConfig(error) => error,
            Error::ChannelOption(error) => error,
            Error::Metadata(error) => error,
            #[cfg(feature = "tls")]
            Error::Credentials(error) => error,
            Error::Io(error) => error,
        })
    }
}

macro_rules! from_kind {
    ($($kind:ident($ty:ty)),* $(,)?) => {
        $(
            impl From<$ty> for Error {
                fn from(error: $ty) -> Self {
                    Error::$kind(error)
                }
            }
        )*
    };
}

from_kind!(
    Rpc(RpcError),
    Usage(UsageError),
    Target(TargetError),
    ServiceConfig(ServiceConfigError),
    ChannelOption(ChannelOptionError),
    Metadata(MetadataError),
    Io(io::Error),
);

#[cfg(feature = "tls")]
from_kind!(Credentials(crate::tls::CredentialsError));

impl From<WriteError> for Error {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Rpc(error) => Error::Rpc(error),
            WriteError::Usage(error) => Error::Usage(error),
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        error.to_status()
    }
}

/// A `Result` whose error is anygrpc's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn every_kind_converts_and_chains_to_its_own_error() {
        let rpc: Error = RpcError::from_status(Status::unavailable("down")).into();
        assert_eq!(rpc.code(), Some(Code::Unavailable));
        assert_eq!(rpc.to_status().code(), Code::Unavailable);
        let source = rpc.source().expect("the RpcError");
        assert!(source.downcast_ref::<RpcError>().is_some());
        assert!(
            source
                .source()
                .and_then(|s| s.downcast_ref::<Status>())
                .is_some(),
            "and below it the status"
        );

        let usage: Error = WriteError::Usage(UsageError::WriteAfterDoneWriting).into();
        assert!(matches!(
            usage,
            Error::Usage(UsageError::WriteAfterDoneWriting)
        ));
        assert_eq!(usage.code(), None);
        assert_eq!(Status::from(usage).code(), Code::Internal);

        let io: Error = io::Error::new(io::ErrorKind::AddrInUse, "taken").into();
        assert!(io.to_string().contains("taken"));
        assert!(
            io.source()
                .and_then(|s| s.downcast_ref::<io::Error>())
                .is_some()
        );

        let target: Error = crate::Target::parse("unix:").unwrap_err().into();
        assert!(target.source().is_some());
        let printed = format!("{target:?}");
        assert!(printed.starts_with("bad target: "), "{printed}");
        assert!(format!("{target:#?}").starts_with("Target("));
    }
}

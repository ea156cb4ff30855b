//! Interceptors and call credentials: the application's async code around every call of a
//! channel or a server.
//!
//! - Client: one wrapping trait per call kind ([`UnaryUnaryClientInterceptor`] and the rest)
//!   with a continuation, after grpc.aio; [`ClientInterceptor`] for the common "edit the
//!   details, observe the end" case over all four; async [`CallCredentials`].
//! - Server: [`ServerInterceptor`], async, wrapping the handler, with typed per-call
//!   [`Extensions`].
//!
//! Interceptors compose in the order they were added (the first added runs first and sees
//! the outcome last), run in the call's task or one of the channel's, and never under a
//! connection's driver.

mod client;
mod credentials;
mod extensions;
mod message;
mod observe;
mod response_stream;
mod server;

pub use client::{
    ClientCallDetails, Continuation, InterceptedKind, RequestMessages,
    StreamStreamClientInterceptor, StreamStreamContinuation, StreamStreamKind,
    StreamUnaryClientInterceptor, StreamUnaryContinuation, StreamUnaryKind, UnaryOutcome,
    UnaryStreamClientInterceptor, UnaryStreamContinuation, UnaryStreamKind,
    UnaryUnaryClientInterceptor, UnaryUnaryContinuation, UnaryUnaryKind,
};
pub(crate) use client::{Interceptors, Terminal};
pub use credentials::{AuthMetadataContext, BearerToken, CallCredentials};
pub use extensions::Extensions;
pub use message::AnyMsg;
pub(crate) use message::{AnyCodec, Erased, ErasedCodec};
pub use observe::ClientInterceptor;
pub(crate) use observe::Observing;
pub(crate) use response_stream::ResponseSource;
pub use response_stream::ResponseStream;
pub(crate) use server::Terminal as ServerTerminal;
pub use server::{ServerCallDetails, ServerInterceptor, ServerNext};

//! gRPC on any executor: channels, Call objects, servers and interceptors over the sans-IO
//! `anygrpc-core`, written once against `futures-io` and a small [`Runtime`] trait. Adapter
//! crates (`anygrpc-smol`, `anygrpc-async-std`, `anygrpc-tokio`) bind it to an executor.
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
mod client;
mod codec;
mod conn;
mod error;
mod interceptor;
mod pipe;
mod read_buffer;
mod runtime;
mod server;
mod stats;
/// An in-memory runtime with a manual clock, and the conformance checks of every runtime.
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod tls;
mod trace;
#[cfg(unix)]
mod unix_socket;
mod user_code;
mod wakers;

pub use anygrpc_core::grpc::metadata::{MetadataError, MetadataKey, MetadataValue};
pub use anygrpc_core::{
    Code, Compression, CompressionLevel, Config, Encoding, Metadata, PingPolicy, Status,
};
pub use auth::AuthContext;
pub use client::{
    BackoffConfig, CHANNEL_OPTIONS, CallOptions, Channel, ChannelBuilder, ChannelOptionError,
    ChannelOptionValue, ConnectRequest, Connectivity, Connector, HttpProxy, LoadBalancing, Msg,
    ProxyError, RpcError, ServiceConfig, ServiceConfigError, StreamStream, StreamStreamCall,
    StreamUnary, StreamUnaryCall, Target, TargetError, UnaryCall, UnaryStream, UnaryStreamCall,
    UnaryUnary, UsageError, WriteError, WriteOptions,
};
pub use codec::{Codec, ProstCodec, RawCodec};
pub use error::{Error, Result};
/// The parts of a parsed [`ServiceConfig`] (gRFC A2), for code that reads what a config says.
pub mod service_config {
    pub use crate::client::{
        HedgingPolicy, LoadBalancingConfig, MethodConfig, MethodName, Reliability, RetryPolicy,
        RetryThrottling, ServiceConfig, ServiceConfigError,
    };
}
/// Name resolution: resolvers for schemes of your own (`consul:///svc`), registered for the
/// process with [`resolver::register`] or for one channel with [`ChannelBuilder::resolver`];
/// [`ManualResolver`](resolver::ManualResolver) for tests.
pub mod resolver {
    pub use crate::client::resolver_register as register;
    pub use crate::client::{
        Address, Attributes, Endpoint, ManualResolver, Resolver, ResolverBuilder, ResolverHandle,
        ResolverUpdate, TargetUri,
    };
}
/// Balancing policies of your own, registered for the process with [`balancer::register`] or
/// for one channel with [`ChannelBuilder::balancing_policy`], and chosen by name in a service
/// config's `loadBalancingConfig`.
pub mod balancer {
    pub use crate::client::policy_register as register;
    pub use crate::client::{
        PickInfo, PickResult, Policy, PolicyArgs, PolicyBuilder, PolicyChannel, PolicyConfig,
        PolicyUpdate, Subchannel,
    };
}
/// Re-exported so generated code and users name one `Stream` trait.
pub use futures_core;
pub use interceptor::{
    AnyMsg, AuthMetadataContext, BearerToken, CallCredentials, ClientCallDetails,
    ClientInterceptor, Continuation, Extensions, InterceptedKind, RequestMessages, ResponseStream,
    ServerCallDetails, ServerInterceptor, ServerNext, StreamStreamClientInterceptor,
    StreamStreamContinuation, StreamStreamKind, StreamUnaryClientInterceptor,
    StreamUnaryContinuation, StreamUnaryKind, UnaryOutcome, UnaryStreamClientInterceptor,
    UnaryStreamContinuation, UnaryStreamKind, UnaryUnaryClientInterceptor, UnaryUnaryContinuation,
    UnaryUnaryKind,
};
pub use runtime::{BoxFuture, Listener, Runtime, RuntimeRef, Transport};
pub use server::{RequestStream, ResponseSink, Server, ServerCall, Service, ServicerContext};
pub use stats::{CallEvent, CallInfo, CallStats, ConnectionEvent, StatsHandler, StatsSide};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::{ChannelCredentials, CredentialsError, ServerCredentials, rustls};

/// Plumbing for generated code and runtime adapters, not for applications: no stable API, any
/// release may change it. Generated services name the typed handlers here; adapters name
/// peers with [`grpc_peer`](__private::grpc_peer).
#[doc(hidden)]
pub mod __private {
    pub use crate::runtime::{grpc_peer, grpc_unix_peer};
    #[cfg(unix)]
    pub use crate::unix_socket::UnixSocketFile;

    /// `true` while this thread runs a connection driver's turn. The application's code
    /// never runs then (`conn`'s contract); the test suites check it from every kind of it.
    pub fn under_a_driver() -> bool {
        crate::conn::cell::Polling::active()
    }
    pub use crate::server::handlers::{
        BidiStreamingMethod, ClientStreamingMethod, ServerStreamingMethod, UnaryMethod,
        bidi_streaming, bidi_streaming_with_codec, client_streaming, client_streaming_with_codec,
        server_streaming, server_streaming_with_codec, unary, unary_with_codec,
    };
}

//! The client side: channels, targets, backoff and the four call kinds.

mod attempt;
mod backoff;
mod call;
mod channel;
mod hedged;
mod hedging;
mod kinds;
mod options;
mod pick_first;
mod retry;
mod round_robin;
mod service_config;
mod target;

pub use backoff::BackoffConfig;
pub use call::{CallOptions, RpcError, UsageError, WriteError, WriteOptions};
pub use channel::{Channel, ChannelBuilder, Connectivity, LoadBalancing};
pub use kinds::{
    Msg, StreamStream, StreamStreamCall, StreamUnary, StreamUnaryCall, UnaryCall, UnaryStream,
    UnaryStreamCall, UnaryUnary,
};
pub use options::{CHANNEL_OPTIONS, ChannelOptionError, ChannelOptionValue};
pub use service_config::{
    HedgingPolicy, LoadBalancingConfig, MethodConfig, MethodName, Reliability, RetryPolicy,
    RetryThrottling, ServiceConfig, ServiceConfigError,
};
pub use target::{Target, TargetError};

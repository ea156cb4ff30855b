//! The client side: channels, targets, resolvers, balancing policies, backoff and the four
//! call kinds.

mod attempt;
mod backoff;
mod balancer;
mod call;
mod channel;
mod connector;
mod hedged;
mod hedging;
mod intercepted;
mod kinds;
mod options;
mod proxy;
mod resolver;
mod retry;
mod service_config;
mod target;

pub use backoff::BackoffConfig;
pub use balancer::register as policy_register;
pub use balancer::{
    PickInfo, PickResult, Policy, PolicyArgs, PolicyBuilder, PolicyChannel, PolicyConfig,
    PolicyUpdate, Subchannel,
};
pub use call::{CallOptions, RpcError, UsageError, WriteError, WriteOptions};
pub use channel::{Channel, ChannelBuilder, Connectivity, LoadBalancing};
pub use connector::{ConnectRequest, Connector};
pub use kinds::{
    Msg, StreamStream, StreamStreamCall, StreamUnary, StreamUnaryCall, UnaryCall, UnaryStream,
    UnaryStreamCall, UnaryUnary,
};
pub use options::{CHANNEL_OPTIONS, ChannelOptionError, ChannelOptionValue};
pub use proxy::{HttpProxy, ProxyError};
pub use resolver::register as resolver_register;
pub use resolver::{
    Address, Attributes, Endpoint, ManualResolver, Resolver, ResolverBuilder, ResolverHandle,
    ResolverUpdate, TargetUri,
};
pub use service_config::{
    HedgingPolicy, LoadBalancingConfig, MethodConfig, MethodName, Reliability, RetryPolicy,
    RetryThrottling, ServiceConfig, ServiceConfigError,
};
pub use target::{Target, TargetError};

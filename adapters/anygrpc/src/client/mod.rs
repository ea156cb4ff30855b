//! The client side: channels, targets, backoff and the four call kinds.

mod attempt;
mod backoff;
mod call;
mod channel;
mod kinds;
mod pick_first;
mod round_robin;
mod target;

pub use backoff::BackoffConfig;
pub use call::{CallOptions, RpcError, UsageError, WriteError, WriteOptions};
pub use channel::{Channel, ChannelBuilder, Connectivity, LoadBalancing};
pub use kinds::{
    Msg, StreamStream, StreamStreamCall, StreamUnary, StreamUnaryCall, UnaryCall, UnaryStream,
    UnaryStreamCall, UnaryUnary,
};
pub use target::{Target, TargetError};

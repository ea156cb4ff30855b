//! The cases of the suite, each an `async fn(Env)` that asserts what it tests.

mod balancing;
mod calls;
mod cardinality;
mod codecs;
mod compression;
mod hedging;
mod interceptors;
mod lifecycle;
mod load;
mod retries;
mod scaling;
mod service_config;
mod status;
mod time;
#[cfg(unix)]
mod transports;

pub use balancing::*;
pub use calls::*;
pub use cardinality::*;
pub use codecs::*;
pub use compression::*;
pub use hedging::*;
pub use interceptors::*;
pub use lifecycle::*;
pub use load::*;
pub use retries::*;
pub use scaling::*;
pub use service_config::*;
pub use status::*;
pub use time::*;
#[cfg(unix)]
pub use transports::*;

//! gRFC A66's OpenTelemetry metrics for anygrpc channels and servers, recorded through
//! anygrpc's stats handlers.
//!
//! ```
//! use anygrpc_otel::OtelStats;
//! # fn main() {
//! let provider = opentelemetry::global::meter_provider();
//! let stats = OtelStats::new(&*provider);
//! // `Channel::builder(target, rt).stats_handler(stats.clone())` on a channel,
//! // `server.add_stats_handler(stats)` on a server.
//! # let _ = stats;
//! # }
//! ```
//!
//! `grpc.method` is the method's full name without its leading `/`. A66 asks for `other` in
//! place of methods that are not generated or registered; anygrpc's stats seam does not tell
//! whether a method is, so by default every name is recorded. Give
//! [`OtelStatsBuilder::method_filter`] a closure to choose which names are kept.

mod call;
mod instruments;

use std::sync::Arc;

use anygrpc::{CallInfo, CallStats, StatsHandler, StatsSide};
use opentelemetry::InstrumentationScope;
use opentelemetry::metrics::MeterProvider;

pub use instruments::{LATENCY_BUCKETS, SIZE_BUCKETS};

/// Decides, from a full method name (no leading `/`), whether it is recorded as itself
/// (`true`) or as `other`.
pub type MethodFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A stats handler that records A66's instruments; clone it onto channels and servers.
#[derive(Clone)]
pub struct OtelStats {
    instruments: Arc<instruments::Instruments>,
    filter: Option<MethodFilter>,
}

impl std::fmt::Debug for OtelStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelStats")
            .field("method_filter", &self.filter.is_some())
            .finish()
    }
}

/// Options of an [`OtelStats`].
#[derive(Default)]
pub struct OtelStatsBuilder {
    filter: Option<MethodFilter>,
}

impl std::fmt::Debug for OtelStatsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelStatsBuilder")
            .field("method_filter", &self.filter.is_some())
            .finish()
    }
}

impl OtelStatsBuilder {
    /// Records a method's name only when `keep` says so, `other` otherwise.
    pub fn method_filter(mut self, keep: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(keep));
        self
    }

    /// The handler, with its instruments on `provider`'s meter `anygrpc-otel`.
    pub fn build(self, provider: &(impl MeterProvider + ?Sized)) -> OtelStats {
        let scope = InstrumentationScope::builder("anygrpc-otel")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter = provider.meter_with_scope(scope);
        OtelStats {
            instruments: Arc::new(instruments::Instruments::new(&meter)),
            filter: self.filter,
        }
    }
}

impl OtelStats {
    /// A handler with default options on `provider`.
    pub fn new(provider: &(impl MeterProvider + ?Sized)) -> Self {
        Self::builder().build(provider)
    }

    /// Options.
    pub fn builder() -> OtelStatsBuilder {
        OtelStatsBuilder::default()
    }

    fn method_name(&self, path: &str) -> String {
        let name = path.strip_prefix('/').unwrap_or(path);
        match &self.filter {
            Some(keep) if !keep(name) => "other".to_string(),
            _ => name.to_string(),
        }
    }
}

impl StatsHandler for OtelStats {
    fn call_started(&self, info: &CallInfo<'_>) -> Option<Box<dyn CallStats>> {
        let method = self.method_name(info.method);
        let instruments = self.instruments.clone();
        Some(match info.side {
            StatsSide::Server => Box::new(call::ServerCall::new(instruments, method, info.started)),
            _ => Box::new(call::ClientCall::new(
                instruments,
                method,
                info.target.to_string(),
                info.started,
            )),
        })
    }
}

//! Service config (gRFC A2): the JSON a channel is given (or, later, a resolver supplies) that
//! sets per-method timeouts, wait-for-ready, message size limits, retry and hedging policies
//! (gRFC A6), retry throttling and the load-balancing policy.
//!
//! [`ServiceConfig::parse`] validates the whole document up front, as grpc-go and C-core do:
//! a config with one bad field is rejected whole, and the error names the field by its path
//! (`methodConfig[1].retryPolicy.maxAttempts`). Fields this implementation does not know are
//! ignored, so that a config written for a newer gRPC still loads.

mod parse;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use anygrpc_core::Code;

use crate::client::balancer::PolicyRegistry;

/// A parsed and validated service config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceConfig {
    /// The balancing policy the config chose: the first entry of `loadBalancingConfig` this
    /// channel knows, or the deprecated `loadBalancingPolicy`; `None` when it names neither.
    pub load_balancing: Option<LoadBalancingConfig>,
    /// `retryThrottling`: a token bucket shared by all calls of the channel.
    pub retry_throttling: Option<RetryThrottling>,
    /// `methodConfig`, in the order given.
    pub method_configs: Vec<MethodConfig>,
    /// `connectionScaling.maxConnectionsPerSubchannel` (gRFC A105): how many connections a
    /// subchannel may open to its address when every one is at the server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS (at least 1; the channel caps it, 10 by default).
    pub max_connections_per_subchannel: Option<u32>,
    /// Which entry of `method_configs` a name selects.
    index: NameIndex,
}

/// Which `methodConfig` entry each name selects, looked up without allocating.
#[derive(Debug, Clone, Default, PartialEq)]
struct NameIndex {
    /// Per service: the entry for the whole service, and the entries of single methods.
    services: HashMap<String, ServiceEntries>,
    /// The entry for every method (`{}`, or empty service and method).
    default: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct ServiceEntries {
    whole: Option<usize>,
    methods: HashMap<String, usize>,
}

impl NameIndex {
    /// Adds `name` → `entry`; false when the name was already taken (A2: an error).
    fn insert(&mut self, name: &MethodName, entry: usize) -> bool {
        let slot = if name.service.is_empty() {
            &mut self.default
        } else {
            let service = self.services.entry(name.service.clone()).or_default();
            match &name.method {
                None => &mut service.whole,
                Some(method) => {
                    if service.methods.contains_key(method) {
                        return false;
                    }
                    service.methods.insert(method.clone(), entry);
                    return true;
                }
            }
        };
        slot.replace(entry).is_none()
    }

    fn get(&self, service: &str, method: &str) -> Option<usize> {
        match self.services.get(service) {
            Some(entries) => entries.methods.get(method).copied().or(entries.whole),
            None => None,
        }
        .or(self.default)
    }
}

/// The policies a service config's `loadBalancingConfig` can choose.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadBalancingConfig {
    /// `{"pick_first": {"shuffleAddressList": bool}}` (gRFC A62).
    PickFirst {
        /// Shuffle the resolved addresses before trying them in order.
        shuffle_address_list: bool,
    },
    /// `{"round_robin": {}}`.
    RoundRobin,
    /// `{"least_request": {"choiceCount": N}}` (gRFC A48, also spelt
    /// `least_request_experimental`).
    LeastRequest {
        /// Ready subchannels sampled per pick: 2 to 10 (outside, clamped), default 2.
        choice_count: u32,
    },
    /// A policy registered on the channel (`ChannelBuilder::balancing_policy`), with the
    /// config its builder parsed.
    Custom {
        /// The name it is registered and selected by.
        name: String,
        /// Its parsed config.
        config: crate::client::balancer::PolicyConfig,
    },
}

impl LoadBalancingConfig {
    /// The policy's name, as configs spell it.
    pub fn name(&self) -> &str {
        match self {
            LoadBalancingConfig::PickFirst { .. } => "pick_first",
            LoadBalancingConfig::RoundRobin => "round_robin",
            LoadBalancingConfig::LeastRequest { .. } => "least_request",
            LoadBalancingConfig::Custom { name, .. } => name,
        }
    }
}

/// A built-in policy's config object (JSON text) parsed as the service config does, for
/// its `PolicyBuilder::parse_config`.
pub(crate) fn parse_builtin(name: &str, json: &str) -> Result<LoadBalancingConfig, String> {
    parse::builtin_policy_json(name, json).map_err(|e| e.to_string())
}

/// `retryThrottling` (gRFC A6): retries and hedges stop while the channel's tokens are at or
/// below half of `max_tokens`; each failed attempt costs one token, each success gives back
/// `token_ratio`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryThrottling {
    /// The bucket's size, 1 to 1000.
    pub max_tokens: u32,
    /// Tokens a successful call gives back, above 0 (kept to three decimal places).
    pub token_ratio: f64,
}

/// One `methodConfig` entry: what applies to the methods its `name` list selects.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct MethodConfig {
    /// The methods it applies to.
    pub names: Vec<MethodName>,
    /// `waitForReady`: the call's default (a call's own setting wins).
    pub wait_for_ready: Option<bool>,
    /// `timeout`: the call's deadline is the earlier of this and its own.
    pub timeout: Option<Duration>,
    /// `maxRequestMessageBytes`: the smaller of this and the channel's limit applies.
    pub max_request_message_bytes: Option<usize>,
    /// `maxResponseMessageBytes`: the smaller of this and the channel's limit applies.
    pub max_response_message_bytes: Option<usize>,
    /// `retryPolicy` or `hedgingPolicy` (never both).
    pub reliability: Option<Reliability>,
}

/// What a method config does when an attempt fails.
#[derive(Debug, Clone, PartialEq)]
pub enum Reliability {
    /// Try again after a backoff, for the listed codes.
    Retry(RetryPolicy),
    /// Send further attempts after a delay, without waiting for the first to fail.
    Hedging(HedgingPolicy),
}

/// `retryPolicy` (gRFC A6).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included: 2 to 5 (more is taken as 5).
    pub max_attempts: u32,
    /// The first backoff's upper bound (each backoff is random in 0..bound).
    pub initial_backoff: Duration,
    /// The cap on the bound.
    pub max_backoff: Duration,
    /// How the bound grows after each attempt.
    pub backoff_multiplier: f64,
    /// The codes that are retried; any other fails the call.
    pub retryable_status_codes: Vec<Code>,
}

/// `hedgingPolicy` (gRFC A6).
#[derive(Debug, Clone, PartialEq)]
pub struct HedgingPolicy {
    /// Attempts in all, the first included: 2 to 5 (more is taken as 5).
    pub max_attempts: u32,
    /// Time between sending one attempt and the next (zero: all at once).
    pub hedging_delay: Duration,
    /// Codes after which the remaining attempts still go on; any other ends the call.
    pub non_fatal_status_codes: Vec<Code>,
}

/// A `name` entry: a whole service (`method: None`), one method, or every method (both
/// empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MethodName {
    /// The fully qualified service, e.g. `grpc.testing.TestService`; empty: every service.
    pub service: String,
    /// The method within it; `None`: every method of the service.
    pub method: Option<String>,
}

/// Why a service config was rejected: the field, by its JSON path, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfigError {
    /// Where, e.g. `methodConfig[0].retryPolicy.maxAttempts`; empty for the document itself.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for ServiceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid service config: {}", self.problem)
        } else {
            write!(
                f,
                "invalid service config: {}: {}",
                self.field, self.problem
            )
        }
    }
}

impl std::error::Error for ServiceConfigError {}

/// The most attempts A6 allows; larger values are taken as this.
pub(super) const MAX_ATTEMPTS_CAP: u32 = 5;

impl ServiceConfig {
    /// Parses and validates a service config in gRPC's JSON form. Its
    /// `loadBalancingConfig` may choose the built-in policies only; a channel's builder (or
    /// resolver handle) parses knowing the policies registered on it.
    pub fn parse(json: &str) -> Result<Self, ServiceConfigError> {
        parse::service_config(json, &PolicyRegistry::default())
    }

    /// Parses knowing the policies of `registry`.
    pub(crate) fn parse_with(
        json: &str,
        registry: &PolicyRegistry,
    ) -> Result<Self, ServiceConfigError> {
        parse::service_config(json, registry)
    }

    /// The method config that applies to the call of `path` (`/package.Service/Method`): the
    /// entry naming the method, else the one naming its service, else the default (`{}`).
    pub fn method_config(&self, path: &str) -> Option<&MethodConfig> {
        let (service, method) = path
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .unwrap_or(("", ""));
        self.index
            .get(service, method)
            .and_then(|i| self.method_configs.get(i))
    }
}

#[cfg(test)]
mod tests;

//! Name resolution (gRPC naming doc, grpc-go's `resolver` package): a [`Resolver`] turns a
//! channel's target into addresses and *pushes* them, and every later change, to the channel
//! through its [`ResolverHandle`]. Resolvers are chosen by the target's scheme
//! (`scheme://authority/endpoint`) among the channel's registered [`ResolverBuilder`]s.
//!
//! Built in: `dns` (also for a bare `host:port`), `ipv4`, `ipv6`, `unix`; and
//! [`ManualResolver`], a resolver the test (or application) feeds by hand.
//!
//! The contract: `build` is called when the channel leaves Idle, never under a lock of the
//! channel's, so a resolver may push its first update from inside `build`. `resolve_now` is a
//! hint (a connection failed); it too is called with no lock held. The resolver is dropped
//! when the channel closes, goes Idle, or is dropped; a handle of a dropped resolver is inert.

mod dns;
mod fixed;
mod manual;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use anygrpc_core::Status;

use super::backoff::BackoffConfig;
use super::channel::{Channel, ChannelInner};
use super::service_config::{ServiceConfig, ServiceConfigError};
pub use crate::runtime::Endpoint;
use crate::runtime::RuntimeRef;

pub use manual::ManualResolver;

/// String attributes a resolver attaches to an address or to a whole update, for the
/// balancing policy to read (a weight, a zone, a locality); ordered, so equal sets compare
/// equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Attributes(BTreeMap<String, String>);

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }
    /// With `key` set to `value` (replacing an earlier value).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    /// Every attribute, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// One resolved address, with what the resolver knows about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// The resolver's attributes of this address.
    pub attributes: Attributes,
}

impl Address {
    /// A TCP address without attributes.
    pub fn tcp(addr: SocketAddr) -> Self {
        Self {
            endpoint: Endpoint::Tcp(addr),
            attributes: Attributes::default(),
        }
    }
    /// A Unix socket path without attributes.
    pub fn unix(path: impl Into<String>) -> Self {
        Self {
            endpoint: Endpoint::Unix(path.into()),
            attributes: Attributes::default(),
        }
    }
}

/// What a resolver pushes: the whole current address list (it replaces the previous one), the
/// update's attributes, and maybe a service config.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ResolverUpdate {
    /// Every address the target resolves to now, in the resolver's order.
    pub addresses: Vec<Address>,
    /// Attributes of the whole update, passed to the balancing policy.
    pub attributes: Attributes,
    /// A service config the resolver found (parse it with
    /// [`ResolverHandle::parse_service_config`]): `None` keeps the channel's default; an
    /// error keeps the last good config, or fails the channel if it never had one (gRFC A21).
    pub service_config: Option<Result<ServiceConfig, ServiceConfigError>>,
}

impl ResolverUpdate {
    /// An update of `addresses` alone.
    pub fn new(addresses: Vec<Address>) -> Self {
        Self {
            addresses,
            ..Self::default()
        }
    }
    /// With these update-wide attributes.
    pub fn with_attributes(mut self, attributes: Attributes) -> Self {
        self.attributes = attributes;
        self
    }
    /// With a service config (or the error parsing it gave).
    pub fn with_service_config(
        mut self,
        config: Result<ServiceConfig, ServiceConfigError>,
    ) -> Self {
        self.service_config = Some(config);
        self
    }
}

/// A channel target split as the gRPC naming doc does: `scheme://authority/endpoint`.
/// A bare `host:port` is `dns:///host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUri {
    /// The scheme, lowercase (`dns`, `ipv4`, `consul`, ...).
    pub scheme: String,
    /// The authority between `//` and the next `/` (often empty).
    pub authority: String,
    /// The rest: what to resolve (`host:port`, a service name, a socket path, ...).
    pub endpoint: String,
    /// The target as given.
    pub(crate) text: String,
}

impl TargetUri {
    /// The target as given (`unix:///abs/path` keeps its path's leading `/` only here).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Splits `target` if it starts with a scheme (`[a-zA-Z][a-zA-Z0-9+.-]*:`); `None` for a
    /// bare `host:port`-like target.
    pub fn parse(target: &str) -> Option<Self> {
        let (scheme, rest) = target.split_once(':')?;
        let mut chars = scheme.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
            return None;
        }
        let (authority, endpoint) = match rest.strip_prefix("//") {
            Some(after) => match after.split_once('/') {
                Some((authority, endpoint)) => (authority, endpoint),
                None => (after, ""),
            },
            None => ("", rest),
        };
        Some(Self {
            scheme: scheme.to_ascii_lowercase(),
            authority: authority.to_string(),
            endpoint: endpoint.to_string(),
            text: target.to_string(),
        })
    }

    /// `target` as the channel resolves it: its own scheme when one of `schemes` (the
    /// registered ones) names it, else `dns` (a bare `host:port`, or a `host:port` whose host
    /// looks like a scheme).
    pub(crate) fn resolve_scheme(target: &str, known: impl Fn(&str) -> bool) -> Self {
        match Self::parse(target) {
            Some(uri) if known(&uri.scheme) => uri,
            _ => Self {
                scheme: "dns".to_string(),
                authority: String::new(),
                endpoint: target.to_string(),
                text: target.to_string(),
            },
        }
    }
}

/// Creates the resolver of a channel whose target has this builder's scheme.
pub trait ResolverBuilder: Send + Sync + 'static {
    /// The scheme it resolves (`consul`, `k8s`, ...), lowercase.
    fn scheme(&self) -> &str;
    /// Checks a target of this scheme when the channel is built; the error fails
    /// `ChannelBuilder::build`. Default: any target.
    fn check(&self, target: &TargetUri) -> Result<(), String> {
        let _ = target;
        Ok(())
    }
    /// The `:authority` calls carry by default. Default: the endpoint.
    fn default_authority(&self, target: &TargetUri) -> String {
        target.endpoint.trim_start_matches('/').to_string()
    }
    /// Starts resolving `target`, pushing updates (at once or later) through `handle`.
    fn build(&self, target: &TargetUri, handle: ResolverHandle) -> Box<dyn Resolver>;
}

/// A running resolver. Dropped when the channel no longer needs it.
pub trait Resolver: Send + Sync + 'static {
    /// A hint to resolve again soon (a connection failed or ended). Default: nothing.
    fn resolve_now(&self) {}
}

/// A resolver's way to its channel: push updates and errors, parse service configs. Cheap to
/// clone; it holds the channel weakly, and does nothing once the channel is gone or has
/// dropped the resolver.
#[derive(Clone)]
pub struct ResolverHandle {
    pub(crate) channel: Weak<ChannelInner>,
    /// Which resolver instance of the channel this is (a stale one's updates are ignored).
    pub(crate) generation: u64,
    pub(crate) runtime: RuntimeRef,
}

impl fmt::Debug for ResolverHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolverHandle")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl ResolverHandle {
    /// Replaces the channel's addresses (and maybe its service config) with `update`.
    pub fn update(&self, update: ResolverUpdate) {
        if let Some(inner) = self.channel.upgrade() {
            Channel { inner }.resolver_update(self.generation, update);
        }
    }
    /// Resolution failed (`status`, usually UNAVAILABLE): a channel with no usable address
    /// fails its calls with it; one with addresses keeps them.
    pub fn error(&self, status: Status) {
        if let Some(inner) = self.channel.upgrade() {
            Channel { inner }.resolver_error(self.generation, status);
        }
    }
    /// Parses a service config in JSON knowing the channel's registered policies.
    pub fn parse_service_config(&self, json: &str) -> Result<ServiceConfig, ServiceConfigError> {
        match self.channel.upgrade() {
            Some(inner) => ServiceConfig::parse_with(json, inner.policies()),
            None => ServiceConfig::parse(json),
        }
    }
    /// The channel's runtime (to spawn tasks, sleep, resolve names).
    pub fn runtime(&self) -> &RuntimeRef {
        &self.runtime
    }
    /// `true` while the channel still uses this resolver.
    pub fn is_current(&self) -> bool {
        self.channel
            .upgrade()
            .is_some_and(|inner| Channel { inner }.resolver_is_current(self.generation))
    }
    /// The channel's `resolve_interval` and reconnect backoff (for the dns resolver).
    pub(crate) fn timing(&self) -> (Option<Duration>, BackoffConfig) {
        self.channel
            .upgrade()
            .map_or((None, BackoffConfig::default()), |inner| {
                (inner.resolve_interval(), inner.options_backoff())
            })
    }
}

/// The resolvers a channel knows, by scheme: the built-ins, then those its builder added
/// (which replace a built-in of the same scheme).
#[derive(Clone)]
pub(crate) struct ResolverRegistry(HashMap<String, Arc<dyn ResolverBuilder>>);

impl fmt::Debug for ResolverRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut schemes: Vec<_> = self.0.keys().collect();
        schemes.sort();
        f.debug_tuple("ResolverRegistry").field(&schemes).finish()
    }
}

/// Resolvers registered for every channel of the process ([`register`]).
static GLOBAL_RESOLVERS: std::sync::RwLock<Vec<Arc<dyn ResolverBuilder>>> =
    std::sync::RwLock::new(Vec::new());

/// Registers `builder` for every channel built from now on in this process (gRPC's global
/// resolver registry: what a `consul` crate's `init` does); it replaces a built-in or an
/// earlier global resolver of the same scheme, and `ChannelBuilder::resolver` still
/// replaces it for one channel.
pub fn register(builder: impl ResolverBuilder) {
    GLOBAL_RESOLVERS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(Arc::new(builder));
}

impl Default for ResolverRegistry {
    /// The built-ins, then the process's registered resolvers.
    fn default() -> Self {
        let mut registry = Self(HashMap::new());
        registry.register(Arc::new(dns::DnsBuilder));
        for scheme in fixed::SCHEMES {
            registry.register(Arc::new(fixed::FixedBuilder(scheme)));
        }
        for builder in GLOBAL_RESOLVERS
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            registry.register(builder.clone());
        }
        registry
    }
}

impl ResolverRegistry {
    /// Adds `builder` under its scheme.
    pub(crate) fn register(&mut self, builder: Arc<dyn ResolverBuilder>) {
        self.0
            .insert(builder.scheme().to_ascii_lowercase(), builder);
    }
    /// The builder of `scheme`.
    pub(crate) fn get(&self, scheme: &str) -> Option<&Arc<dyn ResolverBuilder>> {
        self.0.get(scheme)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_scheme_authority_endpoint() {
        let uri = TargetUri::parse("consul://agent:8500/my-service").unwrap();
        assert_eq!(
            (&uri.scheme[..], &uri.authority[..], &uri.endpoint[..]),
            ("consul", "agent:8500", "my-service")
        );
        let uri = TargetUri::parse("K8S:///svc.ns:80").unwrap();
        assert_eq!((&uri.scheme[..], &uri.endpoint[..]), ("k8s", "svc.ns:80"));
        let uri = TargetUri::parse("unix:rel.sock").unwrap();
        assert_eq!((&uri.authority[..], &uri.endpoint[..]), ("", "rel.sock"));
        assert_eq!(TargetUri::parse("127.0.0.1:80"), None);
        assert_eq!(TargetUri::parse("[::1]:80"), None);
        assert_eq!(TargetUri::parse("svc"), None);
    }

    #[test]
    fn unknown_schemes_and_bare_names_go_to_dns() {
        let known = |s: &str| ["dns", "consul"].contains(&s);
        let uri = TargetUri::resolve_scheme("localhost:50051", known);
        assert_eq!(
            (&uri.scheme[..], &uri.endpoint[..]),
            ("dns", "localhost:50051")
        );
        let uri = TargetUri::resolve_scheme("consul:///svc", known);
        assert_eq!((&uri.scheme[..], &uri.endpoint[..]), ("consul", "svc"));
    }
}

//! Channels: a target, a lazily opened connection with reconnect backoff, the connectivity
//! state machine, and call start-up (fast path on a ready connection, a waiting task otherwise).

use std::borrow::Cow;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use anygrpc_core::{CallRequest, Config, Connection, EncodingSet, Metadata, Scheme, Side, Status};

use super::attempt::Attempt;
use super::backoff::BackoffConfig;
use super::balancer::Picked;
use super::balancer::subchannel::SubchannelTable;
use super::balancer::{Balancing, PolicyBuilder, PolicyChoice, PolicyRegistry};
use super::call::{CallCore, CallOptions};
use super::connector::{ConnectRequest, Connector, SharedConnector, dial};
use super::intercepted::{ClientInterceptors, append};
use super::kinds::{StreamStream, StreamUnary, UnaryStream, UnaryUnary};
use super::proxy::{HttpProxy, ProxyEnv, ProxySetting};
use super::resolver::{Address, ResolverBuilder, ResolverRegistry, TargetUri};
use super::retry::{self, Decision, Retries, Throttle};
use super::service_config::{
    LoadBalancingConfig, Reliability, RetryPolicy, ServiceConfig, ServiceConfigError,
};
use super::target::TargetError;
use crate::codec;
use crate::conn::handle::{Command, ConnHandle, Kick};
use crate::conn::io::Driver;
use crate::conn::policy::Urgency;
use crate::conn::replay::{ReplayBuffer, RetryBudget};
use crate::conn::slot::{AttemptEnd, CallSlot, Outcome, Resend};
use crate::interceptor::{
    AuthMetadataContext, CallCredentials, ClientInterceptor, StreamStreamClientInterceptor,
    StreamUnaryClientInterceptor, UnaryStreamClientInterceptor, UnaryUnaryClientInterceptor,
};
use crate::runtime::{BoxFuture, RuntimeRef, Transport};
use crate::stats::{CallEvent, CallInfo, CallRecorder, StatsHandler, StatsHandlers, StatsSide};
use crate::wakers::WakerSet;

/// A channel's connectivity state (gRPC connectivity-semantics-and-api.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Connectivity {
    /// No connection and no attempt in progress; the next call (or `state(true)`) connects.
    Idle,
    /// Connecting.
    Connecting,
    /// Connected; calls go out at once.
    Ready,
    /// The last attempt failed; waiting for the backoff before becoming Idle again.
    TransientFailure,
    /// The channel was closed.
    Shutdown,
}

/// How a channel spreads calls over the addresses its target resolves to: a built-in
/// policy, by the name it is registered under (a service config's `loadBalancingConfig`
/// takes precedence, and can also choose policies registered with
/// [`ChannelBuilder::balancing_policy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LoadBalancing {
    /// `pick_first`: one connection, to the first address that accepts (in resolution
    /// order); on failure the next attempt starts again from the top. The gRPC default.
    #[default]
    PickFirst,
    /// `round_robin`: one connection per address, calls spread over the ready ones in turn;
    /// a dead address leaves the rotation and returns once it reconnects.
    RoundRobin,
    /// `least_request` (gRFC A48) with its default `choiceCount` of 2: one connection per
    /// address; each call goes to the one with fewer calls in flight of two sampled.
    LeastRequest,
}

impl LoadBalancing {
    /// Its config, as a service config would give it.
    fn config(self) -> LoadBalancingConfig {
        match self {
            LoadBalancing::PickFirst => LoadBalancingConfig::PickFirst {
                shuffle_address_list: false,
            },
            LoadBalancing::RoundRobin => LoadBalancingConfig::RoundRobin,
            LoadBalancing::LeastRequest => LoadBalancingConfig::LeastRequest { choice_count: 2 },
        }
    }
}

/// Options of a channel, set through [`ChannelBuilder`].
#[derive(Debug, Clone)]
struct ChannelOptions {
    authority: Option<String>,
    config: Config,
    backoff: BackoffConfig,
    compression: Option<anygrpc_core::Compression>,
    balancing: LoadBalancing,
    /// The service config given to the builder (resolvers will supply theirs too).
    service_config: Option<Arc<ServiceConfig>>,
    /// The most request bytes one call keeps for a retry, and all the channel's calls.
    retry_buffer: RetryBufferLimits,
    /// Calls may be retried (transparently, or as their service config says).
    retries: bool,
    /// Connections a subchannel may open when the server's stream limit is reached (gRFC
    /// A105), unless the service config says; 1: no scaling.
    connections_per_subchannel: u32,
    idle_timeout: Option<Duration>,
    resolve_interval: Option<Duration>,
    /// The resolvers by scheme, built-ins first.
    resolvers: ResolverRegistry,
    /// The policies by name, built-ins first.
    policies: PolicyRegistry,
    interceptors: ClientInterceptors,
    stats: StatsHandlers,
    call_credentials: Option<Arc<dyn CallCredentials>>,
    /// Call credentials may travel over cleartext (tests, trusted networks).
    insecure_credentials: bool,
    #[cfg(feature = "tls")]
    credentials: Option<crate::tls::ChannelCredentials>,
    #[cfg(feature = "tls")]
    server_host_override: Option<String>,
    /// Opens the connections in place of the runtime.
    connector: Option<SharedConnector>,
    /// Whether and where an HTTP CONNECT proxy is looked up.
    proxy: ProxySetting,
}

impl fmt::Debug for dyn CallCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallCredentials")
    }
}

/// The most connections a service config may ask per subchannel (A105's cap), unless the
/// builder asked for more.
const MAX_CONNECTIONS_PER_SUBCHANNEL: u32 = 10;

impl ChannelOptions {
    /// Connections per subchannel under `config` (the builder's or the resolver's): its
    /// `connectionScaling` if it has one, capped at 10 (or at the builder's value, if higher);
    /// else the builder's.
    fn connections_per_subchannel(&self, config: Option<&ServiceConfig>) -> u32 {
        let cap = MAX_CONNECTIONS_PER_SUBCHANNEL.max(self.connections_per_subchannel);
        config
            .and_then(|config| config.max_connections_per_subchannel)
            .map_or(self.connections_per_subchannel, |max| max.min(cap))
    }
}

/// Builds a [`Channel`]: its target, then anything that differs from the defaults.
///
/// ```
/// use anygrpc::{BearerToken, Channel, LoadBalancing, RuntimeRef};
///
/// fn channel(runtime: RuntimeRef) -> anygrpc::Result<Channel> {
///     let channel = Channel::builder("ipv4:///10.0.0.1:50051,10.0.0.2:50051", runtime)
///         .load_balancing(LoadBalancing::RoundRobin)
///         .service_config(r#"{"methodConfig": [{"name": [{}], "timeout": "2s"}]}"#)?
///         .option("grpc.max_receive_message_length", 16 << 20)?
///         .call_credentials(BearerToken::new("s3cret"))
///         .allow_insecure_call_credentials(true)
///         .build()?;
///     Ok(channel)
/// }
/// ```
#[derive(Debug)]
pub struct ChannelBuilder {
    target: String,
    runtime: RuntimeRef,
    options: ChannelOptions,
}

impl ChannelBuilder {
    /// Overrides the `:authority` of every call (default: the target's host and port).
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.options.authority = Some(authority.into());
        self
    }
    /// The HTTP/2 and gRPC limits of the channel's connections.
    pub fn config(mut self, config: Config) -> Self {
        self.options.config = config;
        self
    }
    /// Largest response message accepted. Default 4 MiB.
    pub fn max_receive_message_length(mut self, bytes: usize) -> Self {
        self.options.config.max_recv_message_size = bytes;
        self
    }
    /// Largest request message sent. Default unlimited.
    pub fn max_send_message_length(mut self, bytes: usize) -> Self {
        self.options.config.max_send_message_size = bytes;
        self
    }
    /// Reconnect backoff.
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.options.backoff = backoff;
        self
    }
    /// Default compression of request messages: an [`Encoding`](crate::Encoding) at its
    /// default level, or a [`Compression`](crate::Compression) with a level.
    pub fn compression(mut self, compression: impl Into<anygrpc_core::Compression>) -> Self {
        self.options.compression = Some(compression.into());
        self
    }
    /// Keepalive PINGs after `interval` without traffic; the connection closes when one is not
    /// acknowledged within `timeout`.
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.options.config.keepalive_time = Some(interval);
        self.options.config.keepalive_timeout = timeout;
        self
    }
    /// After this long without a call, the channel closes its connection and goes Idle; the
    /// next call reconnects. Default 30 min (gRPC's default); `None` keeps it open.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.idle_timeout = timeout;
        self
    }
    /// Resolve a `dns:` target again this often (new addresses join, vanished ones leave).
    /// Connection failures also re-resolve, at most every 30 s. Default `None`.
    pub fn resolve_interval(mut self, interval: Duration) -> Self {
        self.options.resolve_interval = Some(interval);
        self
    }
    /// The channel's service config (gRFC A2), in gRPC's JSON form: per-method timeouts,
    /// wait-for-ready, message size limits, and the balancing policy, which takes precedence
    /// over [`load_balancing`](Self::load_balancing) as in C-core. An invalid config is
    /// rejected whole, the error naming the bad field. Its `loadBalancingConfig` may name the
    /// policies registered *before* this call (see [`balancing_policy`](Self::balancing_policy)).
    pub fn service_config(mut self, json: &str) -> Result<Self, ServiceConfigError> {
        let config = ServiceConfig::parse_with(json, &self.options.policies)?;
        self.options.service_config = Some(Arc::new(config));
        Ok(self)
    }
    /// How much of its request a call keeps to send again on a retry (gRFC A6): at most
    /// `per_call` bytes for one call and `per_channel` for all the channel's calls together
    /// (defaults 256 KiB and 16 MiB). A call that would keep more commits to the attempt
    /// under way and is not retried again, transparently or not.
    pub fn retry_buffer(mut self, per_call: usize, per_channel: usize) -> Self {
        self.options.retry_buffer = RetryBufferLimits {
            per_call,
            per_channel,
        };
        self
    }
    /// Turns retries off (`false`) or back on: no configured retry, and no transparent retry
    /// of a call the server never processed either (C-core's `grpc.enable_retries`). On by
    /// default.
    pub fn enable_retries(mut self, enable: bool) -> Self {
        self.options.retries = enable;
        self
    }
    /// The retry buffer's limits, per call and per channel.
    pub(super) fn retry_buffer_limits(&self) -> (usize, usize) {
        let limits = self.options.retry_buffer;
        (limits.per_call, limits.per_channel)
    }
    /// The keepalive interval (if on) and timeout.
    pub(super) fn keepalive_settings(&self) -> (Option<Duration>, Duration) {
        let config = &self.options.config;
        (config.keepalive_time, config.keepalive_timeout)
    }
    /// The keepalive timeout alone, for when the interval is set later.
    pub(super) fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.options.config.keepalive_timeout = timeout;
        self
    }
    /// Connection scaling (gRFC A105): when every connection of a subchannel is at the
    /// server's SETTINGS_MAX_CONCURRENT_STREAMS, it opens another to the same address, up to
    /// `max` in all, instead of queueing calls behind the limit; an extra connection closes
    /// again after 30 s without calls. Default 1 (no scaling, and no cost per call). A service
    /// config's `connectionScaling.maxConnectionsPerSubchannel` takes precedence, capped at
    /// 10 or at this value if it is higher.
    pub fn max_connections_per_subchannel(mut self, max: u32) -> Self {
        self.options.connections_per_subchannel = max.max(1);
        self
    }
    /// The load-balancing policy (default pick_first).
    pub fn load_balancing(mut self, policy: LoadBalancing) -> Self {
        self.options.balancing = policy;
        self
    }
    /// Registers a resolver for targets of its scheme (`consul:///svc`), replacing a
    /// built-in one of the same scheme (`dns`, `ipv4`, `ipv6`, `unix`).
    pub fn resolver(mut self, builder: impl ResolverBuilder) -> Self {
        self.options.resolvers.register(Arc::new(builder));
        self
    }
    /// Registers a balancing policy by its name, for service configs to choose (register it
    /// before giving the [`service_config`](Self::service_config) that names it). A policy
    /// named like a built-in replaces it.
    pub fn balancing_policy(mut self, builder: impl PolicyBuilder) -> Self {
        self.options.policies.register(Arc::new(builder));
        self
    }
    /// Keepalive PINGs also while no call is in progress (keepalive.md `permit_without_calls`).
    pub fn keepalive_permit_without_calls(mut self, permit: bool) -> Self {
        self.options.config.keepalive_permit_without_calls = permit;
        self
    }
    /// Adds an interceptor that edits the details and observes the end of every call, of
    /// every kind. Interceptors of a kind run in the order added, this one's place being
    /// where it was added among that kind's.
    pub fn interceptor(mut self, interceptor: impl ClientInterceptor) -> Self {
        self.options
            .interceptors
            .add_observing(Arc::new(interceptor));
        self
    }
    /// Adds an interceptor wrapping every unary call, after those added before.
    pub fn unary_unary_interceptor(
        mut self,
        interceptor: impl UnaryUnaryClientInterceptor,
    ) -> Self {
        self.options.interceptors.unary_unary = append(
            &self.options.interceptors.unary_unary,
            Arc::new(interceptor),
        );
        self
    }
    /// Adds an interceptor wrapping every server-streaming call, after those added before.
    pub fn unary_stream_interceptor(
        mut self,
        interceptor: impl UnaryStreamClientInterceptor,
    ) -> Self {
        self.options.interceptors.unary_stream = append(
            &self.options.interceptors.unary_stream,
            Arc::new(interceptor),
        );
        self
    }
    /// Adds an interceptor wrapping every client-streaming call, after those added before.
    pub fn stream_unary_interceptor(
        mut self,
        interceptor: impl StreamUnaryClientInterceptor,
    ) -> Self {
        self.options.interceptors.stream_unary = append(
            &self.options.interceptors.stream_unary,
            Arc::new(interceptor),
        );
        self
    }
    /// Adds an interceptor wrapping every bidi call, after those added before.
    pub fn stream_stream_interceptor(
        mut self,
        interceptor: impl StreamStreamClientInterceptor,
    ) -> Self {
        self.options.interceptors.stream_stream = append(
            &self.options.interceptors.stream_stream,
            Arc::new(interceptor),
        );
        self
    }
    /// Adds a stats handler: it sees every call's and connection's events (for metrics; see
    /// [`StatsHandler`]). Handlers see each event in the order they were added.
    pub fn stats_handler(mut self, handler: impl StatsHandler) -> Self {
        self.options.stats = self.options.stats.with(Arc::new(handler));
        self
    }
    /// Credentials whose metadata every call carries (sent only over TLS unless
    /// [`allow_insecure_call_credentials`](Self::allow_insecure_call_credentials)).
    pub fn call_credentials(mut self, credentials: impl CallCredentials) -> Self {
        self.options.call_credentials = Some(Arc::new(credentials));
        self
    }
    /// Lets call credentials travel over cleartext. Off by default: a call with credentials on
    /// a cleartext channel fails with UNAUTHENTICATED instead of leaking them.
    pub fn allow_insecure_call_credentials(mut self, allow: bool) -> Self {
        self.options.insecure_credentials = allow;
        self
    }
    /// Secures the channel's connections with TLS (calls use the `https` scheme). Without
    /// this the channel speaks cleartext h2c.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn credentials(mut self, credentials: crate::tls::ChannelCredentials) -> Self {
        self.options.credentials = Some(credentials);
        self
    }
    /// The name the server's certificate is verified against and sent as SNI, instead of the
    /// target's host; it becomes the default `:authority` too (grpc's
    /// `grpc.ssl_target_name_override`, for tests).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn server_host_override(mut self, name: impl Into<String>) -> Self {
        self.options.server_host_override = Some(name.into());
        self
    }
    /// Opens the channel's connections with `connector` instead of the runtime's dial: it is
    /// given each address to reach with the target's host name and the channel's authority
    /// ([`ConnectRequest`]), and returns the byte stream (TLS, if the channel has
    /// credentials, runs over it). A channel with its own connector does not read the
    /// environment's proxy settings; an [`http_proxy`](Self::http_proxy) given explicitly
    /// dials the proxy through the connector.
    pub fn connector(mut self, connector: impl Connector) -> Self {
        self.options.connector = Some(SharedConnector(Arc::new(connector)));
        self
    }
    /// Sends every TCP connection through `proxy` (HTTP CONNECT, gRFC A1) instead of the
    /// proxy the environment names, ignoring `no_proxy` (C-core's `grpc.http_proxy`).
    pub fn http_proxy(mut self, proxy: HttpProxy) -> Self {
        self.options.proxy.explicit = Some(proxy);
        self
    }
    /// Whether connections may go through an HTTP CONNECT proxy (default `true`; C-core's
    /// `grpc.enable_http_proxy`). When on, and no proxy is given, the proxy is the first
    /// set of the environment variables `grpc_proxy`, `https_proxy`, `http_proxy` (each
    /// lowercase, then uppercase), read when the channel is built; hosts that `no_grpc_proxy`
    /// or `no_proxy` list (names and their subdomains, `.suffixes`, IPs, CIDR blocks, `*`)
    /// are reached directly, and `unix:` targets always are. For a `dns` target the proxy's
    /// name is resolved instead of the target's, and CONNECT names the target's host and
    /// port as written; for other targets, it names each resolved address. A proxy URL
    /// that cannot be used fails the connection attempts (UNAVAILABLE, naming the
    /// variable) rather than bypassing the proxy.
    pub fn enable_http_proxy(mut self, enable: bool) -> Self {
        self.options.proxy.enabled = enable;
        self
    }
    /// Reads the proxy variables through `lookup` instead of the process environment (for
    /// tests, or settings kept elsewhere): it is asked for each variable by name, and
    /// `None` or an empty value means unset.
    pub fn proxy_env(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.options.proxy.env = ProxyEnv::custom(lookup);
        self
    }
    /// The channel. Nothing connects until the first call (or `state(true)`).
    pub fn build(self) -> Result<Channel, TargetError> {
        let resolvers = &self.options.resolvers;
        let uri = TargetUri::resolve_scheme(&self.target, |s| resolvers.get(s).is_some());
        if let Some(named) = TargetUri::parse(&self.target) {
            let has_authority = self.target[named.scheme.len() + 1..].starts_with("//");
            if uri.scheme != named.scheme && has_authority {
                return Err(TargetError(format!(
                    "{:?}: no resolver is registered for scheme {:?}",
                    self.target, named.scheme
                )));
            }
        }
        let resolver = resolvers
            .get(&uri.scheme)
            .cloned()
            .ok_or_else(|| TargetError(format!("{:?}: no dns resolver", self.target)))?;
        resolver.check(&uri).map_err(TargetError)?;
        let target_text = self.target;
        let authority = self.options.authority.clone();
        #[cfg(feature = "tls")]
        let authority = authority.or_else(|| self.options.server_host_override.clone());
        let authority = authority.unwrap_or_else(|| resolver.default_authority(&uri));
        let target_host = super::proxy::target_host(&uri).unwrap_or_else(|| authority.clone());
        let (uri, connector) =
            super::proxy::plan(uri, &self.options.proxy, self.options.connector.clone());
        // Jitter only needs to differ between channels, not to be unpredictable.
        static CHANNELS: std::sync::atomic::AtomicU64 =
            std::sync::atomic::AtomicU64::new(0x9e37_79b9);
        let seed = CHANNELS.fetch_add(0x2545_f491, std::sync::atomic::Ordering::Relaxed);
        let policies = &self.options.policies;
        let policy = self
            .options
            .service_config
            .as_ref()
            .and_then(|config| config.load_balancing.as_ref())
            .and_then(|config| PolicyChoice::of(config, policies))
            .or_else(|| PolicyChoice::of(&self.options.balancing.config(), policies))
            .ok_or_else(|| TargetError(format!("{target_text:?}: no balancing policy")))?;
        let mut table = SubchannelTable::new(self.options.backoff, seed);
        table.set_max_connections(
            self.options
                .connections_per_subchannel(self.options.service_config.as_deref()),
        );
        Ok(Channel {
            inner: Arc::new(ChannelInner {
                runtime: self.runtime,
                uri,
                resolver,
                policy,
                target_text,
                call_authority: Arc::from(authority.as_str()),
                authority,
                target_host,
                connector,
                config: Arc::new(self.options.config.clone()),
                options: self.options.clone(),
                retry_budget: RetryBudget::new(self.options.retry_buffer.per_channel),
                resolved_config: Mutex::new(None),
                resolved_config_set: std::sync::atomic::AtomicBool::new(false),
                throttle: self
                    .options
                    .service_config
                    .as_ref()
                    .and_then(|config| config.retry_throttling)
                    .map(|throttling| Arc::new(Throttle::new(throttling))),
                state: Mutex::new(ChannelState {
                    watched: Watched {
                        connectivity: Connectivity::Idle,
                        last_error: None,
                        waiters: WakerSet::default(),
                    },
                    balancing: Balancing::new(table, seed),
                }),
            }),
        })
    }
}

pub(crate) struct ChannelInner {
    pub(super) runtime: RuntimeRef,
    /// The target, split; its scheme chose `resolver`.
    pub(super) uri: TargetUri,
    pub(super) resolver: Arc<dyn ResolverBuilder>,
    /// The policy until a resolver's service config chooses another.
    pub(super) policy: PolicyChoice,
    /// The target as given, for stats handlers.
    target_text: String,
    authority: String,
    /// The same, shared by the calls' request heads (no copy per call).
    call_authority: Arc<str>,
    /// The target's `host:port` before resolution, for connectors (see [`ConnectRequest`]).
    target_host: String,
    /// Opens the connections in place of the runtime (the application's, or a proxy's).
    connector: Option<SharedConnector>,
    pub(super) config: Arc<Config>,
    options: ChannelOptions,
    /// The builder's service config's retry throttle, shared by the channel's calls.
    throttle: Option<Arc<Throttle>>,
    /// The bytes the channel's calls keep for retries together.
    retry_budget: Arc<RetryBudget>,
    /// The service config the resolver supplied last, which replaces the builder's for the
    /// calls' method configs and retry throttle (gRFC A2); `resolved_config_set` says whether
    /// to look.
    resolved_config: Mutex<Option<Arc<ResolvedConfig>>>,
    resolved_config_set: std::sync::atomic::AtomicBool,
    pub(super) state: Mutex<ChannelState>,
}

impl ChannelInner {
    /// The channel's authority (`host:port` of its target unless set), for logs.
    pub(super) fn authority(&self) -> &str {
        &self.authority
    }

    /// The resolver's service config becomes the calls' (`None`: back to the builder's),
    /// with a retry throttle of its own if it sets one.
    pub(super) fn set_resolved_config(&self, config: Option<ServiceConfig>) {
        let config = config.map(|config| {
            let throttle = config
                .retry_throttling
                .map(|throttling| Arc::new(Throttle::new(throttling)));
            Arc::new(ResolvedConfig { config, throttle })
        });
        let set = config.is_some();
        *self
            .resolved_config
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = config;
        self.resolved_config_set
            .store(set, std::sync::atomic::Ordering::Release);
    }

    /// The resolver's service config, if it supplied one (checked without a lock otherwise).
    fn resolved_config(&self) -> Option<Arc<ResolvedConfig>> {
        if !self
            .resolved_config_set
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return None;
        }
        self.resolved_config
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Connections per subchannel under the resolver's `config`, or (`None`) the builder's.
    pub(super) fn connections_per_subchannel(&self, config: Option<&ServiceConfig>) -> u32 {
        let config = config.or(self.options.service_config.as_deref());
        self.options.connections_per_subchannel(config)
    }

    pub(super) fn options_backoff(&self) -> BackoffConfig {
        self.options.backoff
    }

    pub(super) fn resolve_interval(&self) -> Option<Duration> {
        self.options.resolve_interval
    }

    pub(super) fn idle_timeout(&self) -> Option<Duration> {
        self.options.idle_timeout
    }

    /// The policies the channel knows by name.
    pub(super) fn policies(&self) -> &PolicyRegistry {
        &self.options.policies
    }
}

impl Drop for ChannelInner {
    /// The last `Channel` is gone: its connection shuts down gracefully (calls in flight finish).
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        let (_resolver, conns) = state.balancing.stop();
        for conn in conns {
            let _ = conn
                .enqueue([Command::Shutdown], Urgency::Control)
                .map(Kick::run);
        }
    }
}

/// A channel's state: what callers see and wait on, and its resolver's and policy's.
pub(super) struct ChannelState {
    pub(super) watched: Watched,
    pub(super) balancing: Balancing,
}

/// What a channel reports: its connectivity, why it last failed, who waits for a change.
#[derive(Debug)]
pub(super) struct Watched {
    pub(super) connectivity: Connectivity,
    pub(super) last_error: Option<Status>,
    pub(super) waiters: WakerSet,
}

impl Watched {
    /// Moves to `connectivity` (never out of Shutdown), waking who waits for a change.
    pub(super) fn set(&mut self, connectivity: Connectivity) {
        if self.connectivity != connectivity && self.connectivity != Connectivity::Shutdown {
            self.connectivity = connectivity;
            self.waiters.wake_all();
        }
    }

    /// Wakes who waits for a change (the policy has something new for them to pick).
    pub(super) fn wake_waiters(&mut self) {
        self.waiters.wake_all();
    }
}

/// A virtual connection to a target (grpc.aio's `Channel`): it resolves the target, opens
/// connections lazily (reopening them with backoff), and spreads calls over them as its
/// balancing policy says. Cheap to clone; every clone is the same channel.
///
/// ```
/// use std::time::Duration;
///
/// use anygrpc::{CallOptions, Channel, RuntimeRef};
///
/// async fn say(runtime: RuntimeRef) -> anygrpc::Result<String> {
///     let channel = Channel::builder("dns:///greeter.example.com:50051", runtime)
///         .idle_timeout(Some(Duration::from_secs(300)))
///         .build()?;
///     // Generated clients wrap these multi-callables; a method can also be named by hand.
///     let say = channel.unary_unary::<String, String>("/echo.Echo/Say");
///     let reply = say
///         .call_with("hi".to_string(), CallOptions::new().timeout(Duration::from_secs(1)))
///         .await?;
///     channel.close(None).await;
///     Ok(reply)
/// }
/// ```
#[derive(Clone)]
pub struct Channel {
    pub(super) inner: Arc<ChannelInner>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("target", &self.inner.target_text)
            .field("state", &self.lock().watched.connectivity)
            .finish()
    }
}

/// A call ready to go once its credentials gave their metadata.
struct Launch {
    path: Cow<'static, str>,
    options: CallOptions,
    compression: Option<anygrpc_core::Compression>,
    message: Option<codec::Encoded>,
    half_close: bool,
    deadline: Option<Instant>,
    throttle: Option<Arc<Throttle>>,
    /// The resolver's service config, where the call's method config (its retry or hedging
    /// policy) comes from (else the builder's).
    resolved: Option<Arc<ResolvedConfig>>,
}

/// What a call can do right now.
pub(super) enum Pick {
    Ready(Picked),
    Wait,
    Fail(Status),
}

impl Channel {
    /// A builder for a cleartext (h2c, prior knowledge) channel to `target` on `runtime`.
    pub fn builder(target: impl Into<String>, runtime: RuntimeRef) -> ChannelBuilder {
        ChannelBuilder {
            target: target.into(),
            runtime,
            options: ChannelOptions {
                authority: None,
                config: Config::client(),
                backoff: BackoffConfig::default(),
                compression: None,
                balancing: LoadBalancing::PickFirst,
                service_config: None,
                retry_buffer: RetryBufferLimits::default(),
                retries: true,
                connections_per_subchannel: 1,
                idle_timeout: Some(Duration::from_secs(30 * 60)),
                resolve_interval: None,
                resolvers: ResolverRegistry::default(),
                policies: PolicyRegistry::default(),
                interceptors: ClientInterceptors::default(),
                stats: StatsHandlers::default(),
                call_credentials: None,
                insecure_credentials: false,
                #[cfg(feature = "tls")]
                credentials: None,
                #[cfg(feature = "tls")]
                server_host_override: None,
                connector: None,
                proxy: ProxySetting::default(),
            },
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, ChannelState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The channel's runtime.
    pub(super) fn runtime(&self) -> RuntimeRef {
        self.inner.runtime.clone()
    }

    /// The channel's client interceptors, per call kind.
    pub(super) fn interceptors(&self) -> &ClientInterceptors {
        &self.inner.options.interceptors
    }

    /// A unary method.
    pub fn unary_unary<Req, Resp>(
        &self,
        path: impl Into<Cow<'static, str>>,
    ) -> UnaryUnary<Req, Resp> {
        UnaryUnary::new(self.clone(), path.into())
    }
    /// A server-streaming method.
    pub fn unary_stream<Req, Resp>(
        &self,
        path: impl Into<Cow<'static, str>>,
    ) -> UnaryStream<Req, Resp> {
        UnaryStream::new(self.clone(), path.into())
    }
    /// A client-streaming method.
    pub fn stream_unary<Req, Resp>(
        &self,
        path: impl Into<Cow<'static, str>>,
    ) -> StreamUnary<Req, Resp> {
        StreamUnary::new(self.clone(), path.into())
    }
    /// A bidi-streaming method.
    pub fn stream_stream<Req, Resp>(
        &self,
        path: impl Into<Cow<'static, str>>,
    ) -> StreamStream<Req, Resp> {
        StreamStream::new(self.clone(), path.into())
    }

    /// The connectivity state; with `try_to_connect`, an Idle channel starts connecting.
    pub fn state(&self, try_to_connect: bool) -> Connectivity {
        let state = self.lock();
        if try_to_connect && state.watched.connectivity == Connectivity::Idle {
            self.exit_idle(state);
            return self.lock().watched.connectivity;
        }
        state.watched.connectivity
    }

    /// Completes when the state differs from `last`, with the new state.
    pub async fn wait_for_state_change(&self, last: Connectivity) -> Connectivity {
        poll_fn(|cx| {
            let mut state = self.lock();
            if state.watched.connectivity != last {
                return Poll::Ready(state.watched.connectivity);
            }
            state.watched.waiters.register(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Connects if needed and completes once the channel is Ready (or Shutdown). Ready means
    /// one usable connection: with round_robin, the first backend up makes the channel
    /// Ready, and calls go to the ready ones while the others still connect.
    pub async fn channel_ready(&self) -> Connectivity {
        loop {
            let state = self.state(true);
            if matches!(state, Connectivity::Ready | Connectivity::Shutdown) {
                return state;
            }
            self.wait_for_state_change(state).await;
        }
    }

    /// Closes the channel: new calls fail at once; calls in flight get `grace` to finish
    /// (none: cancelled now), then the connection closes. Completes when it has.
    pub async fn close(&self, grace: Option<Duration>) {
        let (resolver, conns) = {
            let mut state = self.lock();
            state.watched.set(Connectivity::Shutdown);
            state.balancing.stop()
        };
        drop(resolver);
        if conns.is_empty() {
            return;
        }
        crate::conn::drain::drain(&conns, &self.inner.runtime, grace).await;
    }

    /// Starts a call: the request head (and, for unary requests, the message and half-close)
    /// go to the connection in one step when it is ready; otherwise a task waits for it.
    /// `single_response`: the call takes exactly one response message (unary and
    /// client-streaming calls), any other number is INTERNAL.
    #[allow(
        clippy::ptr_arg,
        reason = "the path is cloned into the request head: a static one stays borrowed, uncopied"
    )]
    pub(crate) fn start_call<Req, C: crate::codec::Codec<Req>>(
        &self,
        called: &Cow<'static, str>,
        mut options: CallOptions,
        first: Option<(&C, &Req)>,
        half_close: bool,
        single_response: bool,
    ) -> CallCore {
        let path: &str = called;
        let runtime = &self.inner.runtime;
        let slot = CallSlot::new();
        {
            let mut state = slot.lock();
            state.single_response = single_response;
            state.span = crate::trace::CallSpan::client(path, &self.inner.authority);
        }
        let stats = self.inner.options.stats.call_started(&CallInfo {
            side: StatsSide::Client,
            method: path,
            target: &self.inner.target_text,
            peer: "",
            started: std::time::Instant::now(),
        });
        if let Some(stats) = &stats {
            slot.record_the_end(stats);
        }
        let (mut max_recv, mut max_send) = (
            self.inner.config.max_recv_message_size,
            self.inner.config.max_send_message_size,
        );
        // The method's service config (the resolver's, else the builder's), looked up by
        // the path as called.
        let resolved = self.inner.resolved_config();
        let throttle = match &resolved {
            Some(resolved) => resolved.throttle.clone(),
            None => self.inner.throttle.clone(),
        };
        let method = resolved
            .as_deref()
            .map(|resolved| &resolved.config)
            .or(self.inner.options.service_config.as_deref())
            .and_then(|config| config.method_config(path));
        if let Some(method) = method {
            options.timeout = match (options.timeout, method.timeout) {
                (Some(call), Some(config)) => Some(call.min(config)),
                (call, config) => call.or(config),
            };
            options.wait_for_ready = options.wait_for_ready.or(method.wait_for_ready);
            max_send = method
                .max_request_message_bytes
                .map_or(max_send, |m| m.min(max_send));
            max_recv = method
                .max_response_message_bytes
                .map_or(max_recv, |m| m.min(max_recv));
        }
        let now = runtime.now();
        let deadline = options.timeout.and_then(|t| now.checked_add(t));
        let compression = options.compression.or(self.inner.options.compression);
        let core = CallCore {
            slot: slot.clone(),
            runtime: runtime.clone(),
            deadline,
            max_recv,
            max_send,
            compression,
            stats,
        };
        let fail = |status| {
            slot.finish(Outcome {
                status,
                trailers: Metadata::new(),
                unprocessed: false,
                from_attempt: false,
            })
        };
        let encoded = first.map(|(c, m)| codec::encode(c, m, compression, max_send));
        let message = match encoded {
            None => None,
            Some(Ok(encoded)) => Some(encoded),
            Some(Err(status)) => {
                fail(status);
                return core;
            }
        };
        let launch = Launch {
            path: called.clone(),
            options,
            compression,
            message,
            half_close,
            deadline,
            throttle,
            resolved,
        };
        match self.credentials(path, &launch.options) {
            Err(status) => fail(status),
            Ok(None) => self.launch(&core, launch, Metadata::new()),
            Ok(Some(mut metadata)) => {
                // A provider that answers at once costs no task (most do: fixed tokens,
                // cached ones).
                let mut cx = std::task::Context::from_waker(Waker::noop());
                match metadata.as_mut().poll(&mut cx) {
                    Poll::Ready(Ok(metadata)) => self.launch(&core, launch, metadata),
                    Poll::Ready(Err(status)) => fail(status),
                    Poll::Pending => self.launch_later(&core, launch, metadata),
                }
            }
        }
        core
    }

    /// The metadata future of the call credentials of a call to `path`, if it has any; an
    /// `Err` when they must not be sent (a cleartext channel that does not allow them).
    fn credentials(
        &self,
        path: &str,
        options: &CallOptions,
    ) -> Result<Option<BoxFuture<'static, Result<Metadata, Status>>>, Status> {
        let channel = &self.inner.options;
        let Some(credentials) = options
            .credentials
            .clone()
            .or_else(|| channel.call_credentials.clone())
        else {
            return Ok(None);
        };
        if self.scheme() == Scheme::Http && !channel.insecure_credentials {
            return Err(Status::new(
                anygrpc_core::Code::Unauthenticated,
                "call credentials need a TLS channel (or allow_insecure_call_credentials)",
            ));
        }
        let scheme = match self.scheme() {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let authority = options
            .authority
            .as_deref()
            .unwrap_or(&self.inner.authority);
        let context = AuthMetadataContext::new(scheme, authority, path);
        // The provider's code, and the future it makes: a panic in either fails the call.
        let future = Box::pin(async move {
            crate::user_code::guarded_future(
                || credentials.metadata(&context),
                || Err(Status::internal("the call credentials panicked")),
            )
            .await
        });
        Ok(Some(future))
    }

    /// Waits (in a task) for the call credentials' metadata, then launches the call; the
    /// call's cancel or deadline ends the wait. What the application writes meanwhile waits
    /// in the call's slot.
    fn launch_later(
        &self,
        core: &CallCore,
        launch: Launch,
        metadata: BoxFuture<'static, Result<Metadata, Status>>,
    ) {
        let (channel, core) = (self.clone(), core.clone());
        let mut sleep = core.deadline.map(|d| core.runtime.sleep_until(d));
        let mut metadata = Some(metadata);
        let task = async move {
            let got = poll_fn(|cx| {
                if core
                    .slot
                    .poll_with(cx, |s| s.outcome.as_ref().map(|_| ()))
                    .is_ready()
                {
                    return Poll::Ready(None);
                }
                if let Some(sleep) = sleep.as_mut() {
                    if sleep.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Some(Err(Status::deadline_exceeded(
                            "deadline exceeded while fetching call credentials",
                        ))));
                    }
                }
                match metadata.as_mut().map(|m| m.as_mut().poll(cx)) {
                    Some(Poll::Ready(got)) => Poll::Ready(Some(got)),
                    _ => Poll::Pending,
                }
            })
            .await;
            // The provider's future goes before the call does.
            drop(metadata);
            match got {
                None => {}
                Some(Ok(metadata)) => channel.launch(&core, launch, metadata),
                Some(Err(status)) => {
                    core.slot.finish(Outcome {
                        status,
                        trailers: Metadata::new(),
                        unprocessed: false,
                        from_attempt: false,
                    });
                }
            }
        };
        self.inner.runtime.spawn(Box::pin(task));
    }

    /// Sends the first attempt of a call whose credentials (if any) gave `extra` metadata:
    /// at once on a ready connection, else through a task that waits for one; hedged,
    /// retried or plain as the method's config says.
    fn launch(&self, core: &CallCore, launch: Launch, extra: Metadata) {
        let Launch {
            path,
            mut options,
            compression,
            message,
            half_close,
            deadline,
            throttle,
            resolved,
        } = launch;
        let slot = &core.slot;
        for (key, value) in extra.iter() {
            if let Err(e) = options.metadata.append_value(key.clone(), value.clone()) {
                slot.finish(Outcome {
                    status: Status::internal(format!("bad credentials metadata: {e}")),
                    trailers: Metadata::new(),
                    unprocessed: false,
                    from_attempt: false,
                });
                return;
            }
        }
        let reliability = resolved
            .as_deref()
            .map(|resolved| &resolved.config)
            .or(self.inner.options.service_config.as_deref())
            .and_then(|config| config.method_config(&path))
            .and_then(|method| method.reliability.as_ref());
        let request = Arc::new(CallRequest {
            path,
            authority: options
                .authority
                .map_or_else(|| self.inner.call_authority.clone(), Arc::from),
            scheme: self.scheme(),
            timeout: options.timeout,
            metadata: options.metadata,
            encoding: compression.map(|c| c.encoding),
            accept_encoding: EncodingSet::supported(),
        });
        let attempt = Attempt {
            request,
            message: message.clone().map(codec::Encoded::wire),
            replayed: Vec::new(),
            half_close,
            wait_for_ready: options.wait_for_ready.unwrap_or(false),
            deadline,
        };
        if let Some(stats) = &core.stats {
            stats.record(&CallEvent::AttemptStarted {
                transparent_retry: false,
            });
            stats.record(&CallEvent::HeadersSent {
                metadata: &attempt.request.metadata,
            });
            if let Some(encoded) = &message {
                core.sent(encoded);
            }
            slot.lock().stats = Some(stats.clone());
        }
        let slot = slot.clone();
        match reliability {
            Some(Reliability::Hedging(policy))
                if self.inner.options.retries && self.prepare_hedging(&slot, &attempt) =>
            {
                self.start_hedged(slot, attempt, policy, throttle, core.stats.clone());
            }
            reliability => {
                let policy = match reliability {
                    Some(Reliability::Retry(policy)) => Some(policy),
                    _ => None,
                };
                self.arm_retries(&slot, &attempt, policy, throttle, core.stats.clone());
                self.submit(slot, attempt);
            }
        }
    }

    /// Sends an attempt of the call of `slot`: binds it to a ready connection, or hands it to
    /// a task that waits for one.
    pub(super) fn submit(&self, slot: Arc<CallSlot>, attempt: Attempt) {
        let (wait_for_ready, deadline) = (attempt.wait_for_ready, attempt.deadline);
        let commands = attempt.into_commands(&slot);
        match self.pick(wait_for_ready, None) {
            Pick::Ready(picked) => {
                if let Err(commands) = bind(&slot, &picked, commands) {
                    requeue(&slot, commands);
                    self.spawn_acquire(slot, wait_for_ready, deadline);
                }
            }
            Pick::Fail(status) => slot.finish(Outcome {
                status,
                trailers: Metadata::new(),
                unprocessed: false,
                from_attempt: true,
            }),
            Pick::Wait => {
                requeue(&slot, commands.collect());
                self.spawn_acquire(slot, wait_for_ready, deadline);
            }
        }
    }

    /// Arms the retries of a call, of any kind:
    ///
    /// - transparent retry (gRFC A6): an attempt the server never processed (refused, above a
    ///   GOAWAY's last stream id, or its connection died before it was sent) is sent again,
    ///   once, at once, on whatever connection the channel picks next;
    /// - the method's `retryPolicy`, if it has one: an attempt that failed with a retryable
    ///   code is sent again after a backoff (or the server's pushback), with
    ///   `grpc-previous-rpc-attempts`, while attempts, the throttle and the deadline allow.
    ///
    /// Either only while the call is not committed: the response head has not arrived and
    /// what the application wrote fits the retry buffer (`conn::replay`), which keeps it to
    /// be sent again.
    fn arm_retries(
        &self,
        slot: &Arc<CallSlot>,
        attempt: &Attempt,
        policy: Option<&RetryPolicy>,
        throttle: Option<Arc<Throttle>>,
        stats: Option<CallRecorder>,
    ) {
        if !self.inner.options.retries {
            return;
        }
        let Some(replay) = self.replay_buffer(attempt) else {
            // Committed from the start: nothing to retry with.
            return;
        };
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut retries = policy.map(|policy| {
            let seed = CALLS.fetch_add(0x9e37_79b9, std::sync::atomic::Ordering::Relaxed);
            Retries::new(policy, seed)
        });
        let mut transparent_left = true;
        // The request head and first message; the rest is in the slot's replay buffer.
        let first = attempt.clone();
        // Weak both: the hook lives in the slot, which must not keep itself or the channel.
        let channel = Arc::downgrade(&self.inner);
        let weak_slot = Arc::downgrade(slot);
        let mut state = slot.lock();
        state.replay = Some(replay);
        state.retry = Some(Box::new(move |end: AttemptEnd<'_>| {
            let transparent = end.outcome.unprocessed && transparent_left && !end.committed;
            if !transparent && retries.is_none() {
                // Most calls: nothing to decide.
                return None;
            }
            let delay = if transparent {
                transparent_left = false;
                None
            } else {
                // Decided (and counted by the throttle) even for a committed call.
                let decision = retries.as_mut()?.decide(
                    &end.outcome.status,
                    &end.outcome.trailers,
                    throttle.as_deref(),
                );
                let Decision::RetryAfter(delay) = decision else {
                    return None;
                };
                Some(delay)
            };
            let replay = end.replay.filter(|_| !end.committed)?;
            let mut attempt = first.clone();
            attempt.replayed = replay.messages().to_vec();
            attempt.half_close = replay.half_closed();
            if delay.is_some() {
                let previous = retries.as_ref().map_or(1, Retries::attempts) - 1;
                // The one copy of the request head, for the attempt that differs.
                Arc::make_mut(&mut attempt.request)
                    .metadata
                    .insert(retry::PREVIOUS_ATTEMPTS, &previous.to_string())
                    .ok()?;
            }
            let next = Next {
                attempt,
                delay,
                transparent,
            };
            let replayed = u64::from(next.attempt.message.is_some())
                + u64::try_from(next.attempt.replayed.len()).unwrap_or(u64::MAX);
            let (channel, weak_slot, stats) = (channel.clone(), weak_slot.clone(), stats.clone());
            let ended = end.outcome.clone();
            Some(Resend {
                replayed,
                send: Box::new(move || {
                    let Some(slot) = weak_slot.upgrade() else {
                        return;
                    };
                    match channel.upgrade() {
                        Some(inner) => Channel { inner }.send_next(slot, next, stats),
                        // The channel is gone: the call ends as its attempt did.
                        None => slot.finish(Outcome {
                            from_attempt: false,
                            unprocessed: false,
                            ..ended
                        }),
                    }
                }),
            })
        }));
    }

    /// The retry buffer of a call whose first attempt is `attempt`, within the channel's
    /// limits; `None` when even that does not fit (the call is committed from the start).
    fn replay_buffer(&self, attempt: &Attempt) -> Option<ReplayBuffer> {
        let limits = self.inner.options.retry_buffer;
        let first_bytes = attempt.message.as_ref().map_or(0, |(m, _)| m.len());
        ReplayBuffer::new(
            first_bytes,
            attempt.half_close,
            limits.per_call,
            self.inner.retry_budget.clone(),
        )
    }

    /// Readies the call of `slot` for hedging: a request known whole at the start needs
    /// nothing; one that streams keeps what the application writes (`conn::replay`), for the
    /// hedging task to forward; `false` when that does not even fit at the start (the call
    /// then goes out as one attempt).
    fn prepare_hedging(&self, slot: &CallSlot, attempt: &Attempt) -> bool {
        if attempt.message.is_some() && attempt.half_close {
            return true;
        }
        let Some(replay) = self.replay_buffer(attempt) else {
            return false;
        };
        let mut state = slot.lock();
        state.replay = Some(replay);
        state.fans_out = true;
        true
    }

    /// Sends the next attempt of the call of `slot`: at once, or after its backoff unless
    /// the call's deadline comes first (then it ends DEADLINE_EXCEEDED).
    fn send_next(self, slot: Arc<CallSlot>, mut next: Next, stats: Option<CallRecorder>) {
        let transparent_retry = next.transparent;
        let record = move || {
            if let Some(stats) = &stats {
                stats.record(&CallEvent::AttemptStarted { transparent_retry });
            }
        };
        // The attempt gets what is left of the call's deadline, not the whole timeout again.
        let left = |attempt: &mut Attempt, now: Instant| {
            if let Some(deadline) = attempt.deadline {
                Arc::make_mut(&mut attempt.request).timeout =
                    Some(deadline.saturating_duration_since(now));
            }
        };
        let Some(delay) = next.delay else {
            record();
            left(&mut next.attempt, self.inner.runtime.now());
            self.submit(slot, next.attempt);
            return;
        };
        let runtime = self.inner.runtime.clone();
        let wake_at = runtime.now() + delay;
        let deadline = next.attempt.deadline;
        let at = deadline.map_or(wake_at, |d| d.min(wake_at));
        let mut sleep = runtime.sleep_until(at);
        runtime.spawn(Box::pin(async move {
            // A call cancelled during its backoff lets go of the task (and the channel) then,
            // not when the backoff (maybe a long pushback) is over.
            let ended = poll_fn(|cx| {
                if slot
                    .poll_with(cx, |s| s.outcome.as_ref().map(|_| ()))
                    .is_ready()
                {
                    return Poll::Ready(true);
                }
                sleep.as_mut().poll(cx).map(|()| false)
            })
            .await;
            if ended {
                return;
            }
            if at < wake_at {
                slot.finish(Outcome {
                    status: Status::deadline_exceeded("deadline exceeded while waiting to retry"),
                    trailers: Metadata::new(),
                    unprocessed: false,
                    from_attempt: false,
                });
                return;
            }
            record();
            left(&mut next.attempt, self.inner.runtime.now());
            self.submit(slot, next.attempt);
        }));
    }

    /// Waits (in a task) for a usable connection or the deadline, then binds the call.
    fn spawn_acquire(&self, slot: Arc<CallSlot>, wait_for_ready: bool, deadline: Option<Instant>) {
        let channel = self.clone();
        let runtime = self.inner.runtime.clone();
        let mut sleep = deadline.map(|d| runtime.sleep_until(d));
        let task = async move {
            poll_fn(|cx| {
                if slot
                    .poll_with(cx, |s| s.outcome.as_ref().map(|_| ()))
                    .is_ready()
                {
                    return Poll::Ready(());
                }
                if let Some(sleep) = sleep.as_mut() {
                    if sleep.as_mut().poll(cx).is_ready() {
                        let status = Status::deadline_exceeded(
                            "deadline exceeded while waiting for a connection",
                        );
                        slot.finish(Outcome {
                            status,
                            trailers: Metadata::new(),
                            unprocessed: false,
                            from_attempt: false,
                        });
                        return Poll::Ready(());
                    }
                }
                match channel.pick(wait_for_ready, Some(cx.waker())) {
                    Pick::Wait => Poll::Pending,
                    Pick::Fail(status) => {
                        slot.finish(Outcome {
                            status,
                            trailers: Metadata::new(),
                            unprocessed: false,
                            from_attempt: true,
                        });
                        Poll::Ready(())
                    }
                    Pick::Ready(picked) => {
                        let commands = std::mem::take(&mut slot.lock().unbound);
                        match bind(&slot, &picked, commands) {
                            Ok(()) => Poll::Ready(()),
                            Err(commands) => {
                                // The connection died in between: wait for the next one.
                                requeue(&slot, commands);
                                cx.waker().wake_by_ref();
                                Poll::Pending
                            }
                        }
                    }
                }
            })
            .await;
        };
        self.inner.runtime.spawn(Box::pin(task));
    }

    /// Chooses a connection for a call, as the channel's policy says (starting connections
    /// if needed); a `waker` to wake when it should ask again.
    fn pick(&self, wait_for_ready: bool, waker: Option<&Waker>) -> Pick {
        let (pick, mut state) = self.pick_balanced(wait_for_ready, waker, self.lock());
        if let (Pick::Wait, Some(waker)) = (&pick, waker) {
            state.watched.waiters.register(waker);
        }
        self.release(state);
        pick
    }

    /// `https` when the channel has TLS credentials.
    fn scheme(&self) -> Scheme {
        #[cfg(feature = "tls")]
        if self.inner.options.credentials.is_some() {
            return Scheme::Https;
        }
        Scheme::Http
    }

    /// `connect`, then the TLS handshake when the channel has credentials: both run under
    /// the connect timeout, and a handshake failure fails the attempt like a refused connect.
    pub(super) fn secured(
        &self,
        connect: BoxFuture<'static, io::Result<Box<dyn Transport>>>,
    ) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
        #[cfg(feature = "tls")]
        if let Some(credentials) = self.inner.options.credentials.clone() {
            let options = &self.inner.options;
            let name = options.server_host_override.as_deref().map_or_else(
                || crate::tls::server_name_of(&self.inner.authority),
                crate::tls::server_name_of,
            );
            return Box::pin(async move {
                let name = name.map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                crate::tls::connect(connect.await?, &credentials, name).await
            });
        }
        connect
    }

    /// Opens one connection (the only place that does): connects to `address` (through the
    /// channel's connector if it has one), runs the TLS handshake when the channel has
    /// credentials, both under `timeout`, then spawns the connection's driver.
    pub(super) async fn open(
        &self,
        address: Arc<Address>,
        timeout: Duration,
    ) -> io::Result<Arc<ConnHandle>> {
        let runtime = &self.inner.runtime;
        let connect = match &self.inner.connector {
            Some(connector) => connect_guarded(
                connector,
                ConnectRequest {
                    address: Address::clone(&address),
                    target_host: self.inner.target_host.clone(),
                    authority: self.inner.authority.clone(),
                    runtime: runtime.clone(),
                },
            ),
            None => dial(runtime, &address.endpoint),
        };
        let io = with_timeout(runtime, self.secured(connect), timeout).await?;
        let conn = Connection::new(Side::Client, self.inner.config.clone(), runtime.now());
        let (driver, shared) = Driver::start(
            conn,
            io,
            runtime.clone(),
            None,
            self.inner.options.stats.clone(),
        );
        runtime.spawn(Box::pin(driver));
        Ok(shared)
    }
}

/// `connector`'s connection: a panic in it (or in its future) fails this attempt only.
fn connect_guarded(
    connector: &SharedConnector,
    request: ConnectRequest,
) -> BoxFuture<'static, io::Result<Box<dyn Transport>>> {
    use futures_util::FutureExt;
    let panicked = || io::Error::other("the channel's connector panicked");
    let connector = std::panic::AssertUnwindSafe(|| connector.0.connect(request));
    match std::panic::catch_unwind(connector) {
        Ok(connect) => Box::pin(
            std::panic::AssertUnwindSafe(connect)
                .catch_unwind()
                .map(move |result| result.unwrap_or_else(|_| Err(panicked()))),
        ),
        Err(_) => Box::pin(std::future::ready(Err(panicked()))),
    }
}

/// Keeps an unbound call's `commands` for the connection it will get, ahead of what the
/// application queued meanwhile (writes during a wait for a connection or a backoff).
fn requeue(slot: &CallSlot, mut commands: Vec<Command>) {
    let mut state = slot.lock();
    commands.append(&mut state.unbound);
    state.unbound = commands;
}

/// Binds a call to its picked connection and hands it its commands; gives them back if the
/// connection closed meanwhile. A stream claimed for it is given back if it will not start.
fn bind(
    slot: &Arc<CallSlot>,
    picked: &Picked,
    commands: impl IntoIterator<Item = Command>,
) -> Result<(), Vec<Command>> {
    let conn = &picked.conn;
    let mut state = slot.lock();
    if state.outcome.is_some() {
        drop(state);
        if picked.claimed {
            conn.release_claim();
        }
        return Ok(());
    }
    // What the application queued meanwhile goes after the attempt's own commands.
    let unbound = std::mem::take(&mut state.unbound);
    state.claimed = picked.claimed;
    match conn.enqueue(commands.into_iter().chain(unbound), Urgency::Open) {
        Ok(kick) => {
            state.conn = Some(conn.clone());
            drop(state);
            kick.run();
            Ok(())
        }
        Err(commands) => {
            state.claimed = false;
            drop(state);
            if picked.claimed {
                conn.release_claim();
            }
            Err(commands)
        }
    }
}

/// A service config a resolver supplied, with its retry throttle.
#[derive(Debug)]
struct ResolvedConfig {
    config: ServiceConfig,
    throttle: Option<Arc<Throttle>>,
}

/// The retry buffer's limits (see [`ChannelBuilder::retry_buffer`]).
#[derive(Debug, Clone, Copy)]
struct RetryBufferLimits {
    per_call: usize,
    per_channel: usize,
}

impl Default for RetryBufferLimits {
    /// gRFC A6's defaults.
    fn default() -> Self {
        Self {
            per_call: retry::PER_CALL_BUFFER,
            per_channel: retry::PER_CHANNEL_BUFFER,
        }
    }
}

/// A call's next attempt, as its retry hook chose it.
struct Next {
    attempt: Attempt,
    /// The backoff before it; `None`: at once (a transparent retry).
    delay: Option<Duration>,
    transparent: bool,
}

/// Runs `fut` with a deadline `timeout` from now.
pub(super) async fn with_timeout<T>(
    runtime: &RuntimeRef,
    fut: BoxFuture<'static, io::Result<T>>,
    timeout: Duration,
) -> io::Result<T> {
    let mut fut = fut;
    let mut sleep = runtime.sleep_until(runtime.now() + timeout);
    poll_fn(|cx| {
        if let Poll::Ready(result) = fut.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        match Pin::new(&mut sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connect timed out",
            ))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

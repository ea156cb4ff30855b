//! Balancing policies (grpc-go's `balancer` package, C-core's LB policies): a [`Policy`]
//! is told the resolver's addresses and its subchannels' connectivity, asks the channel
//! (through [`PolicyChannel`]) to create, connect and drop subchannels, reports the channel's
//! aggregated connectivity, and answers every call's [`pick`](Policy::pick).
//!
//! The channel owns the subchannels and their connections (`subchannel.rs`): a policy holds
//! only [`Subchannel`] handles. Every policy method runs under the channel's lock, briefly and
//! synchronously: no I/O, no waiting, no call back into the channel except through the
//! `PolicyChannel` it is given. `pick` runs on the path of every call: the built-in policies
//! do not allocate in it.
//!
//! Built in: `pick_first` (the default; gRFC A62's shuffle), `round_robin`, and
//! `least_request` (gRFC A48, also as `least_request_experimental`). Others are registered by
//! name with `ChannelBuilder::balancing_policy` and chosen by the service config's
//! `loadBalancingConfig`.

mod control;
mod least_request;
mod pick_first;
mod round_robin;
mod spread;
pub(crate) mod subchannel;

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anygrpc_core::Status;

use super::channel::{Channel, Connectivity, Watched};
use super::resolver::{Address, Attributes};
use subchannel::SubchannelTable;

pub(crate) use control::{Balancing, PolicyChoice};
pub(in crate::client) use subchannel::Picked;

/// A policy's handle on one subchannel: a connection (later, several) to one address, owned
/// by the channel. Cheap to clone; equal when it is the same subchannel.
#[derive(Clone)]
pub struct Subchannel {
    id: u64,
    address: Arc<Address>,
}

impl Subchannel {
    /// The address it connects to.
    pub fn address(&self) -> &Address {
        &self.address
    }
}

impl PartialEq for Subchannel {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Subchannel {}

impl std::hash::Hash for Subchannel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl fmt::Debug for Subchannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subchannel({} {})", self.id, self.address.endpoint)
    }
}

/// What a policy answers for one call.
#[derive(Debug)]
pub enum PickResult {
    /// Send it on this subchannel (which must be Ready; if its connection just ended the
    /// channel tells the policy and asks again).
    Ready(Subchannel),
    /// Not yet: the call waits until the policy reports a state (or the call's deadline).
    Wait,
    /// Fail the call with this status (a wait-for-ready call waits instead).
    Fail(Status),
}

/// What a pick knows of the call and of the subchannels.
#[derive(Debug)]
pub struct PickInfo<'a> {
    wait_for_ready: bool,
    table: &'a SubchannelTable,
}

impl PickInfo<'_> {
    /// The call waits for a ready subchannel instead of failing fast.
    pub fn wait_for_ready(&self) -> bool {
        self.wait_for_ready
    }
    /// Calls in flight on `subchannel`: started and not ended, those picked but not yet
    /// started on its connection included. 0 for an unknown or unconnected subchannel.
    pub fn outstanding_calls(&self, subchannel: &Subchannel) -> usize {
        self.table.outstanding(subchannel)
    }
    /// The connectivity of `subchannel` (Shutdown once removed).
    pub fn state(&self, subchannel: &Subchannel) -> Connectivity {
        self.table.state(subchannel)
    }
}

/// What the resolver sent, as a policy receives it.
#[derive(Debug)]
#[non_exhaustive]
pub struct PolicyUpdate<'a> {
    /// Every address, in the resolver's order (it replaces the previous list).
    pub addresses: &'a [Address],
    /// The update's attributes.
    pub attributes: &'a Attributes,
    /// The policy's config from the service config (empty when it gave none).
    pub config: &'a PolicyConfig,
}

/// A policy's config as its builder's [`parse_config`](PolicyBuilder::parse_config) made
/// it; the policy reads it back with [`get`](Self::get). Built-in policies get their
/// [`LoadBalancingConfig`](super::LoadBalancingConfig). Equal when it is the same value.
#[derive(Clone, Default)]
pub struct PolicyConfig(Option<Arc<dyn Any + Send + Sync>>);

impl PolicyConfig {
    /// Wraps `config`.
    pub fn new<T: Any + Send + Sync>(config: T) -> Self {
        Self(Some(Arc::new(config)))
    }
    /// The config, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_deref().and_then(|c| c.downcast_ref())
    }
}

impl fmt::Debug for PolicyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "PolicyConfig(..)"
        } else {
            "PolicyConfig(none)"
        })
    }
}

impl PartialEq for PolicyConfig {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for PolicyConfig {}

/// What a policy is built with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PolicyArgs {
    /// A seed for the policy's random choices, different for each channel.
    pub seed: u64,
}

/// Creates a balancing policy; registered by [`name`](Self::name).
pub trait PolicyBuilder: Send + Sync + 'static {
    /// The name service configs select it by (`"my_policy"`).
    fn name(&self) -> &str;
    /// Checks and parses its `loadBalancingConfig` object (as JSON text); the error names
    /// what is wrong and rejects the service config. Default: any object, no config.
    fn parse_config(&self, json: &str) -> Result<PolicyConfig, String> {
        let _ = json;
        Ok(PolicyConfig::default())
    }
    /// A new policy for one channel.
    fn build(&self, args: PolicyArgs) -> Box<dyn Policy>;
}

/// A balancing policy: owns the choice of subchannel for each call.
pub trait Policy: Send + 'static {
    /// New addresses (the whole list) and config from the resolver.
    fn resolver_update(&mut self, update: &PolicyUpdate<'_>, channel: &mut PolicyChannel<'_>);
    /// The resolver failed. A policy with working subchannels usually keeps them; one with
    /// none reports TransientFailure with `error`.
    fn resolver_error(&mut self, error: &Status, channel: &mut PolicyChannel<'_>);
    /// `subchannel` changed state. Idle means not connected (after a lost connection, or
    /// once a failed attempt's backoff is over): connect it again if it is wanted.
    fn subchannel_state(
        &mut self,
        subchannel: &Subchannel,
        state: Connectivity,
        channel: &mut PolicyChannel<'_>,
    );
    /// A call (or `Channel::state(true)`) wants the channel out of Idle. Default: nothing.
    fn exit_idle(&mut self, channel: &mut PolicyChannel<'_>) {
        let _ = channel;
    }
    /// The timer set with [`PolicyChannel::schedule`] is due. Default: nothing.
    fn timer(&mut self, channel: &mut PolicyChannel<'_>) {
        let _ = channel;
    }
    /// Chooses for one call. Runs on every call's path: keep it quick and lock-free.
    fn pick(&mut self, info: &PickInfo<'_>) -> PickResult;
}

/// A policy's way to its channel, during one of its calls.
pub struct PolicyChannel<'a> {
    timer: &'a mut control::PolicyTimer,
    table: &'a mut SubchannelTable,
    watched: &'a mut Watched,
    channel: &'a Channel,
    resolve_now: &'a mut bool,
}

impl fmt::Debug for PolicyChannel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyChannel")
            .field("state", &self.watched.connectivity)
            .finish_non_exhaustive()
    }
}

impl PolicyChannel<'_> {
    /// A new subchannel to `address`, Idle (not connecting until [`connect`](Self::connect)).
    pub fn new_subchannel(&mut self, address: &Address) -> Subchannel {
        self.table.add(address.clone())
    }
    /// Starts connecting `subchannel` if it is Idle; the policy hears of Connecting, then
    /// Ready or TransientFailure (then Idle after the backoff).
    pub fn connect(&mut self, subchannel: &Subchannel) {
        self.table.connect(subchannel, self.channel);
    }
    /// Drops `subchannel`: its connection closes gracefully (calls on it finish).
    pub fn remove_subchannel(&mut self, subchannel: &Subchannel) {
        self.table.remove(subchannel);
    }
    /// The connectivity of `subchannel` (Shutdown once removed).
    pub fn subchannel_state(&self, subchannel: &Subchannel) -> Connectivity {
        self.table.state(subchannel)
    }
    /// Sets the channel's connectivity (and, for TransientFailure, why), and has waiting calls
    /// pick again. Shutdown is the channel's own (`Channel::close`): a policy's is ignored.
    pub fn set_state(&mut self, state: Connectivity, error: Option<Status>) {
        if state == Connectivity::Shutdown {
            return;
        }
        if let Some(error) = error {
            self.watched.last_error = Some(error);
        }
        self.watched.set(state);
        self.watched.wake_waiters();
    }
    /// The channel's connectivity as last set.
    pub fn state(&self) -> Connectivity {
        self.watched.connectivity
    }
    /// The last error set with [`set_state`](Self::set_state).
    pub fn last_error(&self) -> Option<&Status> {
        self.watched.last_error.as_ref()
    }
    /// Asks the resolver to resolve again (after the policy returns).
    pub fn request_resolution(&mut self) {
        *self.resolve_now = true;
    }
    /// Calls the policy's [`timer`](Policy::timer) after `delay` (on the runtime's clock).
    /// A policy has one timer: this replaces the one set before, if it had not fired.
    pub fn schedule(&mut self, delay: Duration) {
        let token = self.timer.disarm();
        self.channel.spawn_policy_timer(token, self.now() + delay);
    }
    /// Cancels the timer set with [`schedule`](Self::schedule), if it had not fired.
    pub fn cancel_timer(&mut self) {
        self.timer.disarm();
    }
    /// The runtime's clock (virtual on a simulated runtime).
    pub fn now(&self) -> Instant {
        self.channel.inner.runtime.now()
    }
}

/// The policies a channel knows: the built-ins, those registered for the process
/// ([`register`]) and those its builder registered (each replacing one of the same name
/// before it).
#[derive(Clone)]
pub(crate) struct PolicyRegistry {
    registered: HashMap<String, Arc<dyn PolicyBuilder>>,
}

/// Policies registered for every channel of the process ([`register`]).
static GLOBAL_POLICIES: std::sync::RwLock<Vec<Arc<dyn PolicyBuilder>>> =
    std::sync::RwLock::new(Vec::new());

/// Registers `builder` for every channel built from now on in this process (gRPC's global
/// balancer registry); it replaces a built-in or an earlier global policy of the same name,
/// and `ChannelBuilder::balancing_policy` still replaces it for one channel.
pub fn register(builder: impl PolicyBuilder) {
    GLOBAL_POLICIES
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(Arc::new(builder));
}

impl Default for PolicyRegistry {
    /// The process's registered policies (the built-ins need no entry).
    fn default() -> Self {
        let mut registry = Self {
            registered: HashMap::new(),
        };
        for builder in GLOBAL_POLICIES
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            registry.register(builder.clone());
        }
        registry
    }
}

impl fmt::Debug for PolicyRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PolicyRegistry")
            .field(&self.names())
            .finish()
    }
}

/// The built-in policies' names, as service configs spell them.
pub(crate) const BUILT_IN: [&str; 4] = [
    "pick_first",
    "round_robin",
    "least_request",
    "least_request_experimental",
];

impl PolicyRegistry {
    /// Adds `builder` under its name.
    pub(crate) fn register(&mut self, builder: Arc<dyn PolicyBuilder>) {
        self.registered.insert(builder.name().to_string(), builder);
    }
    /// The policy registered as `name` (built-ins are not: the service config parser knows
    /// their configs itself).
    pub(crate) fn registered(&self, name: &str) -> Option<&Arc<dyn PolicyBuilder>> {
        self.registered.get(name)
    }
    /// Every name the registry knows, sorted, for errors.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = BUILT_IN.iter().map(|s| s.to_string()).collect();
        names.extend(self.registered.keys().cloned());
        names.sort();
        names.dedup();
        names
    }
    /// The builder of `name`: a registered one, else the built-in.
    pub(crate) fn builder(&self, name: &str) -> Option<Arc<dyn PolicyBuilder>> {
        if let Some(builder) = self.registered.get(name) {
            return Some(builder.clone());
        }
        Some(match name {
            "pick_first" => Arc::new(pick_first::Builder),
            "round_robin" => Arc::new(round_robin::Builder),
            "least_request" | "least_request_experimental" => Arc::new(least_request::Builder),
            _ => return None,
        })
    }
}

//! How a channel runs its resolver and policy: leaving Idle starts both, resolver updates and
//! subchannel changes go to the policy under the channel's lock, a pick asks it, and a quiet
//! channel (no call for `idle_timeout`) drops both and its connections, going Idle.
//!
//! Lock rule: the resolver is built, asked to `resolve_now` and dropped with no lock held, so
//! it may push an update from any of them; the policy runs only under the channel's lock.

use std::sync::{Arc, MutexGuard};
use std::task::Waker;

use anygrpc_core::Status;

use super::subchannel::{Miss, SubchannelTable};
use super::{
    PickInfo, PickResult, Policy, PolicyArgs, PolicyBuilder, PolicyChannel, PolicyConfig,
    PolicyUpdate, Subchannel,
};
use crate::client::channel::{Channel, ChannelState, Connectivity, Pick};
use crate::client::resolver::{Resolver, ResolverHandle, ResolverUpdate};
use crate::client::service_config::LoadBalancingConfig;
use crate::conn::handle::{Command, ConnHandle, Kick};
use crate::conn::policy::Urgency;
use crate::user_code::observed;

/// A policy by builder and config: what a channel (or a service config) chose.
#[derive(Clone)]
pub(crate) struct PolicyChoice {
    pub(crate) name: String,
    pub(crate) builder: Arc<dyn PolicyBuilder>,
    pub(crate) config: PolicyConfig,
}

impl std::fmt::Debug for PolicyChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyChoice")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PolicyChoice {
    /// The policy `config` names, from `registry`; `None` if the registry lacks it.
    pub(crate) fn of(
        config: &LoadBalancingConfig,
        registry: &super::PolicyRegistry,
    ) -> Option<Self> {
        let name = config.name();
        let config = match config {
            LoadBalancingConfig::Custom { config, .. } => config.clone(),
            builtin => PolicyConfig::new(builtin.clone()),
        };
        Some(Self {
            builder: registry.builder(name)?,
            name: name.to_string(),
            config,
        })
    }
}

/// The running policy.
struct Active {
    name: String,
    config: PolicyConfig,
    policy: Box<dyn Policy>,
}

/// A channel's resolution and balancing state, under its lock.
pub(crate) struct Balancing {
    /// Bumped each time resolution starts or stops: handles of other generations are inert.
    generation: u64,
    resolver: Option<Arc<dyn Resolver>>,
    /// The resolver is being built (outside the lock).
    starting: bool,
    policy: Option<Active>,
    pub(crate) table: SubchannelTable,
    /// A policy asked for re-resolution; done once the lock is released.
    resolve_now: bool,
    /// Picks asked for, to tell a quiet channel from a busy one.
    picks: u64,
    /// The resolver once gave a valid service config (a later invalid one keeps it).
    had_good_config: bool,
    seed: u64,
    /// The policy's timer.
    pub(super) timer: PolicyTimer,
}

/// A policy's one timer: the token of the one armed (others are stale), and the waker of the
/// task that waits for it, woken when it is replaced or cancelled so its sleep ends at once.
#[derive(Debug, Default)]
pub(super) struct PolicyTimer {
    pub(super) token: u64,
    pub(super) waker: Option<std::task::Waker>,
}

impl PolicyTimer {
    /// Makes the armed timer stale (its task ends); the next token.
    pub(super) fn disarm(&mut self) -> u64 {
        self.token += 1;
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
        self.token
    }
}

impl std::fmt::Debug for Balancing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancing")
            .field("generation", &self.generation)
            .field("policy", &self.policy.as_ref().map(|a| &a.name))
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl Balancing {
    /// Idle: no resolver, no policy, no subchannel.
    pub(crate) fn new(table: SubchannelTable, seed: u64) -> Self {
        Self {
            generation: 0,
            resolver: None,
            starting: false,
            policy: None,
            table,
            resolve_now: false,
            picks: 0,
            had_good_config: false,
            seed,
            timer: PolicyTimer::default(),
        }
    }

    /// Stops resolution and balancing: gives back the resolver (drop it with no lock held)
    /// and the connections (to shut down or drain).
    pub(crate) fn stop(&mut self) -> (Option<Arc<dyn Resolver>>, Vec<Arc<ConnHandle>>) {
        self.generation += 1;
        self.starting = false;
        self.policy = None;
        self.timer.disarm();
        (self.resolver.take(), self.table.take_connections())
    }

    /// Replaces the policy with a new one of `choice` (its subchannels go with the old one).
    fn install(&mut self, choice: &PolicyChoice) {
        for conn in self.table.take_connections() {
            let _ = conn
                .enqueue([Command::Shutdown], Urgency::Control)
                .map(Kick::run);
        }
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let args = PolicyArgs { seed: self.seed };
        let Some(policy) = observed(|| choice.builder.build(args)) else {
            self.policy = None;
            return;
        };
        self.timer.disarm();
        self.policy = Some(Active {
            name: choice.name.clone(),
            config: choice.config.clone(),
            policy,
        });
    }
}

impl ChannelState {
    /// Runs `f` on the policy with its channel handle; `None` without a policy, or when the
    /// policy panicked.
    fn with_policy<R>(
        &mut self,
        channel: &Channel,
        f: impl FnOnce(&mut dyn Policy, &mut PolicyChannel<'_>, &PolicyConfig) -> R,
    ) -> Option<R> {
        let ChannelState {
            watched, balancing, ..
        } = self;
        let Balancing {
            policy,
            table,
            resolve_now,
            timer,
            ..
        } = balancing;
        let active = policy.as_mut()?;
        let mut handle = PolicyChannel {
            timer,
            table,
            watched,
            channel,
            resolve_now,
        };
        observed(|| f(active.policy.as_mut(), &mut handle, &active.config))
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.watched.connectivity == Connectivity::Shutdown
    }
}

impl Channel {
    /// Releases the lock, then asks the resolver to resolve again if the policy wanted it.
    pub(in crate::client) fn release(&self, mut state: MutexGuard<'_, ChannelState>) {
        let resolver = if std::mem::take(&mut state.balancing.resolve_now) {
            state.balancing.resolver.clone()
        } else {
            None
        };
        drop(state);
        if let Some(resolver) = resolver {
            let _ = observed(|| resolver.resolve_now());
        }
    }

    /// Tells the policy that `sub` is now `state`, then releases the lock.
    pub(super) fn tell_policy(
        &self,
        mut guard: MutexGuard<'_, ChannelState>,
        sub: &Subchannel,
        state: Connectivity,
    ) {
        guard.with_policy(self, |policy, channel, _| {
            policy.subchannel_state(sub, state, channel);
        });
        self.release(guard);
    }

    /// `true` while `generation` is the channel's resolution.
    pub(crate) fn resolver_is_current(&self, generation: u64) -> bool {
        let state = self.lock();
        let b = &state.balancing;
        !state.is_shut_down() && b.generation == generation && (b.resolver.is_some() || b.starting)
    }

    /// A resolver of `generation` pushed `update`.
    pub(crate) fn resolver_update(&self, generation: u64, update: ResolverUpdate) {
        let mut state = self.lock();
        if state.is_shut_down() || state.balancing.generation != generation {
            return;
        }
        let default = &self.inner.policy;
        let choice = match &update.service_config {
            None => {
                self.inner.set_resolved_config(None);
                let max = self.inner.connections_per_subchannel(None);
                state.balancing.table.set_max_connections(max);
                Some(default.clone())
            }
            Some(Ok(config)) => {
                state.balancing.had_good_config = true;
                self.inner.set_resolved_config(Some(config.clone()));
                let max = self.inner.connections_per_subchannel(Some(config));
                state.balancing.table.set_max_connections(max);
                Some(
                    config
                        .load_balancing
                        .as_ref()
                        .and_then(|lb| PolicyChoice::of(lb, self.inner.policies()))
                        .unwrap_or_else(|| default.clone()),
                )
            }
            // gRFC A21: keep the last good config; without one the channel fails.
            Some(Err(_)) if state.balancing.had_good_config => None,
            Some(Err(error)) => {
                let status = Status::unavailable(format!("the resolver's {error}"));
                state.with_policy(self, |policy, channel, _| {
                    policy.resolver_error(&status, channel);
                });
                return self.release(state);
            }
        };
        if let Some(choice) = choice {
            let current = state.balancing.policy.as_ref();
            if current.is_none_or(|a| a.name != choice.name) {
                state.balancing.install(&choice);
            } else if let Some(active) = state.balancing.policy.as_mut() {
                active.config = choice.config;
            }
        }
        state.with_policy(self, |policy, channel, config| {
            let update = PolicyUpdate {
                addresses: &update.addresses,
                attributes: &update.attributes,
                config,
            };
            policy.resolver_update(&update, channel);
        });
        self.release(state);
    }

    /// A resolver of `generation` failed with `status`.
    pub(crate) fn resolver_error(&self, generation: u64, status: Status) {
        let mut state = self.lock();
        if state.is_shut_down() || state.balancing.generation != generation {
            return;
        }
        state.with_policy(self, |policy, channel, _| {
            policy.resolver_error(&status, channel);
        });
        self.release(state);
    }

    /// Out of Idle: with no resolver, starts resolution (the policy is the channel's default
    /// until a service config chooses another); otherwise has the policy connect.
    pub(in crate::client) fn exit_idle(&self, mut state: MutexGuard<'_, ChannelState>) {
        if state.is_shut_down() || state.balancing.starting {
            return self.release(state);
        }
        if state.balancing.resolver.is_some() {
            if state.watched.connectivity == Connectivity::Idle {
                state.with_policy(self, |policy, channel, _| policy.exit_idle(channel));
            }
            return self.release(state);
        }
        let generation = {
            let b = &mut state.balancing;
            b.generation += 1;
            b.starting = true;
            b.had_good_config = false;
            b.install(&self.inner.policy);
            b.generation
        };
        state.watched.set(Connectivity::Connecting);
        drop(state);
        self.watch_idleness(generation);
        let handle = ResolverHandle {
            channel: Arc::downgrade(&self.inner),
            generation,
            runtime: self.inner.runtime.clone(),
        };
        let built = observed(|| self.inner.resolver.build(&self.inner.uri, handle));
        let mut state = self.lock();
        let current = state.balancing.generation == generation && !state.is_shut_down();
        let resolver: Option<Arc<dyn Resolver>> = built.map(Arc::from);
        if current {
            state.balancing.starting = false;
            match resolver {
                Some(resolver) => state.balancing.resolver = Some(resolver),
                None => {
                    let status = Status::internal("the resolver panicked while starting");
                    state.with_policy(self, |policy, channel, _| {
                        policy.resolver_error(&status, channel);
                    });
                }
            }
            self.release(state);
        } else {
            drop(state);
            drop(resolver);
        }
    }

    /// Chooses a connection for a call, as the policy says.
    pub(in crate::client) fn pick_balanced<'a>(
        &'a self,
        wait_for_ready: bool,
        waker: Option<&Waker>,
        mut state: MutexGuard<'a, ChannelState>,
    ) -> (Pick, MutexGuard<'a, ChannelState>) {
        state.balancing.picks += 1;
        for _ in 0..3 {
            if state.is_shut_down() {
                return (
                    Pick::Fail(Status::cancelled("the channel is closed")),
                    state,
                );
            }
            if state.watched.connectivity == Connectivity::Idle
                || state.balancing.resolver.is_none() && !state.balancing.starting
            {
                self.exit_idle(state);
                state = self.lock();
            }
            let balancing = &mut state.balancing;
            let Some(active) = balancing.policy.as_mut() else {
                // Installed when resolution starts: only a builder that panicked leaves none.
                let status = Status::internal("the balancing policy panicked when built");
                return (Pick::Fail(status), state);
            };
            let info = PickInfo {
                wait_for_ready,
                table: &balancing.table,
            };
            let picked = observed(|| active.policy.pick(&info)).unwrap_or_else(|| {
                PickResult::Fail(Status::internal("the balancing policy panicked"))
            });
            let sub = match picked {
                PickResult::Wait => return (Pick::Wait, state),
                PickResult::Fail(_) if wait_for_ready => return (Pick::Wait, state),
                PickResult::Fail(status) => return (Pick::Fail(status), state),
                PickResult::Ready(sub) => sub,
            };
            let now = || self.inner.runtime.now();
            match balancing.table.take_pick(&sub, waker, now) {
                Ok(picked) => return (Pick::Ready(picked), state),
                // Not Ready: the policy is wrong about it; the call waits for its next state.
                Err(Miss::NotReady) => return (Pick::Wait, state),
                // Every connection is at the server's stream limit: the call waits for a
                // stream, or for the connection opened for it.
                Err(Miss::Full(scale)) => {
                    if scale {
                        self.scale_up(&sub);
                    }
                    return (Pick::Wait, state);
                }
                // Its connection just ended: the policy hears of it, then is asked again.
                Err(Miss::Lost) => {
                    state.with_policy(self, |policy, channel, _| {
                        policy.subchannel_state(&sub, Connectivity::Idle, channel);
                    });
                }
            }
        }
        (Pick::Wait, state)
    }

    /// Calls the policy's `timer` at `at` unless `token` stops being the policy's timer
    /// first (replaced, cancelled, or the policy with it): then the task ends at once.
    pub(super) fn spawn_policy_timer(&self, token: u64, at: std::time::Instant) {
        let weak = Arc::downgrade(&self.inner);
        let mut sleep = self.inner.runtime.sleep_until(at);
        self.inner.runtime.spawn(Box::pin(async move {
            let due = std::future::poll_fn(|cx| {
                let Some(inner) = weak.upgrade() else {
                    return std::task::Poll::Ready(false);
                };
                let channel = Channel { inner };
                {
                    let mut state = channel.lock();
                    if state.balancing.timer.token != token {
                        return std::task::Poll::Ready(false);
                    }
                    state.balancing.timer.waker = Some(cx.waker().clone());
                }
                drop(channel);
                sleep.as_mut().poll(cx).map(|()| true)
            })
            .await;
            let Some(inner) = weak.upgrade().filter(|_| due) else {
                return;
            };
            let channel = Channel { inner };
            let mut state = channel.lock();
            if state.balancing.timer.token == token && !state.is_shut_down() {
                state.balancing.timer.token += 1;
                state.balancing.timer.waker = None;
                state.with_policy(&channel, |policy, handle, _| policy.timer(handle));
            }
            channel.release(state);
        }));
    }

    /// After `idle_timeout` with no call picked or in flight, resolution of `generation`
    /// stops and the channel goes Idle (its connections close gracefully).
    fn watch_idleness(&self, generation: u64) {
        let Some(idle) = self.inner.idle_timeout() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        let runtime = self.inner.runtime.clone();
        let task = async move {
            let mut seen = None;
            loop {
                runtime.sleep_until(runtime.now() + idle).await;
                let Some(inner) = weak.upgrade() else { return };
                let channel = Channel { inner };
                let mut state = channel.lock();
                if state.is_shut_down() || state.balancing.generation != generation {
                    return;
                }
                let (active, started) = state.balancing.table.activity();
                let activity = started.wrapping_add(state.balancing.picks);
                if active == 0 && seen == Some(activity) {
                    let (resolver, conns) = state.balancing.stop();
                    state.watched.set(Connectivity::Idle);
                    drop(state);
                    drop(resolver);
                    for conn in conns {
                        let _ = conn
                            .enqueue([Command::Shutdown], Urgency::Control)
                            .map(Kick::run);
                    }
                    return;
                }
                seen = Some(activity);
            }
        };
        self.inner.runtime.spawn(Box::pin(task));
    }
}

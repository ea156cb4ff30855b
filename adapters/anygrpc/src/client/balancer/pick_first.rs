//! pick_first: one connection, to the first address that accepts, in the resolver's order
//! (shuffled first with gRFC A62's `shuffleAddressList`). A pass tries the addresses one
//! after another; when all failed the channel is TransientFailure until every address's
//! backoff is over, then Idle: the next call starts a new pass. When the connection ends the
//! channel goes Idle (and re-resolves) and the next call connects again from the top.

use anygrpc_core::Status;

use super::{
    PickInfo, PickResult, Policy, PolicyArgs, PolicyBuilder, PolicyChannel, PolicyConfig,
    PolicyUpdate, Subchannel,
};
use crate::client::backoff::splitmix64;
use crate::client::channel::Connectivity;
use crate::client::service_config::LoadBalancingConfig;

/// Builds [`PickFirst`].
pub(super) struct Builder;

impl PolicyBuilder for Builder {
    fn name(&self) -> &str {
        "pick_first"
    }

    fn parse_config(&self, json: &str) -> Result<PolicyConfig, String> {
        crate::client::service_config::parse_builtin("pick_first", json).map(PolicyConfig::new)
    }

    fn build(&self, args: PolicyArgs) -> Box<dyn Policy> {
        Box::new(PickFirst {
            subs: Vec::new(),
            selected: None,
            trying: None,
            state: Connectivity::Connecting,
            error: None,
            random: args.seed,
        })
    }
}

struct PickFirst {
    /// One subchannel per address, in the order to try them.
    subs: Vec<Subchannel>,
    /// The subchannel calls go to.
    selected: Option<Subchannel>,
    /// The pass in progress: the index in `subs` being tried.
    trying: Option<usize>,
    /// What the policy last reported, and why it last failed.
    state: Connectivity,
    error: Option<Status>,
    random: u64,
}

impl PickFirst {
    fn report(
        &mut self,
        channel: &mut PolicyChannel<'_>,
        state: Connectivity,
        error: Option<Status>,
    ) {
        self.state = state;
        if error.is_some() {
            self.error.clone_from(&error);
        }
        channel.set_state(state, error);
    }

    /// Tries `subs` from index `from`, skipping those still in their backoff.
    fn try_from(&mut self, from: usize, channel: &mut PolicyChannel<'_>) {
        for i in from..self.subs.len() {
            match channel.subchannel_state(&self.subs[i]) {
                Connectivity::Idle => {
                    self.trying = Some(i);
                    channel.connect(&self.subs[i]);
                    return;
                }
                Connectivity::Connecting => {
                    self.trying = Some(i);
                    return;
                }
                Connectivity::Ready => {
                    self.select(i, channel);
                    return;
                }
                Connectivity::TransientFailure | Connectivity::Shutdown => {}
            }
        }
        // Every address failed.
        self.trying = None;
        let error = channel
            .last_error()
            .cloned()
            .unwrap_or_else(|| Status::unavailable("no address accepted a connection"));
        self.report(channel, Connectivity::TransientFailure, Some(error));
        channel.request_resolution();
    }

    fn start_pass(&mut self, channel: &mut PolicyChannel<'_>) {
        if self.subs.is_empty() {
            return;
        }
        self.report(channel, Connectivity::Connecting, None);
        self.try_from(0, channel);
    }

    fn select(&mut self, i: usize, channel: &mut PolicyChannel<'_>) {
        self.trying = None;
        self.selected = Some(self.subs[i].clone());
        self.report(channel, Connectivity::Ready, None);
    }
}

impl Policy for PickFirst {
    fn resolver_update(&mut self, update: &PolicyUpdate<'_>, channel: &mut PolicyChannel<'_>) {
        let shuffle = matches!(
            update.config.get::<LoadBalancingConfig>(),
            Some(LoadBalancingConfig::PickFirst {
                shuffle_address_list: true
            })
        );
        let mut addresses = super::spread::distinct(update.addresses);
        if shuffle {
            // Fisher-Yates; the modulo's bias (below 2^-50 here) does not matter.
            for i in (1..addresses.len()).rev() {
                let j = (splitmix64(&mut self.random) % (i as u64 + 1)) as usize;
                addresses.swap(i, j);
            }
        }
        let old = std::mem::take(&mut self.subs);
        for address in addresses {
            let kept = old
                .iter()
                .find(|s| s.address().endpoint == address.endpoint);
            self.subs.push(match kept {
                Some(sub) => sub.clone(),
                None => channel.new_subchannel(address),
            });
        }
        for sub in &old {
            if !self.subs.contains(sub) {
                channel.remove_subchannel(sub);
            }
        }
        if self.subs.is_empty() {
            self.selected = None;
            self.trying = None;
            let error = Status::unavailable("name resolution returned no addresses");
            self.report(channel, Connectivity::TransientFailure, Some(error));
            return;
        }
        if let Some(selected) = &self.selected {
            if self.subs.contains(selected) {
                return; // Still resolved: keep the connection.
            }
            self.selected = None;
        }
        if self.state != Connectivity::Idle {
            self.start_pass(channel);
        }
    }

    fn resolver_error(&mut self, error: &Status, channel: &mut PolicyChannel<'_>) {
        if self.subs.is_empty() {
            self.report(channel, Connectivity::TransientFailure, Some(error.clone()));
        }
    }

    fn subchannel_state(
        &mut self,
        sub: &Subchannel,
        state: Connectivity,
        channel: &mut PolicyChannel<'_>,
    ) {
        if self.selected.as_ref() == Some(sub) {
            if state != Connectivity::Ready {
                // The connection ended: Idle until the next call, with fresh addresses.
                self.selected = None;
                self.report(channel, Connectivity::Idle, None);
                channel.request_resolution();
            }
            return;
        }
        if let Some(i) = self.trying.filter(|&i| self.subs.get(i) == Some(sub)) {
            match state {
                Connectivity::Ready => self.select(i, channel),
                Connectivity::TransientFailure => self.try_from(i + 1, channel),
                _ => {}
            }
            return;
        }
        let all_rested = self
            .subs
            .iter()
            .all(|s| channel.subchannel_state(s) != Connectivity::TransientFailure);
        if self.state == Connectivity::TransientFailure && self.trying.is_none() && all_rested {
            // Every backoff is over: the next call starts a new pass.
            self.report(channel, Connectivity::Idle, None);
        }
    }

    fn exit_idle(&mut self, channel: &mut PolicyChannel<'_>) {
        if self.selected.is_none() && self.trying.is_none() {
            if self.subs.is_empty() {
                channel.request_resolution();
            } else {
                self.start_pass(channel);
            }
        }
    }

    fn pick(&mut self, info: &PickInfo<'_>) -> PickResult {
        if let Some(selected) = &self.selected {
            return PickResult::Ready(selected.clone());
        }
        let _ = info;
        match (self.state, &self.error) {
            (Connectivity::TransientFailure, Some(error)) => PickResult::Fail(error.clone()),
            (Connectivity::TransientFailure, None) => {
                PickResult::Fail(Status::unavailable("no address accepted a connection"))
            }
            _ => PickResult::Wait,
        }
    }
}

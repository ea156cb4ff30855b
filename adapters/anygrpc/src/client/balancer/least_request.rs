//! least_request (gRFC A48): every address connected, as round_robin; each call samples
//! `choiceCount` Ready subchannels at random (default 2, 2 to 10) and takes the one with the
//! fewest calls in flight (the first sampled on a tie). Samples are distinct (a partial
//! Fisher-Yates over a reused index list), so with `choiceCount` at least the number of Ready
//! subchannels every pick takes the least loaded one.

use super::spread::Spread;
use super::{
    PickInfo, PickResult, Policy, PolicyArgs, PolicyBuilder, PolicyChannel, PolicyConfig,
    PolicyUpdate, Subchannel,
};
use crate::client::backoff::splitmix64;
use crate::client::channel::Connectivity;
use crate::client::service_config::LoadBalancingConfig;
use anygrpc_core::Status;

/// Builds [`LeastRequest`].
pub(super) struct Builder;

/// A48's default `choiceCount`.
const DEFAULT_CHOICES: u32 = 2;

impl PolicyBuilder for Builder {
    fn name(&self) -> &str {
        "least_request"
    }

    fn parse_config(&self, json: &str) -> Result<PolicyConfig, String> {
        crate::client::service_config::parse_builtin("least_request", json).map(PolicyConfig::new)
    }

    fn build(&self, args: PolicyArgs) -> Box<dyn Policy> {
        Box::new(LeastRequest {
            spread: Spread::default(),
            choices: DEFAULT_CHOICES,
            random: args.seed,
            order: Vec::new(),
        })
    }
}

struct LeastRequest {
    spread: Spread,
    choices: u32,
    random: u64,
    /// A permutation of the Ready list's indices, shuffled in part by each pick.
    order: Vec<usize>,
}

impl Policy for LeastRequest {
    fn resolver_update(&mut self, update: &PolicyUpdate<'_>, channel: &mut PolicyChannel<'_>) {
        if let Some(LoadBalancingConfig::LeastRequest { choice_count }) = update.config.get() {
            self.choices = *choice_count;
        }
        self.spread.update(update, channel);
    }

    fn resolver_error(&mut self, error: &Status, channel: &mut PolicyChannel<'_>) {
        self.spread.resolver_error(error, channel);
    }

    fn subchannel_state(
        &mut self,
        sub: &Subchannel,
        state: Connectivity,
        channel: &mut PolicyChannel<'_>,
    ) {
        self.spread.subchannel_state(sub, state, channel);
    }

    fn pick(&mut self, info: &PickInfo<'_>) -> PickResult {
        let ready = &self.spread.ready;
        if ready.is_empty() {
            return self.spread.not_ready();
        }
        if self.order.len() != ready.len() {
            self.order.clear();
            self.order.extend(0..ready.len());
        }
        let n = ready.len();
        let mut best: Option<(&Subchannel, usize)> = None;
        for k in 0..(self.choices as usize).min(n) {
            let j = k + (splitmix64(&mut self.random) % (n - k) as u64) as usize;
            self.order.swap(k, j);
            let candidate = &ready[self.order[k]];
            let load = info.outstanding_calls(candidate);
            if best.is_none_or(|(_, least)| load < least) {
                best = Some((candidate, load));
            }
        }
        match best {
            Some((sub, _)) => PickResult::Ready(sub.clone()),
            None => self.spread.not_ready(),
        }
    }
}

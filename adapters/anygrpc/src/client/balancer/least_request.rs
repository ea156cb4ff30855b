//! least_request (gRFC A48): every address connected, as round_robin; each call samples
//! `choiceCount` Ready subchannels at random (default 2, 2 to 10) and takes the one with the
//! fewest calls in flight.

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
        })
    }
}

struct LeastRequest {
    spread: Spread,
    choices: u32,
    random: u64,
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
        let mut best: Option<(&Subchannel, usize)> = None;
        for _ in 0..self.choices {
            let i = (splitmix64(&mut self.random) % ready.len() as u64) as usize;
            let candidate = &ready[i];
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

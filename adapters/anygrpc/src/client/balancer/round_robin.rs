//! round_robin: one subchannel per address, every one connected; calls go to the Ready ones
//! in turn. A dead address leaves the rotation and rejoins once it reconnects.

use super::spread::Spread;
use super::{
    PickInfo, PickResult, Policy, PolicyArgs, PolicyBuilder, PolicyChannel, PolicyConfig,
    PolicyUpdate, Subchannel,
};
use crate::client::channel::Connectivity;
use anygrpc_core::Status;

/// Builds [`RoundRobin`].
pub(super) struct Builder;

impl PolicyBuilder for Builder {
    fn name(&self) -> &str {
        "round_robin"
    }

    fn parse_config(&self, json: &str) -> Result<PolicyConfig, String> {
        crate::client::service_config::parse_builtin("round_robin", json).map(PolicyConfig::new)
    }

    fn build(&self, args: PolicyArgs) -> Box<dyn Policy> {
        Box::new(RoundRobin {
            spread: Spread::default(),
            // Channels start their rotation at different places.
            next: args.seed as usize,
        })
    }
}

struct RoundRobin {
    spread: Spread,
    next: usize,
}

impl Policy for RoundRobin {
    fn resolver_update(&mut self, update: &PolicyUpdate<'_>, channel: &mut PolicyChannel<'_>) {
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

    fn pick(&mut self, _info: &PickInfo<'_>) -> PickResult {
        let ready = &self.spread.ready;
        if ready.is_empty() {
            return self.spread.not_ready();
        }
        let sub = &ready[self.next % ready.len()];
        self.next = self.next.wrapping_add(1);
        PickResult::Ready(sub.clone())
    }
}

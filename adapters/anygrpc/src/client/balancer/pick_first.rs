//! pick_first: one connection, to the first address that accepts, in the resolver's order
//! (shuffled first with gRFC A62's `shuffleAddressList`, then IPv6 and IPv4 interleaved as
//! Happy Eyeballs does, RFC 8305 §4). A pass tries the addresses one after another; an
//! attempt still connecting after 250 ms does not hold up the next one, which starts beside it
//! (gRFC A61's Happy Eyeballs), and the first to connect wins. When all failed the channel is
//! TransientFailure until every address's backoff is over, then Idle: the next call starts a
//! new pass. When the connection ends the channel goes Idle (and re-resolves) and the next
//! call connects again from the top.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anygrpc_core::Status;

use super::{
    PickInfo, PickResult, Policy, PolicyArgs, PolicyBuilder, PolicyChannel, PolicyConfig,
    PolicyUpdate, Subchannel,
};
use crate::client::backoff::splitmix64;
use crate::client::channel::Connectivity;
use crate::client::resolver::{Address, Endpoint};
use crate::client::service_config::LoadBalancingConfig;

/// RFC 8305's Connection Attempt Delay, as gRFC A61 sets it.
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

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
            pass: None,
            state: Connectivity::Connecting,
            error: None,
            random: args.seed,
        })
    }
}

/// A pass over the addresses in progress.
#[derive(Debug, Clone, Copy)]
struct Pass {
    /// The index in `subs` of the next address to start.
    next: usize,
    /// When the next address starts even if the last one started is still connecting.
    next_at: Option<Instant>,
}

struct PickFirst {
    /// One subchannel per address, in the order to try them.
    subs: Vec<Subchannel>,
    /// The subchannel calls go to.
    selected: Option<Subchannel>,
    pass: Option<Pass>,
    /// What the policy last reported, and why it last failed.
    state: Connectivity,
    error: Option<Status>,
    random: u64,
}

/// `addresses` with IPv6 and IPv4 alternating, starting with the first address's family
/// (RFC 8305 §4); each family keeps its order. Unix paths stay where they are.
fn interleave(addresses: Vec<&Address>) -> Vec<&Address> {
    let family = |a: &Address| match a.endpoint {
        Endpoint::Tcp(SocketAddr::V6(_)) => Some(true),
        Endpoint::Tcp(SocketAddr::V4(_)) => Some(false),
        _ => None,
    };
    let Some(first) = addresses.first().and_then(|a| family(a)) else {
        return addresses;
    };
    if !addresses.iter().any(|a| family(a) == Some(!first)) {
        return addresses;
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut others = Vec::new();
    for address in addresses {
        match family(address) {
            Some(f) if f == first => ours.push(address),
            Some(_) => theirs.push(address),
            None => others.push(address),
        }
    }
    let mut out = Vec::with_capacity(ours.len() + theirs.len() + others.len());
    let (mut ours, mut theirs) = (ours.into_iter(), theirs.into_iter());
    loop {
        match (ours.next(), theirs.next()) {
            (None, None) => break,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
    out.extend(others);
    out
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

    /// Starts the next address of the pass (skipping those still in their backoff), or, with
    /// none left and none still connecting, ends the pass as failed.
    fn advance(&mut self, channel: &mut PolicyChannel<'_>) {
        let Some(mut pass) = self.pass else { return };
        while let Some(sub) = self.subs.get(pass.next) {
            pass.next += 1;
            match channel.subchannel_state(sub) {
                Connectivity::Idle => {
                    let sub = sub.clone();
                    channel.connect(&sub);
                    self.pass = Some(pass);
                    self.arm(channel);
                    return;
                }
                Connectivity::Ready => {
                    let i = pass.next - 1;
                    return self.select(i, channel);
                }
                Connectivity::Connecting => {
                    self.pass = Some(pass);
                    self.arm(channel);
                    return;
                }
                Connectivity::TransientFailure | Connectivity::Shutdown => {}
            }
        }
        pass.next_at = None;
        self.pass = Some(pass);
        channel.cancel_timer();
        let connecting = self
            .subs
            .iter()
            .any(|s| channel.subchannel_state(s) == Connectivity::Connecting);
        if !connecting {
            // Every address failed.
            self.pass = None;
            let error = channel
                .last_error()
                .cloned()
                .unwrap_or_else(|| Status::unavailable("no address accepted a connection"));
            self.report(channel, Connectivity::TransientFailure, Some(error));
            channel.request_resolution();
        }
    }

    /// With an address left to start, starts it after the attempt delay if the pass is
    /// still waiting then.
    fn arm(&mut self, channel: &mut PolicyChannel<'_>) {
        let Some(pass) = &mut self.pass else { return };
        if pass.next < self.subs.len() {
            pass.next_at = Some(channel.now() + ATTEMPT_DELAY);
            channel.schedule(ATTEMPT_DELAY);
        } else {
            pass.next_at = None;
            channel.cancel_timer();
        }
    }

    fn start_pass(&mut self, channel: &mut PolicyChannel<'_>) {
        if self.subs.is_empty() {
            return;
        }
        self.report(channel, Connectivity::Connecting, None);
        self.pass = Some(Pass {
            next: 0,
            next_at: None,
        });
        self.advance(channel);
    }

    /// Calls go to `subs[i]`; attempts still connecting elsewhere are dropped.
    fn select(&mut self, i: usize, channel: &mut PolicyChannel<'_>) {
        self.pass = None;
        channel.cancel_timer();
        self.selected = Some(self.subs[i].clone());
        for j in 0..self.subs.len() {
            if j != i && channel.subchannel_state(&self.subs[j]) == Connectivity::Connecting {
                self.replace(j, channel);
            }
        }
        self.report(channel, Connectivity::Ready, None);
    }

    /// Drops `subs[i]` (and its connection or attempt) for a fresh Idle one.
    fn replace(&mut self, i: usize, channel: &mut PolicyChannel<'_>) {
        let address = self.subs[i].address().clone();
        channel.remove_subchannel(&self.subs[i]);
        self.subs[i] = channel.new_subchannel(&address);
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
        let addresses = interleave(addresses);
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
            self.pass = None;
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
        let Some(i) = self.subs.iter().position(|s| s == sub) else {
            return;
        };
        if let Some(selected) = &self.selected {
            if selected == sub && state != Connectivity::Ready {
                // The connection ended: Idle until the next call, with fresh addresses.
                self.selected = None;
                self.report(channel, Connectivity::Idle, None);
                channel.request_resolution();
            } else if selected != sub && state == Connectivity::Ready {
                // A late attempt connected: one connection is enough.
                self.replace(i, channel);
            }
            return;
        }
        if let Some(pass) = self.pass {
            match state {
                Connectivity::Ready => self.select(i, channel),
                // The newest attempt failed, or the last address's: go on at once.
                Connectivity::TransientFailure
                    if i + 1 == pass.next || pass.next >= self.subs.len() =>
                {
                    self.advance(channel)
                }
                _ => {}
            }
            return;
        }
        let all_rested = self
            .subs
            .iter()
            .all(|s| channel.subchannel_state(s) != Connectivity::TransientFailure);
        if self.state == Connectivity::TransientFailure && all_rested {
            // Every backoff is over: the next call starts a new pass.
            self.report(channel, Connectivity::Idle, None);
        }
    }

    fn exit_idle(&mut self, channel: &mut PolicyChannel<'_>) {
        if self.selected.is_none() && self.pass.is_none() {
            if self.subs.is_empty() {
                channel.request_resolution();
            } else {
                self.start_pass(channel);
            }
        }
    }

    fn timer(&mut self, channel: &mut PolicyChannel<'_>) {
        let due = self
            .pass
            .and_then(|p| p.next_at)
            .is_some_and(|at| at <= channel.now());
        if due && self.selected.is_none() {
            self.advance(channel);
        }
    }

    fn pick(&mut self, _info: &PickInfo<'_>) -> PickResult {
        if let Some(selected) = &self.selected {
            return PickResult::Ready(selected.clone());
        }
        match (self.state, &self.error) {
            (Connectivity::TransientFailure, Some(error)) => PickResult::Fail(error.clone()),
            (Connectivity::TransientFailure, None) => {
                PickResult::Fail(Status::unavailable("no address accepted a connection"))
            }
            _ => PickResult::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_alternate_from_the_first_addresss() {
        let a = |s: &str| Address::tcp(s.parse().unwrap());
        let list = [
            a("[::1]:1"),
            a("[::2]:1"),
            a("10.0.0.1:1"),
            a("[::3]:1"),
            a("10.0.0.2:1"),
            Address::unix("/s"),
        ];
        let order: Vec<String> = interleave(list.iter().collect())
            .into_iter()
            .map(|a| a.endpoint.to_string())
            .collect();
        assert_eq!(
            order,
            [
                "[::1]:1",
                "10.0.0.1:1",
                "[::2]:1",
                "10.0.0.2:1",
                "[::3]:1",
                "unix:/s"
            ]
        );
        let v4: Vec<Address> = vec![a("10.0.0.2:1"), a("10.0.0.1:1")];
        let kept: Vec<&Address> = interleave(v4.iter().collect());
        assert_eq!(
            kept,
            v4.iter().collect::<Vec<_>>(),
            "one family keeps its order"
        );
    }
}

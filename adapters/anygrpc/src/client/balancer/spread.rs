//! What round_robin and least_request share: one subchannel per distinct address, each
//! connected and reconnected (at once when its connection ends, after its backoff when an
//! attempt failed), the list of the Ready ones, and the channel's state from theirs.

use anygrpc_core::Status;

use super::{PolicyChannel, PolicyUpdate, Subchannel};
use crate::client::channel::Connectivity;
use crate::client::resolver::Address;

/// `addresses` without repeated endpoints, in order.
pub(super) fn distinct(addresses: &[Address]) -> Vec<&Address> {
    let mut out: Vec<&Address> = Vec::with_capacity(addresses.len());
    for address in addresses {
        if !out.iter().any(|a| a.endpoint == address.endpoint) {
            out.push(address);
        }
    }
    out
}

struct Member {
    sub: Subchannel,
    state: Connectivity,
    /// Its last attempt failed, and it has not been Ready since.
    failed: bool,
}

/// Every address connected; calls go to the Ready ones.
#[derive(Default)]
pub(super) struct Spread {
    members: Vec<Member>,
    /// The Ready subchannels, in address order: rebuilt on each change, read by picks.
    pub(super) ready: Vec<Subchannel>,
    state: Option<Connectivity>,
    error: Option<Status>,
}

impl Spread {
    /// Takes the resolver's new list: keeps the subchannels still listed, connects new ones,
    /// drops the rest.
    pub(super) fn update(&mut self, update: &PolicyUpdate<'_>, channel: &mut PolicyChannel<'_>) {
        let addresses = distinct(update.addresses);
        let mut old = std::mem::take(&mut self.members);
        for address in addresses {
            match old
                .iter()
                .position(|m| m.sub.address().endpoint == address.endpoint)
            {
                Some(i) => self.members.push(old.swap_remove(i)),
                None => {
                    let sub = channel.new_subchannel(address);
                    channel.connect(&sub);
                    self.members.push(Member {
                        state: channel.subchannel_state(&sub),
                        sub,
                        failed: false,
                    });
                }
            }
        }
        for member in old {
            channel.remove_subchannel(&member.sub);
        }
        if self.members.is_empty() {
            self.error = Some(Status::unavailable("name resolution returned no addresses"));
        }
        self.aggregate(channel);
    }

    /// The resolver failed: only a policy that has no address yet fails.
    pub(super) fn resolver_error(&mut self, error: &Status, channel: &mut PolicyChannel<'_>) {
        if self.members.is_empty() {
            self.error = Some(error.clone());
            self.state = Some(Connectivity::TransientFailure);
            channel.set_state(Connectivity::TransientFailure, Some(error.clone()));
        }
    }

    pub(super) fn subchannel_state(
        &mut self,
        sub: &Subchannel,
        state: Connectivity,
        channel: &mut PolicyChannel<'_>,
    ) {
        let Some(member) = self.members.iter_mut().find(|m| &m.sub == sub) else {
            return;
        };
        let was = member.state;
        member.state = state;
        match state {
            Connectivity::Ready => member.failed = false,
            Connectivity::TransientFailure => {
                member.failed = true;
                self.error = channel.last_error().cloned();
                channel.request_resolution();
            }
            Connectivity::Idle => {
                if was == Connectivity::Ready {
                    channel.request_resolution();
                }
                channel.connect(sub);
                member.state = channel.subchannel_state(sub);
            }
            Connectivity::Connecting | Connectivity::Shutdown => {}
        }
        self.aggregate(channel);
    }

    /// Rebuilds the Ready list and reports Ready if any is, Connecting while one tries that
    /// has not failed, TransientFailure when all failed (gRPC's aggregation rule).
    fn aggregate(&mut self, channel: &mut PolicyChannel<'_>) {
        self.ready.clear();
        self.ready.extend(
            self.members
                .iter()
                .filter(|m| m.state == Connectivity::Ready)
                .map(|m| m.sub.clone()),
        );
        let members = &self.members;
        let state = if !self.ready.is_empty() {
            Connectivity::Ready
        } else if members
            .iter()
            .any(|m| !m.failed && matches!(m.state, Connectivity::Connecting | Connectivity::Idle))
        {
            Connectivity::Connecting
        } else {
            Connectivity::TransientFailure
        };
        let changed = self.state != Some(state);
        self.state = Some(state);
        if changed || state == Connectivity::Ready {
            let error = (state == Connectivity::TransientFailure)
                .then(|| self.error.clone())
                .flatten();
            channel.set_state(state, error);
        }
    }

    /// A pick with nothing Ready: fail fast in TransientFailure, else wait.
    pub(super) fn not_ready(&self) -> super::PickResult {
        match (self.state, &self.error) {
            (Some(Connectivity::TransientFailure), Some(error)) => {
                super::PickResult::Fail(error.clone())
            }
            (Some(Connectivity::TransientFailure), None) => {
                super::PickResult::Fail(Status::unavailable("no address is reachable"))
            }
            _ => super::PickResult::Wait,
        }
    }
}

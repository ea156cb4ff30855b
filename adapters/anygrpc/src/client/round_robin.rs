//! The round_robin policy: one subchannel (connection) per resolved address, each reconnecting
//! on its own backoff; calls go to the ready ones in turn.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;

use anygrpc_core::Status;

use super::backoff::Backoff;
use super::channel::{Channel, ChannelState, Connectivity, Endpoint, Pick, Watched};
use super::target::Target;
use crate::conn::handle::{Command, ConnHandle, Kick};
use crate::conn::policy::Urgency;
use std::time::Duration;

/// One address of a round_robin channel.
#[derive(Debug)]
pub(crate) struct Subchannel {
    addr: SocketAddr,
    conn: Option<Arc<ConnHandle>>,
    connecting: bool,
    /// The last attempt failed (and no connection came since).
    failed: bool,
    backoff: Backoff,
}

/// What round_robin keeps: one subchannel per resolved address, and where the rotation is.
#[derive(Debug, Default)]
pub(crate) struct RoundRobin {
    subchannels: Vec<Subchannel>,
    /// The next ready subchannel to use.
    next: usize,
    /// A resolution is in progress.
    resolving: bool,
    /// When the target was last resolved (re-resolution is rate-limited).
    resolved_at: Option<std::time::Instant>,
}

impl RoundRobin {
    /// Gives up every connection (the channel closes).
    pub(super) fn take_connections(&mut self) -> Vec<Arc<ConnHandle>> {
        self.subchannels.drain(..).filter_map(|s| s.conn).collect()
    }

    /// The channel's state from the subchannels': Ready if any is, Connecting if any tries,
    /// TransientFailure when all failed.
    fn connectivity(&self) -> Connectivity {
        let subchannels = &self.subchannels;
        if subchannels.iter().any(|s| s.conn.is_some()) {
            Connectivity::Ready
        } else if self.resolving || subchannels.iter().any(|s| s.connecting && !s.failed) {
            Connectivity::Connecting
        } else if subchannels.iter().any(|s| s.failed) {
            Connectivity::TransientFailure
        } else {
            Connectivity::Idle
        }
    }

    /// The next ready subchannel's connection, in turn; forgets dead ones.
    fn next_ready(&mut self) -> Option<Arc<ConnHandle>> {
        for sub in &mut self.subchannels {
            if sub.conn.as_ref().is_some_and(|c| !c.is_usable()) {
                sub.conn = None;
            }
        }
        let ready: Vec<usize> = (0..self.subchannels.len())
            .filter(|&i| self.subchannels[i].conn.is_some())
            .collect();
        if ready.is_empty() {
            return None;
        }
        let index = ready[self.next % ready.len()];
        self.next = self.next.wrapping_add(1);
        self.subchannels[index].conn.clone()
    }
}

/// The channel reports what its subchannels add up to.
fn aggregate(watched: &mut Watched, round_robin: &RoundRobin) {
    if watched.connectivity != Connectivity::Shutdown {
        watched.set(round_robin.connectivity());
    }
}

impl Channel {
    /// Picks the next ready subchannel; starts resolution and connections when none is.
    pub(super) fn pick_round_robin(&self, state: &mut ChannelState, wait_for_ready: bool) -> Pick {
        let Some((watched, rr)) = state.round_robin() else {
            return Pick::Fail(Status::internal(
                "the channel's balancer is not round_robin",
            ));
        };
        if let Some(conn) = rr.next_ready() {
            return Pick::Ready(conn);
        }
        let idle = rr.subchannels.iter().all(|s| !s.connecting && !s.failed);
        if !rr.resolving && (rr.subchannels.is_empty() || idle) {
            self.resolve_round_robin(watched, rr);
        }
        aggregate(watched, rr);
        match watched.connectivity {
            Connectivity::TransientFailure if !wait_for_ready => Pick::Fail(
                watched
                    .last_error
                    .clone()
                    .unwrap_or_else(|| Status::unavailable("no address is reachable")),
            ),
            Connectivity::Shutdown => Pick::Fail(Status::cancelled("the channel is closed")),
            _ => Pick::Wait,
        }
    }

    /// Re-resolves a DNS target after a connection failure, at most every 30 s.
    fn reresolve_after_failure(&self, watched: &mut Watched, rr: &mut RoundRobin) {
        let due = rr.resolved_at.is_none_or(|at| {
            self.inner.runtime.now().saturating_duration_since(at) >= Duration::from_secs(30)
        });
        if matches!(self.inner.target, Target::Dns { .. }) && !rr.resolving && due {
            self.resolve_round_robin(watched, rr);
        }
    }

    /// With `resolve_interval`, re-resolves the target on that period while the channel lives.
    fn spawn_periodic_resolution(&self) {
        let Some(interval) = self.inner.resolve_interval() else {
            return;
        };
        if !matches!(self.inner.target, Target::Dns { .. }) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let runtime = self.inner.runtime.clone();
        self.inner.runtime.spawn(Box::pin(async move {
            loop {
                runtime.sleep_until(runtime.now() + interval).await;
                let Some(inner) = weak.upgrade() else { return };
                let channel = Channel { inner };
                let mut state = channel.lock();
                let Some((watched, rr)) = state.round_robin() else {
                    return;
                };
                if watched.connectivity == Connectivity::Shutdown {
                    return;
                }
                if !rr.resolving {
                    channel.resolve_round_robin(watched, rr);
                }
            }
        }));
    }

    /// (Re-)resolves the target and connects every address that has no connection.
    fn resolve_round_robin(&self, watched: &mut Watched, rr: &mut RoundRobin) {
        if rr.resolved_at.is_none() {
            self.spawn_periodic_resolution();
        }
        rr.resolved_at = Some(self.inner.runtime.now());
        rr.resolving = true;
        watched.set(Connectivity::Connecting);
        let channel = self.clone();
        self.inner.runtime.spawn(Box::pin(async move {
            let resolved = channel.resolve().await;
            let mut state = channel.lock();
            let Some((watched, rr)) = state.round_robin() else {
                return;
            };
            rr.resolving = false;
            let addrs = match resolved {
                Ok(addrs) if !addrs.is_empty() => addrs,
                Ok(_) | Err(_) => {
                    let why = match resolved {
                        Err(e) => format!("name resolution failed: {e}"),
                        Ok(_) => "name resolution returned no addresses".to_string(),
                    };
                    crate::trace::resolve_failed(channel.inner.authority(), &why);
                    watched.last_error = Some(Status::unavailable(why));
                    watched.set(Connectivity::TransientFailure);
                    return;
                }
            };
            // Keep the subchannels still resolved, add new ones, shut down the rest.
            let old = std::mem::take(&mut rr.subchannels);
            for sub in old {
                if addrs.contains(&sub.addr) {
                    rr.subchannels.push(sub);
                } else if let Some(conn) = sub.conn {
                    let _ = conn
                        .enqueue([Command::Shutdown], Urgency::Control)
                        .map(Kick::run);
                }
            }
            for &addr in &addrs {
                if !rr.subchannels.iter().any(|s| s.addr == addr) {
                    // Jitter only needs to differ between subchannels.
                    let seed = u64::from(addr.port()) << 16 ^ rr.subchannels.len() as u64;
                    let config = channel.inner.options_backoff();
                    rr.subchannels.push(Subchannel {
                        addr,
                        conn: None,
                        connecting: false,
                        failed: false,
                        backoff: Backoff::new(config, seed),
                    });
                }
            }
            let idle: Vec<SocketAddr> = rr
                .subchannels
                .iter_mut()
                .filter(|s| s.conn.is_none() && !s.connecting)
                .map(|s| {
                    s.connecting = true;
                    s.addr
                })
                .collect();
            aggregate(watched, rr);
            drop(state);
            for addr in idle {
                channel.spawn_subchannel(addr);
            }
        }));
    }

    /// Connects one address, retrying on its own backoff until it is connected, removed, or the
    /// channel shuts down; reconnects when its connection ends.
    fn spawn_subchannel(&self, addr: SocketAddr) {
        let weak = Arc::downgrade(&self.inner);
        self.inner.runtime.spawn(Box::pin(async move {
            loop {
                let Some(channel) = weak.upgrade().map(|inner| Channel { inner }) else {
                    return;
                };
                let runtime = channel.inner.runtime.clone();
                let timeout = {
                    let mut state = channel.lock();
                    let Some((watched, rr)) = state.round_robin() else {
                        return;
                    };
                    match rr.subchannels.iter().find(|s| s.addr == addr) {
                        Some(sub) if watched.connectivity != Connectivity::Shutdown => {
                            sub.backoff.connect_timeout()
                        }
                        _ => return,
                    }
                };
                let attempt = channel.open(Endpoint::Tcp(addr), timeout).await;
                // What the attempt means, decided under the lock; the awaits come after it.
                let next = {
                    let mut state = channel.lock();
                    let found = state.round_robin().filter(|(watched, rr)| {
                        watched.connectivity != Connectivity::Shutdown
                            && rr.subchannels.iter().any(|s| s.addr == addr)
                    });
                    let Some((watched, rr)) = found else {
                        // Shut down, or no longer resolved, meanwhile.
                        if let Ok(shared) = attempt {
                            let _ = shared
                                .enqueue([Command::Close], Urgency::Control)
                                .map(Kick::run);
                        }
                        return;
                    };
                    let Some(sub) = rr.subchannels.iter_mut().find(|s| s.addr == addr) else {
                        return;
                    };
                    let next = match attempt {
                        Ok(shared) => {
                            crate::trace::connected(&addr.to_string());
                            sub.conn = Some(shared.clone());
                            sub.connecting = false;
                            sub.failed = false;
                            sub.backoff.reset();
                            Next::Watch(shared)
                        }
                        Err(e) => {
                            sub.failed = true;
                            let delay = sub.backoff.next_delay();
                            crate::trace::connect_failed(&addr.to_string(), &e.to_string(), delay);
                            watched.last_error = Some(Status::unavailable(format!(
                                "failed to connect to {addr}: {e}"
                            )));
                            channel.reresolve_after_failure(watched, rr);
                            Next::Retry(delay)
                        }
                    };
                    aggregate(watched, rr);
                    next
                };
                drop(channel);
                let delay = match next {
                    Next::Retry(delay) => delay,
                    Next::Watch(shared) => {
                        // Wait for this connection to end, then reconnect at once.
                        poll_fn(|cx| shared.poll_closed(cx)).await;
                        let Some(inner) = weak.upgrade() else { return };
                        let channel = Channel { inner };
                        let mut state = channel.lock();
                        let Some((watched, rr)) = state.round_robin() else {
                            return;
                        };
                        if let Some(sub) = rr.subchannels.iter_mut().find(|s| s.addr == addr) {
                            if sub.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, &shared)) {
                                sub.conn = None;
                                sub.connecting = true;
                            }
                        }
                        aggregate(watched, rr);
                        continue;
                    }
                };
                runtime.sleep_until(runtime.now() + delay).await;
            }
        }));
    }
}

/// After one connection attempt of a subchannel.
enum Next {
    /// Connected: watch the connection, reconnect when it ends.
    Watch(Arc<ConnHandle>),
    /// Failed: try again after this backoff.
    Retry(std::time::Duration),
}

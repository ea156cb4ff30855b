//! The channel's subchannels, owned here and nowhere else: per address, its connection (one
//! today; several once connections scale with MAX_CONCURRENT_STREAMS, gRFC A105), its
//! connectivity, its reconnect backoff, and the count of calls picked for it.
//!
//! A subchannel's states (grpc-go's addrConn): Idle → (connect) Connecting → Ready, or
//! TransientFailure → (its backoff) Idle. A Ready subchannel whose connection ends goes Idle.
//! Each change is told to the policy, which decides whether to connect again.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::Arc;

use anygrpc_core::Status;

use super::Subchannel;
use crate::client::backoff::{Backoff, BackoffConfig};
use crate::client::channel::{Channel, Connectivity};
use crate::client::resolver::Address;
use crate::conn::handle::{Command, ConnHandle, Kick};
use crate::conn::policy::Urgency;

/// One subchannel's state.
#[derive(Debug)]
struct Entry {
    handle: Subchannel,
    state: Connectivity,
    conn: Option<Arc<ConnHandle>>,
    backoff: Backoff,
    /// Which connection attempt is current: the tasks of older ones find it changed.
    attempt: u64,
    /// Picks given out for its connection, and how many calls the connection had started
    /// when it came (none, so far). Every call it starts was one of those picks, so the
    /// picks it has not started yet are the difference; a pick whose call ended before it
    /// was sent lingers in it until the connection ends.
    picked: u64,
    started_base: u64,
}

impl Entry {
    /// Calls picked for this subchannel and not yet ended.
    fn outstanding(&self) -> usize {
        let Some(conn) = &self.conn else { return 0 };
        let (active, started) = conn.activity();
        let sent = started.saturating_sub(self.started_base);
        let unsent = usize::try_from(self.picked.saturating_sub(sent)).unwrap_or(usize::MAX);
        active.saturating_add(unsent)
    }
}

/// Every subchannel of a channel.
#[derive(Debug)]
pub(crate) struct SubchannelTable {
    entries: HashMap<u64, Entry>,
    next_id: u64,
    backoff: BackoffConfig,
    seed: u64,
}

impl SubchannelTable {
    /// An empty table whose subchannels reconnect on `backoff`.
    pub(crate) fn new(backoff: BackoffConfig, seed: u64) -> Self {
        Self {
            entries: HashMap::new(),
            next_id: 1,
            backoff,
            seed,
        }
    }

    pub(super) fn add(&mut self, address: Address) -> Subchannel {
        let id = self.next_id;
        self.next_id += 1;
        let handle = Subchannel {
            id,
            address: Arc::new(address),
        };
        // Jitter only needs to differ between subchannels.
        let seed = self.seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.entries.insert(
            id,
            Entry {
                handle: handle.clone(),
                state: Connectivity::Idle,
                conn: None,
                backoff: Backoff::new(self.backoff, seed),
                attempt: 0,
                picked: 0,
                started_base: 0,
            },
        );
        handle
    }

    pub(super) fn state(&self, sub: &Subchannel) -> Connectivity {
        self.entries
            .get(&sub.id)
            .map_or(Connectivity::Shutdown, |e| e.state)
    }

    pub(super) fn outstanding(&self, sub: &Subchannel) -> usize {
        self.entries.get(&sub.id).map_or(0, Entry::outstanding)
    }

    /// Drops `sub`, closing its connection gracefully.
    pub(super) fn remove(&mut self, sub: &Subchannel) {
        if let Some(entry) = self.entries.remove(&sub.id) {
            shut_down(entry.conn);
        }
    }

    /// Drops every subchannel; gives their connections back.
    pub(crate) fn take_connections(&mut self) -> Vec<Arc<ConnHandle>> {
        self.entries.drain().filter_map(|(_, e)| e.conn).collect()
    }

    /// Calls in progress and calls ever started on all connections (for idleness).
    pub(super) fn activity(&self) -> (usize, u64) {
        self.entries
            .values()
            .filter_map(|e| e.conn.as_ref())
            .map(|c| c.activity())
            .fold((0, 0), |(a, s), (active, started)| {
                (a + active, s.wrapping_add(started))
            })
    }

    /// The connection of a Ready `sub` for a call, counted as one more outstanding call;
    /// `Err(true)` when its connection just ended (it is now Idle: tell the policy),
    /// `Err(false)` when it is not Ready.
    pub(super) fn take_pick(&mut self, sub: &Subchannel) -> Result<Arc<ConnHandle>, bool> {
        let entry = self.entries.get_mut(&sub.id).ok_or(false)?;
        let conn = entry.conn.clone().ok_or(false)?;
        if !conn.is_usable() {
            entry.conn = None;
            entry.state = Connectivity::Idle;
            return Err(true);
        }
        entry.picked += 1;
        Ok(conn)
    }

    /// Starts a connection attempt of an Idle `sub`.
    pub(super) fn connect(&mut self, sub: &Subchannel, channel: &Channel) {
        let Some(entry) = self.entries.get_mut(&sub.id) else {
            return;
        };
        if entry.state != Connectivity::Idle {
            return;
        }
        entry.state = Connectivity::Connecting;
        entry.attempt += 1;
        let (attempt, timeout) = (entry.attempt, entry.backoff.connect_timeout());
        let endpoint = entry.handle.address.endpoint.clone();
        let (channel, sub) = (channel.clone(), sub.clone());
        let runtime = channel.inner.runtime.clone();
        runtime.spawn(Box::pin(async move {
            let opened = channel.open(endpoint, timeout).await;
            channel.attempt_ended(&sub, attempt, opened);
        }));
    }

    /// Moves `sub` to `state` if `attempt` is still its current attempt; `true` if it did.
    fn settle(
        &mut self,
        sub: &Subchannel,
        attempt: u64,
        state: Connectivity,
        conn: Option<Arc<ConnHandle>>,
    ) -> bool {
        match self.entries.get_mut(&sub.id) {
            Some(entry) if entry.attempt == attempt => {
                entry.state = state;
                if let Some(conn) = conn {
                    entry.backoff.reset();
                    entry.picked = 0;
                    entry.started_base = conn.activity().1;
                    entry.conn = Some(conn);
                } else {
                    entry.conn = None;
                }
                true
            }
            _ => false,
        }
    }
}

/// Closes `conn` gracefully, if there is one.
fn shut_down(conn: Option<Arc<ConnHandle>>) {
    if let Some(conn) = conn {
        let _ = conn
            .enqueue([Command::Shutdown], Urgency::Control)
            .map(Kick::run);
    }
}

impl Channel {
    /// A connection attempt of `sub` ended: Ready (and watched until it ends), or
    /// TransientFailure until its backoff is over.
    fn attempt_ended(
        &self,
        sub: &Subchannel,
        attempt: u64,
        opened: std::io::Result<Arc<ConnHandle>>,
    ) {
        let runtime = self.inner.runtime.clone();
        let target = sub.address.endpoint.to_string();
        match opened {
            Ok(conn) => {
                let mut state = self.lock();
                let live = !state.is_shut_down()
                    && state.balancing.table.settle(
                        sub,
                        attempt,
                        Connectivity::Ready,
                        Some(conn.clone()),
                    );
                if !live {
                    drop(state);
                    let _ = conn
                        .enqueue([Command::Close], Urgency::Control)
                        .map(Kick::run);
                    return;
                }
                crate::trace::connected(self.inner.authority(), &target);
                self.tell_policy(state, sub, Connectivity::Ready);
                let weak = Arc::downgrade(&self.inner);
                let sub = sub.clone();
                runtime.spawn(Box::pin(async move {
                    poll_fn(|cx| conn.poll_closed(cx)).await;
                    let Some(inner) = weak.upgrade() else { return };
                    let channel = Channel { inner };
                    let mut state = channel.lock();
                    let still =
                        state.balancing.table.entries.get(&sub.id).is_some_and(|e| {
                            e.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn))
                        });
                    if still
                        && state
                            .balancing
                            .table
                            .settle(&sub, attempt, Connectivity::Idle, None)
                    {
                        channel.tell_policy(state, &sub, Connectivity::Idle);
                    }
                }));
            }
            Err(e) => {
                let mut state = self.lock();
                let Some(entry) = state.balancing.table.entries.get_mut(&sub.id) else {
                    return;
                };
                if entry.attempt != attempt {
                    return;
                }
                entry.state = Connectivity::TransientFailure;
                let delay = entry.backoff.next_delay();
                crate::trace::connect_failed(
                    self.inner.authority(),
                    &target,
                    &e.to_string(),
                    delay,
                );
                state.watched.last_error = Some(Status::unavailable(format!(
                    "failed to connect to {target}: {e}"
                )));
                self.tell_policy(state, sub, Connectivity::TransientFailure);
                let weak = Arc::downgrade(&self.inner);
                let sub = sub.clone();
                let sleep = runtime.sleep_until(runtime.now() + delay);
                runtime.spawn(Box::pin(async move {
                    sleep.await;
                    let Some(inner) = weak.upgrade() else { return };
                    let channel = Channel { inner };
                    let mut state = channel.lock();
                    if state
                        .balancing
                        .table
                        .settle(&sub, attempt, Connectivity::Idle, None)
                    {
                        channel.tell_policy(state, &sub, Connectivity::Idle);
                    }
                }));
            }
        }
    }
}

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
use std::task::Waker;
use std::time::{Duration, Instant};

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
    /// Its connections beyond the first (connection scaling, gRFC A105).
    scaled: Scaled,
}

/// A subchannel's connections beyond its first, opened when every one it has is at the
/// server's SETTINGS_MAX_CONCURRENT_STREAMS (up to the channel's
/// `max_connections_per_subchannel`), one attempt at a time, on the subchannel's backoff
/// after a failure; each closes again once idle for [`IDLE_EXTRA`], or with the first.
#[derive(Debug, Default)]
struct Scaled {
    conns: Vec<Arc<ConnHandle>>,
    /// An attempt to open another is in flight.
    connecting: bool,
    /// After a failed attempt: none other before this.
    not_before: Option<Instant>,
}

/// How long an extra connection may stay without calls before it closes.
const IDLE_EXTRA: Duration = Duration::from_secs(30);

/// A pick's connection, and whether a stream was claimed on it for the call.
#[derive(Debug)]
pub(in crate::client) struct Picked {
    pub(in crate::client) conn: Arc<ConnHandle>,
    pub(in crate::client) claimed: bool,
}

/// Why a subchannel gave no connection for a pick.
pub(super) enum Miss {
    /// It is not Ready.
    NotReady,
    /// Its connection just ended: it is Idle now (tell the policy).
    Lost,
    /// Every connection it has is at the server's stream limit: the call waits (woken when a
    /// stream frees); `true` when another connection should be opened for it.
    Full(bool),
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
    /// Connections a subchannel may hold (gRFC A105); 1: no scaling, and no cost per pick.
    max_connections: usize,
}

impl SubchannelTable {
    /// An empty table whose subchannels reconnect on `backoff`.
    pub(crate) fn new(backoff: BackoffConfig, seed: u64) -> Self {
        Self {
            entries: HashMap::new(),
            next_id: 1,
            backoff,
            seed,
            max_connections: 1,
        }
    }

    /// How many connections each subchannel may hold from now on (existing extra ones stay
    /// until idle).
    pub(crate) fn set_max_connections(&mut self, max: u32) {
        self.max_connections = usize::try_from(max.max(1)).unwrap_or(usize::MAX);
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
                scaled: Scaled::default(),
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
            entry
                .scaled
                .conns
                .into_iter()
                .for_each(|c| shut_down(Some(c)));
        }
    }

    /// Drops every subchannel; gives their connections back.
    pub(crate) fn take_connections(&mut self) -> Vec<Arc<ConnHandle>> {
        self.entries
            .drain()
            .flat_map(|(_, e)| e.conn.into_iter().chain(e.scaled.conns))
            .collect()
    }

    /// Calls in progress and calls ever started on all connections (for idleness).
    pub(super) fn activity(&self) -> (usize, u64) {
        self.entries
            .values()
            .flat_map(|e| e.conn.iter().chain(&e.scaled.conns))
            .map(|c| c.activity())
            .fold((0, 0), |(a, s), (active, started)| {
                (a + active, s.wrapping_add(started))
            })
    }

    /// The connection of a Ready `sub` for a call, counted as one more outstanding call.
    /// With connection scaling, the oldest of its connections with a stream free, claimed
    /// for the call; when none has one, the call waits (`waker` is woken when a stream frees)
    /// and another connection may be due (`now` is read only then).
    pub(super) fn take_pick(
        &mut self,
        sub: &Subchannel,
        waker: Option<&Waker>,
        now: impl FnOnce() -> Instant,
    ) -> Result<Picked, Miss> {
        let max = self.max_connections;
        let entry = self.entries.get_mut(&sub.id).ok_or(Miss::NotReady)?;
        let conn = entry.conn.clone().ok_or(Miss::NotReady)?;
        if !conn.is_usable() {
            entry.conn = None;
            entry.state = Connectivity::Idle;
            return Err(Miss::Lost);
        }
        if max <= 1 {
            entry.picked += 1;
            return Ok(Picked {
                conn,
                claimed: false,
            });
        }
        let scaled = &mut entry.scaled;
        scaled.conns.retain(|c| c.is_usable());
        for candidate in std::iter::once(&conn).chain(&scaled.conns) {
            if candidate.try_claim_stream(waker) {
                entry.picked += u64::from(Arc::ptr_eq(candidate, &conn));
                return Ok(Picked {
                    conn: candidate.clone(),
                    claimed: true,
                });
            }
        }
        let scale = 1 + scaled.conns.len() < max
            && !scaled.connecting
            && scaled.not_before.is_none_or(|at| now() >= at);
        scaled.connecting |= scale;
        Err(Miss::Full(scale))
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
        let address = entry.handle.address.clone();
        let (channel, sub) = (channel.clone(), sub.clone());
        let runtime = channel.inner.runtime.clone();
        runtime.spawn(Box::pin(async move {
            let opened = channel.open(address, timeout).await;
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
                    // The subchannel is down: its extra connections close with it (calls on
                    // them finish first), and scale again once it is back.
                    for extra in entry.scaled.conns.drain(..) {
                        shut_down(Some(extra));
                    }
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
    /// Opens another connection for `sub` (connection scaling), whose calls wait for it.
    pub(super) fn scale_up(&self, sub: &Subchannel) {
        let address = sub.address.clone();
        let timeout = self.inner.options_backoff().min_connect_timeout;
        let (channel, sub) = (self.clone(), sub.clone());
        self.inner.runtime.spawn(Box::pin(async move {
            let opened = channel.open(address, timeout).await;
            channel.scaled_attempt_ended(&sub, opened);
        }));
    }

    /// An attempt to open another connection for `sub` ended; the calls waiting for one
    /// pick again either way.
    fn scaled_attempt_ended(&self, sub: &Subchannel, opened: std::io::Result<Arc<ConnHandle>>) {
        let runtime = self.inner.runtime.clone();
        let mut state = self.lock();
        let now = runtime.now();
        let entry = state.balancing.table.entries.get_mut(&sub.id);
        let kept = match (entry, opened) {
            (Some(entry), Ok(conn)) if entry.conn.is_some() => {
                entry.scaled.connecting = false;
                entry.scaled.not_before = None;
                entry.backoff.reset();
                entry.scaled.conns.push(conn.clone());
                Some(conn)
            }
            (Some(entry), Err(e)) => {
                entry.scaled.connecting = false;
                let delay = entry.backoff.next_delay();
                entry.scaled.not_before = Some(now + delay);
                crate::trace::connect_failed(
                    self.inner.authority(),
                    &sub.address.endpoint.to_string(),
                    &e.to_string(),
                    delay,
                );
                // The calls waiting pick again once another attempt may go.
                let weak = Arc::downgrade(&self.inner);
                let sleep = runtime.sleep_until(now + delay);
                runtime.spawn(Box::pin(async move {
                    sleep.await;
                    if let Some(inner) = weak.upgrade() {
                        Channel { inner }.lock().watched.waiters.wake_all();
                    }
                }));
                None
            }
            (entry, Ok(conn)) => {
                // The subchannel went away or down meanwhile.
                if let Some(entry) = entry {
                    entry.scaled.connecting = false;
                }
                shut_down(Some(conn));
                None
            }
            (None, Err(_)) => None,
        };
        state.watched.waiters.wake_all();
        drop(state);
        if let Some(conn) = kept {
            self.watch_extra(sub.clone(), conn);
        }
    }

    /// Watches an extra connection of `sub`: it leaves the subchannel when it closes, and
    /// closes (gracefully) once it had no call for [`IDLE_EXTRA`].
    fn watch_extra(&self, sub: Subchannel, conn: Arc<ConnHandle>) {
        let weak = Arc::downgrade(&self.inner);
        let runtime = self.inner.runtime.clone();
        self.inner.runtime.spawn(Box::pin(async move {
            let mut last_started = conn.activity().1;
            loop {
                let mut idle = runtime.sleep_until(runtime.now() + IDLE_EXTRA);
                let closed = poll_fn(|cx| {
                    if conn.poll_closed(cx).is_ready() {
                        return std::task::Poll::Ready(true);
                    }
                    idle.as_mut().poll(cx).map(|()| false)
                })
                .await;
                let (active, started) = conn.activity();
                let unused = active == 0 && started == last_started;
                last_started = started;
                if !closed && !unused {
                    continue;
                }
                let Some(inner) = weak.upgrade() else { return };
                let channel = Channel { inner };
                let mut state = channel.lock();
                if let Some(entry) = state.balancing.table.entries.get_mut(&sub.id) {
                    entry.scaled.conns.retain(|c| !Arc::ptr_eq(c, &conn));
                }
                state.watched.waiters.wake_all();
                drop(state);
                if !closed {
                    shut_down(Some(conn));
                }
                return;
            }
        }));
    }

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

//! The pick_first policy: one connection, to the first resolved address that accepts (in
//! resolution order); when it ends the channel goes Idle and the next call connects again,
//! after a backoff when the last attempt failed.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use anygrpc_core::Status;

use super::backoff::Backoff;
use super::channel::{Channel, ChannelState, Connectivity, Endpoint, Pick, Watched};
use super::target::Target;
use crate::conn::handle::{Command, ConnHandle, Kick};
use crate::conn::policy::Urgency;

/// What pick_first keeps: its connection, its reconnect backoff, and (with the service
/// config's `shuffleAddressList`) the state of the generator that shuffles the addresses.
#[derive(Debug)]
pub(crate) struct PickFirst {
    conn: Option<Arc<ConnHandle>>,
    backoff: Backoff,
    shuffle: Option<u64>,
}

impl PickFirst {
    /// `shuffle`: the seed of the address shuffle (gRFC A62), or `None` to keep the
    /// resolver's order.
    pub(super) fn new(backoff: Backoff, shuffle: Option<u64>) -> Self {
        Self {
            conn: None,
            backoff,
            shuffle,
        }
    }

    /// Puts `addrs` in the order to try them: shuffled (Fisher-Yates, splitmix64) when the
    /// policy shuffles, as resolved otherwise.
    fn order<T>(&mut self, addrs: &mut [T]) {
        let Some(state) = &mut self.shuffle else {
            return;
        };
        for i in (1..addrs.len()).rev() {
            let z = super::backoff::splitmix64(state);
            // The modulo's bias (below 2^-50 here) does not matter for spreading load.
            let j = (z % (i as u64 + 1)) as usize;
            addrs.swap(i, j);
        }
    }

    /// Gives up the connection (the channel closes).
    pub(super) fn take_connection(&mut self) -> Option<Arc<ConnHandle>> {
        self.conn.take()
    }

    /// Forgets `conn` if it is still the current connection; `true` if it was.
    fn forget(&mut self, conn: &Arc<ConnHandle>) -> bool {
        if self.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            self.conn = None;
            return true;
        }
        false
    }

    /// Chooses the connection for a call: the current one while it takes calls; otherwise
    /// connects (through `connect`) or waits or fails as the channel's state says.
    pub(super) fn pick(
        &mut self,
        watched: &mut Watched,
        wait_for_ready: bool,
        connect: impl FnOnce(&mut Self, &mut Watched),
    ) -> Pick {
        if let Some(conn) = &self.conn {
            if conn.is_usable() {
                return Pick::Ready(conn.clone());
            }
            self.conn = None;
            watched.set(Connectivity::Idle);
        }
        match watched.connectivity {
            Connectivity::Shutdown => Pick::Fail(Status::cancelled("the channel is closed")),
            Connectivity::Idle | Connectivity::Ready => {
                connect(self, watched);
                Pick::Wait
            }
            Connectivity::Connecting => Pick::Wait,
            Connectivity::TransientFailure if wait_for_ready => Pick::Wait,
            Connectivity::TransientFailure => Pick::Fail(
                watched
                    .last_error
                    .clone()
                    .unwrap_or_else(|| Status::unavailable("the channel failed to connect")),
            ),
        }
    }
}

impl Channel {
    /// Starts a pick_first connection attempt.
    pub(super) fn start_connect(&self, pick_first: &mut PickFirst, watched: &mut Watched) {
        watched.set(Connectivity::Connecting);
        let timeout = pick_first.backoff.connect_timeout();
        let channel = self.clone();
        self.inner
            .runtime
            .spawn(Box::pin(async move { channel.connect(timeout).await }));
    }

    /// One connection attempt over every resolved address, in order (shuffled first if the
    /// policy shuffles).
    async fn connect(self, timeout: Duration) {
        let runtime = self.inner.runtime.clone();
        let result = match self.resolve().await {
            Err(e) => Err(format!("name resolution failed: {e}")),
            Ok(addrs) if addrs.is_empty() => {
                Err("name resolution returned no addresses".to_string())
            }
            Ok(mut addrs) => {
                if let Some((_, pick_first)) = self.lock().pick_first() {
                    pick_first.order(&mut addrs);
                }
                let mut last = String::new();
                let mut connected = None;
                for addr in addrs {
                    match self.open(Endpoint::Tcp(addr), timeout).await {
                        Ok(conn) => {
                            connected = Some(conn);
                            break;
                        }
                        Err(e) => last = format!("{addr}: {e}"),
                    }
                }
                connected.ok_or(last)
            }
        };
        let result = match (result, &self.inner.target) {
            (Err(_), Target::Unix(path)) => self
                .open(Endpoint::Unix(path.clone()), timeout)
                .await
                .map_err(|e| format!("{path}: {e}")),
            (result, _) => result,
        };
        match result {
            Ok(conn) => self.established(conn),
            Err(error) => {
                let delay = {
                    let mut state = self.lock();
                    let Some((watched, pick_first)) = state.pick_first() else {
                        return;
                    };
                    watched.last_error =
                        Some(Status::unavailable(format!("failed to connect: {error}")));
                    watched.set(Connectivity::TransientFailure);
                    pick_first.backoff.next_delay()
                };
                crate::trace::connect_failed(self.inner.authority(), &error, delay);
                runtime.sleep_until(runtime.now() + delay).await;
                let mut state = self.lock();
                if state.watched.connectivity == Connectivity::TransientFailure {
                    state.watched.set(Connectivity::Idle);
                }
            }
        }
    }

    /// The attempt connected: the channel is Ready, and a watcher takes it back to Idle when
    /// the connection ends or, after `idle_timeout` without a call, shuts it down first. The
    /// watcher holds the channel weakly, so dropping every `Channel` still closes it.
    fn established(&self, shared: Arc<ConnHandle>) {
        let runtime = self.inner.runtime.clone();
        {
            let mut state = self.lock();
            let shut = state.watched.connectivity == Connectivity::Shutdown;
            let Some((watched, pick_first)) = state.pick_first().filter(|_| !shut) else {
                let _ = shared
                    .enqueue([Command::Close], Urgency::Control)
                    .map(Kick::run);
                return;
            };
            pick_first.backoff.reset();
            pick_first.conn = Some(shared.clone());
            watched.set(Connectivity::Ready);
        }
        crate::trace::connected(self.inner.authority());
        let channel = Arc::downgrade(&self.inner);
        let idle = self.inner.idle_timeout();
        let clock = runtime.clone();
        runtime.spawn(Box::pin(async move {
            let runtime = clock;
            let mut seen = shared.activity().1;
            loop {
                let Some(idle) = idle else {
                    poll_fn(|cx| shared.poll_closed(cx)).await;
                    break;
                };
                let mut sleep = runtime.sleep_until(runtime.now() + idle);
                let closed = poll_fn(|cx| {
                    if shared.poll_closed(cx).is_ready() {
                        return Poll::Ready(true);
                    }
                    sleep.as_mut().poll(cx).map(|_| false)
                })
                .await;
                if closed {
                    break;
                }
                let (active, started) = shared.activity();
                if active == 0 && started == seen {
                    // Idle for a whole period: close gracefully, the channel goes Idle.
                    if let Some(inner) = channel.upgrade() {
                        forget(&mut Channel { inner }.lock(), &shared);
                    }
                    let _ = shared
                        .enqueue([Command::Shutdown], Urgency::Control)
                        .map(Kick::run);
                    poll_fn(|cx| shared.poll_closed(cx)).await;
                    break;
                }
                seen = started;
            }
            if let Some(inner) = channel.upgrade() {
                forget(&mut Channel { inner }.lock(), &shared);
            }
        }));
    }
}

/// The channel goes Idle if `conn` was its connection.
fn forget(state: &mut ChannelState, conn: &Arc<ConnHandle>) {
    if let Some((watched, pick_first)) = state.pick_first() {
        if pick_first.forget(conn) {
            watched.set(Connectivity::Idle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::backoff::BackoffConfig;

    #[test]
    fn shuffling_reorders_addresses_and_keeps_them_all() {
        let mut kept = PickFirst::new(Backoff::new(BackoffConfig::default(), 1), None);
        let mut addrs: Vec<u32> = (0..8).collect();
        kept.order(&mut addrs);
        assert_eq!(addrs, (0..8).collect::<Vec<_>>());

        let mut shuffled = PickFirst::new(Backoff::new(BackoffConfig::default(), 1), Some(7));
        let mut orders = std::collections::HashSet::new();
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut addrs: Vec<u32> = (0..8).collect();
            shuffled.order(&mut addrs);
            firsts.insert(addrs[0]);
            let mut sorted = addrs.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..8).collect::<Vec<_>>());
            orders.insert(addrs);
        }
        assert!(orders.len() > 40, "{} distinct orders of 50", orders.len());
        assert!(firsts.len() >= 6, "first addresses seen: {firsts:?}");
    }
}

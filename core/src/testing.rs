//! Two peers wired together in memory, for testing protocol behaviour without sockets: a
//! client and a server [`Connection`], bytes moved across in chosen chunk sizes, time advanced
//! by hand. The core's own scenario tests use it; so can an application's (feature
//! `testing`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::{CallRequest, Config, Connection, Event, Side, StreamId};

/// Two connected peers on a fake clock.
#[derive(Debug)]
pub struct Pair {
    /// The client's connection.
    pub client: Connection,
    /// The server's connection.
    pub server: Connection,
    /// The fake clock: moves only by [`Pair::sleep`] and [`Pair::advance`].
    pub now: Instant,
    /// Bytes handed to `recv` at a time.
    pub chunk: usize,
    /// The client's events since the last [`Pair::take_client_events`].
    pub client_events: Vec<Event>,
    /// The server's events since the last [`Pair::take_server_events`].
    pub server_events: Vec<Event>,
    /// Server: release message credit as soon as a message is seen.
    pub auto_release: bool,
}

impl Pair {
    /// A client and a server with the default configurations, handshake done, moving
    /// `chunk` bytes per `recv`.
    pub fn new(chunk: usize) -> Self {
        Self::with_configs(Config::client(), Config::server(), chunk)
    }

    /// A pair with these configurations, handshake done.
    pub fn with_configs(client: Config, server: Config, chunk: usize) -> Self {
        let now = Instant::now();
        let mut pair = Self {
            client: Connection::new(Side::Client, Arc::new(client), now),
            server: Connection::new(Side::Server, Arc::new(server), now),
            now,
            chunk,
            client_events: Vec::new(),
            server_events: Vec::new(),
            auto_release: true,
        };
        assert!(pair.drive(), "handshake settles");
        pair
    }

    /// Moves bytes both ways until both sides are quiet; `false` if not settled in 1,000 rounds.
    pub fn drive(&mut self) -> bool {
        for _ in 0..1000 {
            let moved = shuttle(&mut self.client, &mut self.server, self.now, self.chunk)
                + shuttle(&mut self.server, &mut self.client, self.now, self.chunk);
            let events = self.collect_events();
            if moved == 0 && !events {
                return true;
            }
        }
        false
    }

    fn collect_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.client.poll_event() {
            if self.auto_release {
                if let Event::Message { stream, message } = &event {
                    self.client.release_capacity(*stream, message.credit());
                }
            }
            self.client_events.push(event);
            any = true;
        }
        while let Some(event) = self.server.poll_event() {
            if self.auto_release {
                if let Event::Message { stream, message } = &event {
                    self.server.release_capacity(*stream, message.credit());
                }
            }
            self.server_events.push(event);
            any = true;
        }
        any
    }

    /// Jumps the fake clock to the earlier `poll_timeout` of the two and fires both.
    pub fn advance(&mut self) -> bool {
        let next = [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(at) = next else { return false };
        self.now = self.now.max(at);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.drive()
    }

    /// Moves the clock forward by `d` and fires due timers.
    pub fn sleep(&mut self, d: Duration) {
        self.now += d;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
    }

    /// Starts a client call of `path` (authority `test.local`).
    pub fn start(&mut self, path: &str) -> StreamId {
        self.client
            .start_call(CallRequest::new(path.to_string(), "test.local"), self.now)
            .expect("start_call")
    }

    /// The client's events so far, taken.
    pub fn take_client_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.client_events)
    }

    /// The server's events so far, taken.
    pub fn take_server_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.server_events)
    }
}

/// Moves everything `from` wants to send into `to`, `chunk` bytes per `recv`.
pub fn shuttle(from: &mut Connection, to: &mut Connection, now: Instant, chunk: usize) -> usize {
    let mut wire = BytesMut::new();
    while from.poll_transmit(&mut wire) > 0 {}
    for piece in wire.chunks(chunk.max(1)) {
        to.recv(piece, now);
    }
    wire.len()
}

/// Messages received on `stream`, in order.
pub fn messages(events: &[Event], stream: StreamId) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { stream: s, message } if *s == stream => {
                Some(message.decode(usize::MAX).expect("decodes"))
            }
            _ => None,
        })
        .collect()
}

/// Streams of the `CallStarted` events, in order.
pub fn started(events: &[Event]) -> Vec<StreamId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::CallStarted { stream, .. } => Some(*stream),
            _ => None,
        })
        .collect()
}

/// The `Finished` event of `stream`, if any.
pub fn finished(events: &[Event], stream: StreamId) -> Option<&Event> {
    events
        .iter()
        .find(|e| matches!(e, Event::Finished { stream: s, .. } if *s == stream))
}

/// Chunk sizes every scenario runs with: byte by byte, odd splits, and whole.
pub const CHUNKS: [usize; 3] = [1, 7, usize::MAX];

/// Runs `scenario` once at each of [`CHUNKS`], saying which split failed.
pub fn at_every_split(scenario: fn(usize)) {
    for chunk in CHUNKS {
        if let Err(panic) = std::panic::catch_unwind(|| scenario(chunk)) {
            eprintln!("the scenario failed with input fed {chunk} bytes at a time");
            std::panic::resume_unwind(panic);
        }
    }
}

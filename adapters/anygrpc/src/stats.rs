//! Stats handlers: a seam that sees the life of every call and connection of a channel or a
//! server (when each began and ended, with what status, its metadata, and the size of every
//! message in and out), for metrics. `anygrpc-otel` builds gRFC A66's OpenTelemetry
//! instruments on it.
//!
//! A channel or server without a handler pays nothing for the seam: each place that reports
//! checks for a recorder it does not have. A handler's code never runs under a connection's
//! driver: events the driver learns (a call's response headers and end, a connection's close)
//! reach the handler once the driver's turn has let go, and events of messages reach it in the
//! call's own task. A panic in a handler is caught and leaves the call as it was.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anygrpc_core::{Metadata, Status};

/// Observes the calls and connections of a channel or server
/// ([`ChannelBuilder::stats_handler`](crate::ChannelBuilder::stats_handler),
/// [`Server::add_stats_handler`](crate::Server::add_stats_handler)).
pub trait StatsHandler: Send + Sync + 'static {
    /// A call begins: the recorder of its events, or `None` to leave this call alone.
    fn call_started(&self, call: &CallInfo<'_>) -> Option<Box<dyn CallStats>>;

    /// A connection of this channel or server opened or closed.
    fn connection(&self, event: &ConnectionEvent<'_>) {
        let _ = event;
    }
}

/// Records one call's events, in the order they happened.
pub trait CallStats: Send + 'static {
    /// One event of the call.
    fn record(&mut self, event: &CallEvent<'_>);
}

/// Which side of a call or connection is reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsSide {
    /// A channel's call or connection.
    Client,
    /// A server's.
    Server,
}

impl StatsSide {
    pub(crate) fn of(side: anygrpc_core::Side) -> Self {
        match side {
            anygrpc_core::Side::Client => Self::Client,
            anygrpc_core::Side::Server => Self::Server,
        }
    }
}

/// What a call is, when it begins.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallInfo<'a> {
    /// Whose call it is.
    pub side: StatsSide,
    /// `/package.Service/Method`.
    pub method: &'a str,
    /// Client: the channel's target, as given. Server: empty.
    pub target: &'a str,
    /// Server: the client's address. Client: empty (a call picks its connection later).
    pub peer: &'a str,
    /// When the call began.
    pub started: Instant,
}

/// One event of a call. Sizes are in bytes: `size` of the message as the application sees
/// it, `wire_size` as it travels (compressed when `compressed`), neither counting gRPC's
/// 5-byte prefix. Events come in the order they happened, and a call's end comes last.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CallEvent<'a> {
    /// Client: an attempt of the call goes to a connection; `transparent_retry` when the
    /// connection refused an earlier one before it was processed.
    AttemptStarted {
        /// This attempt retries one the server never processed.
        transparent_retry: bool,
    },
    /// The request head (client) or response head (server) was sent.
    HeadersSent {
        /// Its metadata.
        metadata: &'a Metadata,
    },
    /// The request head (server) or response head (client) arrived.
    HeadersReceived {
        /// Its metadata.
        metadata: &'a Metadata,
    },
    /// A message went to the connection.
    MessageSent {
        /// Size before compression.
        size: usize,
        /// Size as sent.
        wire_size: usize,
        /// Whether it was compressed.
        compressed: bool,
    },
    /// A message arrived: client, from the connection (whether or not the application reads
    /// it); server, as the handler reads it.
    MessageReceived {
        /// Size after decompression, when known: a compressed message is decompressed only
        /// when the application reads it, in its own task.
        size: Option<usize>,
        /// Size as received.
        wire_size: usize,
        /// Whether it was compressed.
        compressed: bool,
    },
    /// The call ended (once, last of its events).
    Ended {
        /// Its final status (client: as received or decided locally; server: as sent).
        status: &'a Status,
        /// Its trailing metadata.
        trailers: &'a Metadata,
    },
}

/// A connection opened or closed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectionEvent<'a> {
    /// It is established (client: connected, TLS done; server: accepted).
    Opened {
        /// Whose connection it is.
        side: StatsSide,
        /// The other end's address.
        peer: &'a str,
    },
    /// It is over.
    Closed {
        /// Whose connection it is.
        side: StatsSide,
        /// The other end's address.
        peer: &'a str,
        /// Why, when it closed on an error.
        error: Option<&'a str>,
    },
}

/// The stats handlers of a channel or server, in the order they were added.
#[derive(Clone, Default)]
pub(crate) struct StatsHandlers(Arc<[Arc<dyn StatsHandler>]>);

impl fmt::Debug for StatsHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatsHandlers({})", self.0.len())
    }
}

impl StatsHandlers {
    /// These and `handler` after them.
    pub(crate) fn with(&self, handler: Arc<dyn StatsHandler>) -> Self {
        Self(self.0.iter().cloned().chain([handler]).collect())
    }

    /// The recorder of a call beginning, when any handler wants its events.
    pub(crate) fn call_started(&self, call: &CallInfo<'_>) -> Option<CallRecorder> {
        if self.0.is_empty() {
            return None;
        }
        let recorders: Vec<Box<dyn CallStats>> = self
            .0
            .iter()
            .filter_map(|h| crate::user_code::observed(|| h.call_started(call)).flatten())
            .collect();
        (!recorders.is_empty()).then(|| {
            CallRecorder(Arc::new(Mutex::new(Recorders {
                each: recorders,
                ended: false,
            })))
        })
    }

    /// Tells every handler about a connection event.
    pub(crate) fn connection(&self, event: &ConnectionEvent<'_>) {
        for handler in self.0.iter() {
            crate::user_code::observe(|| handler.connection(event));
        }
    }

    /// Whether there are none (a connection then reports nothing).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where one call's events go: the recorders its handlers gave, shared by the call's parts
/// (its sender, its reader, its end).
#[derive(Clone)]
pub(crate) struct CallRecorder(Arc<Mutex<Recorders>>);

struct Recorders {
    each: Vec<Box<dyn CallStats>>,
    /// The end was recorded: nothing more is (a server call ends when it sends its status,
    /// or when the client or the connection cuts it off, whichever comes first).
    ended: bool,
}

impl fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallRecorder")
    }
}

impl CallRecorder {
    /// Records that a message of `wire_size` bytes arrived.
    pub(crate) fn received(&self, wire_size: usize, compressed: bool) {
        self.record(&CallEvent::MessageReceived {
            size: (!compressed).then_some(wire_size),
            wire_size,
            compressed,
        });
    }

    /// Records `event` with every recorder of the call, unless the call's end was recorded.
    pub(crate) fn record(&self, event: &CallEvent<'_>) {
        // A recorder that panicked is caught below, so the list is whole: a poisoned lock holds
        // nothing half-done.
        let mut recorders = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if recorders.ended {
            return;
        }
        recorders.ended = matches!(event, CallEvent::Ended { .. });
        for recorder in recorders.each.iter_mut() {
            crate::user_code::observe(|| recorder.record(event));
        }
    }
}

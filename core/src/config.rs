//! Connection configuration: every limit, with its default, unit and the memory it bounds.

use core::time::Duration;

/// Settings and limits of one [`Connection`](crate::Connection). Shared (`Arc`) between all
/// connections a client or server makes; `Config::default()` follows the gRPC defaults.
///
/// New limits may be added in any release: start from [`Config::client`] or
/// [`Config::server`] and change what you need, by field or with the setter of the same name
/// (`Config::server().max_concurrent_streams(100)`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// SETTINGS_HEADER_TABLE_SIZE we advertise: bytes of HPACK dynamic table the peer's encoder may
    /// make us keep. Default 4096 (RFC 7541). Bounds the decoder's memory per connection.
    pub header_table_size: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise (servers) or allow the peer (clients). Streams
    /// beyond it are refused with RST_STREAM(REFUSED_STREAM). Default 1024 on servers, 100 on clients.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise: bytes the peer may send on one stream before we
    /// release credit (1 ..= 2^31-1). Until the peer acknowledges our SETTINGS, streams accept
    /// the RFC default of 65,535 if that is larger. Default 1 MiB. Bounds buffered complete
    /// messages per stream.
    pub initial_stream_window: u32,
    /// Receive window of the whole connection, raised from 65,535 by a WINDOW_UPDATE right after
    /// our SETTINGS: what the peer may have sent and we not yet freed. Its credit comes back as
    /// the memory it filled is freed (see `recv_budget`). Default 16 MiB.
    pub connection_window: u32,
    /// Bytes of memory one connection holds for its peer at most: messages being reassembled,
    /// messages delivered and not yet released, the heads of live calls and per-stream and
    /// per-message bookkeeping (see `Connection::held_for_peer`). The connection window we
    /// advertise never exceeds what is left of it; when it is full,
    /// `Connection::wants_input` turns `false` (stop reading until the application releases
    /// messages), and when most of it is held by messages that cannot complete, the newest of
    /// them fail with RESOURCE_EXHAUSTED. At least twice `max_recv_message_size` plus 64 KiB
    /// plus 9 KiB per stream of `max_concurrent_streams`, so that one message of the largest
    /// size can always complete while every stream holds what it may. Default 32 MiB.
    pub recv_budget: usize,
    /// SETTINGS_MAX_FRAME_SIZE we advertise: the largest frame payload we accept (16,384 ..=
    /// 16,777,215). Default 1 MiB, so a large message arrives in one frame and is handed on
    /// without being reassembled. Bounds the read buffer.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce on every received header block
    /// (CONTINUATION chains included), counted as RFC 9113 §6.5.2 does. Default 16 KiB.
    /// Blocks are decoded fragment by fragment as they arrive, so a larger one fails only its
    /// call (RESOURCE_EXHAUSTED on a server, INTERNAL on a client) and the HPACK context
    /// stays in step, up to a hard cap on the block's raw bytes: 1 MiB, or twice this plus
    /// 1 KiB if larger; the frame that would pass it closes the connection with
    /// ENHANCE_YOUR_CALM before it is buffered. Only one field cut by a frame boundary is
    /// ever buffered, and one larger than twice this plus 1 KiB (or than
    /// `header_table_size` plus 1 KiB) closes the connection the same way.
    pub max_header_list_size: u32,
    /// Largest gRPC message we accept (after decompression too). Default 4 MiB. Larger messages
    /// end the call with RESOURCE_EXHAUSTED; their declared length is never allocated.
    pub max_recv_message_size: usize,
    /// Largest gRPC message we send. Default `usize::MAX` (no limit), as in gRPC.
    pub max_send_message_size: usize,
    /// Bytes queued for sending on one stream beyond which `send_message` refuses more until an
    /// `Event::Writable`. One message is always accepted on an empty queue. Default 1 MiB.
    pub max_send_buffer: usize,
    /// How long our SETTINGS may go unacknowledged before we close with SETTINGS_TIMEOUT.
    /// Default 10 s.
    pub settings_timeout: Duration,
    /// How long a header block may stay incomplete: from the first byte of a HEADERS frame
    /// (or of a frame header not yet complete) until the END_HEADERS of its last CONTINUATION.
    /// A peer slower than this (slowloris) is closed with GOAWAY(ENHANCE_YOUR_CALM). Dribbling
    /// does not extend it. Default 10 s. Bounds how long a connection holds a partial request head.
    pub header_block_timeout: Duration,
    /// Send a keepalive PING after this long without receiving anything. Default `None` (off).
    pub keepalive_time: Option<Duration>,
    /// Close the connection when a keepalive PING is not acknowledged within this. Default 20 s.
    pub keepalive_timeout: Duration,
    /// Send keepalive PINGs even when no call is in progress. Default `false` (keepalive.md
    /// `permit_without_calls`): an idle connection is left alone.
    pub keepalive_permit_without_calls: bool,
    /// Server: how often a client may ping (keepalive.md enforcement). `None` accepts any rate
    /// (the idle-frame budget still applies). Default on servers: 5 min, 2 strikes, no pings
    /// without calls; off on clients.
    pub ping_policy: Option<PingPolicy>,
    /// Server: a connection with no call for this long is closed gracefully (GOAWAY).
    /// Default `None` (never).
    pub max_connection_idle: Option<Duration>,
    /// Server: a connection older than this is closed gracefully (GOAWAY); calls in flight get
    /// `max_connection_age_grace`, then the connection closes. Default `None` (never).
    pub max_connection_age: Option<Duration>,
    /// Server: how long calls may still run after `max_connection_age`. Default `None`
    /// (as long as they need).
    pub max_connection_age_grace: Option<Duration>,
    /// Abuse budget: frames that cost us work but carry nothing (PING, SETTINGS, empty DATA and
    /// CONTINUATION, PRIORITY, WINDOW_UPDATE for idle streams), as a token bucket of this burst
    /// refilled at `idle_frame_rate` per second. Exhausted: GOAWAY(ENHANCE_YOUR_CALM).
    pub idle_frame_burst: u32,
    /// Refill rate of `idle_frame_burst`, per second. Default 1000.
    pub idle_frame_rate: u32,
    /// Abuse budget: streams the peer opens and resets before the application saw them, streams
    /// refused for exceeding our concurrency limit, and RST_STREAMs the peer's errors provoke us
    /// into sending (CVE-2023-44487 rapid reset, CVE-2025-8671 MadeYouReset). Burst; default 200.
    pub reset_burst: u32,
    /// Refill rate of `reset_burst`, per second. Default 100.
    pub reset_rate: u32,
    /// Control frames (SETTINGS ACK, PING ACK, RST_STREAM) we may have queued and not yet
    /// written. A peer that makes us queue more (and does not read) is closed with
    /// ENHANCE_YOUR_CALM. Default 1024.
    pub max_pending_control_frames: usize,
    /// Bytes `poll_transmit` writes into one buffer before returning. Default 256 KiB.
    pub transmit_budget: usize,
    /// `user-agent` sent by clients. Default `anygrpc/<version>`.
    pub user_agent: &'static str,
}

/// How often a client may send PINGs to a server (gRPC keepalive.md, server enforcement).
/// Start from `PingPolicy::default()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PingPolicy {
    /// Shortest accepted interval between two PINGs while calls are in progress. Default 5 min.
    pub min_interval: Duration,
    /// PINGs allowed while no call is in progress; `false` counts each as a strike unless 2 h
    /// apart. Default `false`.
    pub permit_without_calls: bool,
    /// Early PINGs tolerated before GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"); strikes are
    /// forgiven whenever we send headers or data. Default 2.
    pub max_strikes: u32,
}

impl Default for PingPolicy {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(300),
            permit_without_calls: false,
            max_strikes: 2,
        }
    }
}

impl Config {
    /// Defaults for a client connection.
    pub fn client() -> Self {
        Self {
            max_concurrent_streams: 100,
            ping_policy: None,
            ..Self::server()
        }
    }

    /// Defaults for a server connection.
    pub fn server() -> Self {
        Self {
            header_table_size: 4096,
            max_concurrent_streams: 1024,
            initial_stream_window: 1 << 20,
            connection_window: 16 << 20,
            recv_budget: 32 << 20,
            max_frame_size: 1 << 20,
            max_header_list_size: 16 << 10,
            max_recv_message_size: 4 << 20,
            max_send_message_size: usize::MAX,
            max_send_buffer: 1 << 20,
            settings_timeout: Duration::from_secs(10),
            header_block_timeout: Duration::from_secs(10),
            keepalive_time: None,
            keepalive_timeout: Duration::from_secs(20),
            keepalive_permit_without_calls: false,
            ping_policy: Some(PingPolicy::default()),
            max_connection_idle: None,
            max_connection_age: None,
            max_connection_age_grace: None,
            idle_frame_burst: 1000,
            idle_frame_rate: 1000,
            reset_burst: 200,
            reset_rate: 100,
            max_pending_control_frames: 1024,
            transmit_budget: 256 << 10,
            user_agent: concat!("anygrpc/", env!("CARGO_PKG_VERSION")),
        }
    }

    /// The values clamped into what the protocol allows (windows, frame size).
    pub(crate) fn sanitized(&self) -> Self {
        let mut c = self.clone();
        c.initial_stream_window = c.initial_stream_window.clamp(1, (1 << 31) - 1);
        c.connection_window = c.connection_window.clamp(65_535, (1 << 31) - 1);
        c.max_frame_size = c.max_frame_size.clamp(16_384, (1 << 24) - 1);
        c.transmit_budget = c.transmit_budget.max(16 << 10);
        // Room for one message of the largest size to complete, and for what every stream
        // may hold however little it received (its state and its slab), whatever else is held.
        let per_stream = crate::connection::STREAM_COST + 2 * crate::grpc::message::SLAB;
        let floor = (c.max_recv_message_size.saturating_mul(2))
            .saturating_add(64 << 10)
            .saturating_add((c.max_concurrent_streams as usize).saturating_mul(per_stream));
        c.recv_budget = c.recv_budget.max(floor);
        c
    }
}

/// Chainable setters, one per field, each named as its field (whose doc says what it is).
macro_rules! setters {
    ($name:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        impl $name {
            $(
                #[doc = concat!("Sets `", stringify!($field), "` (see the field of that name).")]
                #[must_use]
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters!(Config {
    header_table_size: u32,
    max_concurrent_streams: u32,
    initial_stream_window: u32,
    connection_window: u32,
    recv_budget: usize,
    max_frame_size: u32,
    max_header_list_size: u32,
    max_recv_message_size: usize,
    max_send_message_size: usize,
    max_send_buffer: usize,
    settings_timeout: Duration,
    header_block_timeout: Duration,
    keepalive_time: Option<Duration>,
    keepalive_timeout: Duration,
    keepalive_permit_without_calls: bool,
    ping_policy: Option<PingPolicy>,
    max_connection_idle: Option<Duration>,
    max_connection_age: Option<Duration>,
    max_connection_age_grace: Option<Duration>,
    idle_frame_burst: u32,
    idle_frame_rate: u32,
    reset_burst: u32,
    reset_rate: u32,
    max_pending_control_frames: usize,
    transmit_budget: usize,
    user_agent: &'static str,
});

setters!(PingPolicy {
    min_interval: Duration,
    permit_without_calls: bool,
    max_strikes: u32,
});

impl Default for Config {
    fn default() -> Self {
        Self::server()
    }
}

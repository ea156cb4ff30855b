//! The driven HTTP/2 connection carrying gRPC calls.

mod budget;
mod calls;
mod flow_control;
mod held;
mod recv;
mod state;
mod streams;
mod timers;
mod transmit;

use std::borrow::Cow;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::config::Config;
use crate::error::{ConnectionError, ErrorCode, StreamId};
use crate::event::Event;
use crate::grpc::{Encoding, EncodingSet, Metadata, Status};
use crate::hpack;

use budget::Budget;
use flow_control::{DEFAULT_WINDOW, RecvWindow, SendWindow};
use state::StreamState;
use streams::{Stream, StreamMap};
use timers::{Timer, TimerTable};

pub use calls::CallError;
pub(crate) use held::STREAM_COST;
pub use transmit::Transmit;

/// The 24 bytes a client sends before anything else (RFC 9113 §3.4).
pub const CLIENT_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// We opened the connection and start calls.
    Client,
    /// We accepted the connection and answer calls.
    Server,
}

/// `:scheme` of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Cleartext (h2c, prior knowledge).
    Http,
    /// Over TLS.
    Https,
}

/// Everything a client needs to start a call. [`Connection::start_call`] takes it shared
/// (`Arc`), so a caller that may send the call again (a retry) keeps it without a copy; a
/// static `path` and an authority shared by a channel's calls cost no allocation.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// `:path`, `/package.Service/Method`.
    pub path: Cow<'static, str>,
    /// `:authority`, usually `host:port`.
    pub authority: Arc<str>,
    /// `:scheme`.
    pub scheme: Scheme,
    /// The call's timeout, sent as `grpc-timeout` (the time left when the headers are written)
    /// and enforced locally: the call ends with DEADLINE_EXCEEDED and the stream is reset.
    pub timeout: Option<Duration>,
    /// Custom metadata.
    pub metadata: Metadata,
    /// Compression of the messages we send (`grpc-encoding`); `None` sends them plain.
    pub encoding: Option<Encoding>,
    /// What we accept from the server (`grpc-accept-encoding`).
    pub accept_encoding: EncodingSet,
}

impl CallRequest {
    /// A request for `path` on `authority` over cleartext, without timeout or metadata.
    pub fn new(path: impl Into<Cow<'static, str>>, authority: impl Into<Arc<str>>) -> Self {
        Self {
            path: path.into(),
            authority: authority.into(),
            scheme: Scheme::Http,
            timeout: None,
            metadata: Metadata::new(),
            encoding: None,
            accept_encoding: EncodingSet::supported(),
        }
    }
}

/// What the peer told us in SETTINGS (RFC 9113 §6.5.2), with the RFC's initial values.
#[derive(Debug, Clone, Copy)]
struct PeerSettings {
    max_concurrent_streams: u32,
    initial_window: u32,
    max_frame_size: u32,
    max_header_list_size: u32,
}

/// A header block arriving in HEADERS + CONTINUATION frames, decoded fragment by fragment
/// (its fields gather in `Connection::fields`).
#[derive(Debug)]
struct HeaderAssembly {
    stream: StreamId,
    end_stream: bool,
    block: hpack::PartialBlock,
    /// The HEADERS frame that started the block is a stream error (its code and reason):
    /// the block is decoded all the same, then the stream is reset.
    stream_error: Option<(ErrorCode, &'static str)>,
}

/// An allocation for large DATA frames: an empty handle to it, and where it starts and how
/// large it is, so that a frame placed in it is known to sit at its front.
#[derive(Debug, Default)]
struct FrameAlloc {
    buf: BytesMut,
    start: usize,
    size: usize,
}

impl FrameAlloc {
    /// An empty buffer at the front of an allocation of at least `total` bytes, and that
    /// allocation's size: the kept one when nothing uses it any more and it is not more than
    /// twice too large, else a new one of exactly `total`.
    fn take(&mut self, total: usize) -> (BytesMut, usize) {
        let mut buf = std::mem::take(&mut self.buf);
        let fits = (total..=total.saturating_mul(2)).contains(&self.size);
        if fits && buf.try_reclaim(self.size) && buf.as_ptr() as usize == self.start {
            return (buf, self.size);
        }
        let buf = BytesMut::with_capacity(total);
        self.start = buf.as_ptr() as usize;
        self.size = buf.capacity();
        (buf, self.size)
    }
}

/// A control frame waiting to be written.
#[derive(Debug, Clone)]
enum Control {
    Settings,
    SettingsAck,
    Ping {
        payload: [u8; 8],
        ack: bool,
    },
    RstStream {
        stream: StreamId,
        code: ErrorCode,
    },
    WindowUpdate {
        stream: StreamId,
        increment: u32,
    },
    GoAway {
        last_stream: StreamId,
        code: ErrorCode,
        debug: Bytes,
    },
}

/// Our progress through shutting the connection down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    /// Running.
    None,
    /// Server: GOAWAY(2^31-1) and a PING are out; the PING's ACK tells us which streams the
    /// client started before it saw the GOAWAY.
    Announced,
    /// The final GOAWAY is out; we close once the remaining streams are done.
    Draining,
}

/// Streams of the peer's we reset before it ended them, remembered so that the frames it
/// sent meanwhile are discarded (see `Connection::note_reset`).
const RECENT_RESETS: usize = 128;

/// SETTINGS_HEADER_TABLE_SIZE before the peer acknowledged ours (RFC 9113 §6.5.2).
const DEFAULT_HEADER_TABLE_SIZE: usize = 4096;

/// PING payloads carry their purpose in the first byte.
const PING_APP: u8 = 1;
const PING_KEEPALIVE: u8 = 2;
const PING_SHUTDOWN: u8 = 3;

/// One HTTP/2 connection carrying gRPC calls. Does no I/O and never reads a clock.
///
/// Inputs: [`recv`](Self::recv) / [`recv_bytes`](Self::recv_bytes) with what the transport
/// read, [`handle_timeout`](Self::handle_timeout) when [`poll_timeout`](Self::poll_timeout)'s
/// instant is reached, and the call commands ([`start_call`](Self::start_call),
/// [`send_message`](Self::send_message), ...). After any input, call
/// [`poll_transmit`](Self::poll_transmit) until it returns 0 and write what it produced,
/// [`poll_event`](Self::poll_event) until `None`, then [`poll_timeout`](Self::poll_timeout).
/// `now` never goes backwards.
///
/// A protocol violation by the peer queues GOAWAY with the right code and ends with
/// [`Event::Closed`]; a failure of one stream resets that stream and ends its call with a gRPC
/// [`Status`]. Misuse by the application returns a [`CallError`]. Nothing panics.
#[derive(Debug)]
pub struct Connection {
    side: Side,
    config: Arc<Config>,
    now: Instant,

    read_buf: BytesMut,
    /// `read_buf` is being filled with one large DATA frame of this many bytes, at the front
    /// of `frame_alloc` (its messages may be handed on as views of it); the small-frame
    /// buffer waits in `small_buf` meanwhile.
    dedicated_frame: Option<usize>,
    small_buf: BytesMut,
    /// The allocation large DATA frames are gathered into, kept (as an empty handle) between
    /// frames so that the next one reuses it once the last one's messages are gone.
    frame_alloc: FrameAlloc,
    /// `read_buf` is an allocation of this many bytes handed in by `recv_bytes`.
    read_backing: Option<usize>,
    /// While a frame is being processed: the size of the allocation its payload lies alone in.
    frame_backing: Option<usize>,
    /// The size of `frame_alloc`'s allocation the dedicated frame in progress lies in.
    frame_backing_size: usize,
    /// Memory held for the peer (see `held.rs`), and the part of it in partial messages.
    held: usize,
    held_partial: usize,
    /// Server: bytes of the client preface not yet matched.
    preface_expected: usize,
    got_peer_settings: bool,
    assembly: Option<HeaderAssembly>,
    decoder: hpack::Decoder,
    fields: Vec<hpack::Field>,

    encoder: hpack::Encoder,
    header_scratch: transmit::HeaderScratch,
    block_scratch: BytesMut,
    /// Client: the preface is still to be written.
    preface_pending: bool,
    control: VecDeque<Control>,
    /// Streams with something to write, in rotation.
    send_ready: VecDeque<StreamId>,

    peer: PeerSettings,
    /// SETTINGS frames we sent and the peer has not acknowledged.
    settings_unacked: u32,
    /// The peer acknowledged our first SETTINGS: our initial stream window is in force.
    settings_acked: bool,

    conn_send: SendWindow,
    conn_recv: RecvWindow,

    streams: StreamMap,
    next_local_id: u32,
    last_peer_id: StreamId,
    /// Highest stream id of ours that the peer has seen HEADERS for.
    last_local_sent: StreamId,
    local_active: u32,
    remote_active: u32,
    /// Client calls waiting for the peer's concurrency limit, in id order.
    pending_open: VecDeque<StreamId>,
    deadlines: BTreeSet<(Instant, StreamId)>,

    events: VecDeque<Event>,

    ping_seq: u64,
    app_pings: VecDeque<(u64, Instant)>,
    keepalive_outstanding: bool,
    timers: TimerTable,

    shutdown: Shutdown,
    goaway_received: Option<StreamId>,
    /// The last stream id of the last GOAWAY we queued.
    goaway_sent: Option<StreamId>,
    /// Server: streams the peer opened above our final GOAWAY's last stream id, ignored.
    opened_after_goaway: u32,
    /// `Some` once the connection is over; the GOAWAY (if any) may still be in `control`.
    closed: Option<Option<ConnectionError>>,

    idle_budget: Budget,
    /// DATA frames that move almost nothing (see `recv.rs`), one per KiB of connection window.
    sliver_budget: Budget,
    reset_budget: Budget,
    /// Server: streams the peer reset before the application saw their call (rapid reset,
    /// whatever the reason the call was not announced yet), and streams refused over the
    /// concurrency limit: what the reset budget paid for, for tests and fuzzing.
    resets_unseen: u64,
    refused_over_limit: u64,
    /// The peer's streams we reset before it ended them, oldest first (`note_reset`).
    recent_resets: VecDeque<StreamId>,
    /// Server keepalive enforcement: early PINGs since we last sent headers or data.
    ping_strikes: u32,
    /// When the last PING arrived since we last sent headers or data.
    last_ping_recv: Option<Instant>,
}

impl Connection {
    /// A new connection in `side`'s role. A client's preface and SETTINGS (a server's SETTINGS)
    /// are ready in `poll_transmit` at once.
    pub fn new(side: Side, config: Arc<Config>, now: Instant) -> Self {
        let config = Arc::new(config.sanitized());
        let mut conn = Self {
            side,
            now,
            read_buf: BytesMut::new(),
            dedicated_frame: None,
            small_buf: BytesMut::new(),
            frame_alloc: FrameAlloc::default(),
            read_backing: None,
            frame_backing: None,
            frame_backing_size: 0,
            held: 0,
            held_partial: 0,
            preface_expected: if side == Side::Server {
                CLIENT_PREFACE.len()
            } else {
                0
            },
            got_peer_settings: false,
            assembly: None,
            // RFC 9113 §4.3.1: the table starts at 4,096 bytes; ours is in force once the
            // peer acknowledged our SETTINGS (`on_settings`).
            decoder: hpack::Decoder::new(DEFAULT_HEADER_TABLE_SIZE),
            fields: Vec::new(),
            encoder: hpack::Encoder::new(),
            header_scratch: transmit::HeaderScratch::default(),
            block_scratch: BytesMut::new(),
            preface_pending: side == Side::Client,
            control: VecDeque::new(),
            send_ready: VecDeque::new(),
            peer: PeerSettings {
                // Until the peer's SETTINGS arrive a client assumes 100, as grpc-go does,
                // rather than the RFC's "unlimited" that would invite REFUSED_STREAM.
                max_concurrent_streams: 100,
                initial_window: DEFAULT_WINDOW,
                max_frame_size: 16_384,
                max_header_list_size: u32::MAX,
            },
            settings_unacked: 1,
            settings_acked: false,
            conn_send: SendWindow::new(DEFAULT_WINDOW),
            conn_recv: RecvWindow::new(DEFAULT_WINDOW, config.connection_window),
            streams: StreamMap::default(),
            next_local_id: if side == Side::Client { 1 } else { 2 },
            last_peer_id: StreamId(0),
            last_local_sent: StreamId(0),
            local_active: 0,
            remote_active: 0,
            pending_open: VecDeque::new(),
            deadlines: BTreeSet::new(),
            events: VecDeque::new(),
            ping_seq: 0,
            app_pings: VecDeque::new(),
            keepalive_outstanding: false,
            timers: TimerTable::default(),
            shutdown: Shutdown::None,
            goaway_received: None,
            goaway_sent: None,
            opened_after_goaway: 0,
            closed: None,
            idle_budget: Budget::new(config.idle_frame_burst, config.idle_frame_rate),
            sliver_budget: Budget::new(
                config.idle_frame_burst.max(config.connection_window / 1024),
                config.idle_frame_rate,
            ),
            reset_budget: Budget::new(config.reset_burst, config.reset_rate),
            resets_unseen: 0,
            refused_over_limit: 0,
            recent_resets: VecDeque::new(),
            ping_strikes: 0,
            last_ping_recv: None,
            config,
        };
        conn.control.push_back(Control::Settings);
        let raise = conn.config.connection_window.saturating_sub(DEFAULT_WINDOW);
        if let Some(increment) = conn.conn_recv.grant(raise) {
            conn.control.push_back(Control::WindowUpdate {
                stream: StreamId::CONNECTION,
                increment,
            });
        }
        conn.timers
            .set(Timer::SettingsAck, now + conn.config.settings_timeout);
        conn.arm_keepalive();
        if side == Side::Server {
            if let Some(age) = conn.config.max_connection_age {
                conn.timers.set(Timer::Age, now + age);
            }
            conn.arm_idle();
        }
        conn
    }

    /// Our role.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The configuration in force (after clamping into protocol limits).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Server: how many streams the peer reset before the application saw their call, and
    /// how many it opened over the concurrency limit (refused).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn reset_spending(&self) -> (u64, u64) {
        (self.resets_unseen, self.refused_over_limit)
    }

    /// The next thing that happened, if any. Events of one stream come in protocol order.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        match &event {
            Event::Finished { stream, .. } | Event::Cancelled { stream, .. } => {
                let stream = *stream;
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.mark_done();
                }
                self.maybe_forget(stream);
                self.maybe_finish_shutdown();
            }
            Event::CallStarted { stream, .. } => {
                // From now on a reset of this call is a cancellation, not rapid reset.
                if let Some(s) = self.streams.get_mut(stream) {
                    s.announced = true;
                }
            }
            _ => {}
        }
        Some(event)
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        let deadline = self.deadlines.first().map(|(at, _)| *at);
        match (self.timers.next(), deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `true` once the connection is over and everything it had to say was written.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some() && self.control.is_empty()
    }

    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS: how many calls this side may have open at
    /// once (more wait in the connection until one ends). A client assumes 100 until the
    /// server's first SETTINGS say otherwise; `u32::MAX` when the peer set no limit.
    pub fn peer_max_concurrent_streams(&self) -> u32 {
        self.peer.max_concurrent_streams
    }

    /// `true` once the peer's first SETTINGS arrived (its limits, such as
    /// [`peer_max_concurrent_streams`](Self::peer_max_concurrent_streams), are known).
    pub fn peer_settings_received(&self) -> bool {
        self.got_peer_settings
    }

    /// Number of calls in progress (started and not yet forgotten).
    pub fn active_calls(&self) -> usize {
        self.streams.len()
    }

    /// `true` while new calls may be started on this connection.
    pub fn accepts_calls(&self) -> bool {
        self.closed.is_none()
            && self.goaway_received.is_none()
            && self.shutdown == Shutdown::None
            && self.next_local_id <= StreamId::MAX.0
    }

    /// Sends a PING; its ACK is reported as [`Event::PingAcknowledged`] with the round trip.
    pub fn ping(&mut self, now: Instant) -> Result<(), CallError> {
        self.check_open()?;
        self.now = now;
        self.ping_seq += 1;
        let seq = self.ping_seq;
        self.app_pings.push_back((seq, now));
        self.control.push_back(Control::Ping {
            payload: ping_payload(PING_APP, seq),
            ack: false,
        });
        Ok(())
    }

    /// Starts a graceful shutdown: no new calls; calls in progress run to completion, then the
    /// connection closes. A server first announces GOAWAY(2^31-1) and waits one PING round
    /// trip for the calls the client already sent (RFC 9113 §6.8).
    pub fn shutdown(&mut self, now: Instant) {
        if self.closed.is_some() || self.shutdown != Shutdown::None {
            return;
        }
        self.now = now;
        match self.side {
            Side::Server => {
                self.shutdown = Shutdown::Announced;
                let last_stream = self.goaway_last(StreamId::MAX);
                self.control.push_back(Control::GoAway {
                    last_stream,
                    code: ErrorCode::NO_ERROR,
                    debug: Bytes::new(),
                });
                self.control.push_back(Control::Ping {
                    payload: ping_payload(PING_SHUTDOWN, 0),
                    ack: false,
                });
                self.timers
                    .set(Timer::Shutdown, now + self.config.settings_timeout);
            }
            Side::Client => {
                self.send_final_goaway();
                self.fail_pending_opens();
            }
        }
        self.maybe_finish_shutdown();
    }

    /// Ends the connection at once: GOAWAY(`code`), every call ends (UNAVAILABLE / cancelled).
    pub fn close(&mut self, code: ErrorCode, now: Instant) {
        self.now = now;
        self.close_with(
            ConnectionError::Local,
            Some(code),
            "closed by the application",
        );
    }

    /// The receive window a new stream starts with: ours once acknowledged, before that at least
    /// the RFC default the peer may still be using.
    fn initial_recv_window(&self) -> u32 {
        if self.settings_acked {
            self.config.initial_stream_window
        } else {
            self.config.initial_stream_window.max(DEFAULT_WINDOW)
        }
    }

    /// The transport ended (EOF, reset, I/O error): every call still running ends with
    /// UNAVAILABLE; nothing more is sent.
    pub fn transport_closed(&mut self, now: Instant) {
        self.now = now;
        if self.closed.is_none() {
            self.close_with(ConnectionError::TransportClosed, None, "transport closed");
        }
        self.control.clear();
    }

    fn check_open(&self) -> Result<(), CallError> {
        if self.closed.is_some() {
            Err(CallError::ConnectionClosed)
        } else {
            Ok(())
        }
    }

    /// Ends the connection: queues GOAWAY with `code` (when given), ends every call, reports
    /// [`Event::Closed`]. Later input is ignored.
    fn close_with(&mut self, error: ConnectionError, code: Option<ErrorCode>, reason: &str) {
        if self.closed.is_some() {
            return;
        }
        // Our SETTINGS still opens the connection if it was not written yet (RFC 9113 §3.4).
        self.control.retain(|c| matches!(c, Control::Settings));
        self.send_ready.clear();
        if let Some(code) = code {
            let last_stream = self.goaway_last(self.last_peer_id);
            self.control.push_back(Control::GoAway {
                last_stream,
                code,
                debug: Bytes::copy_from_slice(reason.as_bytes()),
            });
        }
        let status = Status::unavailable(format!("connection closed: {error}"));
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        let mut ids = ids;
        ids.sort_unstable();
        for id in ids {
            let unprocessed = self.side == Side::Client
                && self
                    .streams
                    .get(&id)
                    .is_some_and(|s| s.state == StreamState::Idle);
            self.end_call(id, status.clone(), unprocessed);
        }
        self.pending_open.clear();
        self.deadlines.clear();
        self.read_buf = BytesMut::new();
        self.assembly = None;
        self.fields = Vec::new();
        self.events.push_back(Event::Closed {
            error: if error == ConnectionError::Local && code == Some(ErrorCode::NO_ERROR) {
                None
            } else {
                Some(error.clone())
            },
        });
        self.closed = Some(Some(error));
    }

    /// A protocol violation by the peer: GOAWAY(`code`) and close.
    fn protocol_error(&mut self, code: ErrorCode, reason: &'static str) {
        self.close_with(
            ConnectionError::Protocol { code, reason },
            Some(code),
            reason,
        );
    }

    /// Reports the end of a call to the application, once: later causes are ignored. Drops
    /// whatever the call still had to send. The caller resets the stream on the wire if needed.
    fn end_call(&mut self, id: StreamId, status: Status, unprocessed: bool) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.reported() {
            return;
        }
        stream.mark_reported();
        stream.clear_send();
        stream.end_receiving();
        clear_deadline(&mut self.deadlines, id, stream);
        let event = if stream.local {
            Event::Finished {
                stream: id,
                status,
                metadata: Metadata::new(),
                unprocessed,
            }
        } else {
            Event::Cancelled { stream: id, status }
        };
        self.events.push_back(event);
        self.recharge(id);
    }

    /// Moves `id` to Closed on the wire, releasing its concurrency slot.
    fn set_state(&mut self, id: StreamId, next: StreamState) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.state = next;
        if next == StreamState::Closed {
            clear_deadline(&mut self.deadlines, id, stream);
            if stream.local && stream.counted {
                stream.counted = false;
                self.local_active = self.local_active.saturating_sub(1);
                self.open_pending_calls();
            }
        }
        self.maybe_forget(id);
    }

    /// Forgets a stream once it is closed on the wire and the application is done with it.
    /// Server streams keep their concurrency slot until then (rapid-reset mitigation).
    fn maybe_forget(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get(&id) else {
            return;
        };
        if stream.state != StreamState::Closed || !stream.app_done() {
            return;
        }
        let local = stream.local;
        let counted = stream.counted;
        if let Some(stream) = self.streams.remove(&id) {
            self.uncharge(&stream);
        }
        if !local && counted {
            self.remote_active = self.remote_active.saturating_sub(1);
        }
        if self.streams.is_empty() {
            self.arm_idle();
        }
        self.maybe_finish_shutdown();
    }

    /// Queues RST_STREAM for `id` and closes it on our side.
    fn reset_stream(&mut self, id: StreamId, code: ErrorCode) {
        let peer_may_send = self
            .streams
            .get(&id)
            .is_some_and(|s| !s.local && s.state.can_recv());
        self.queue_reset(id, code, peer_may_send);
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.clear_send();
        let state =
            state::next(stream.state, state::Transition::SendReset).unwrap_or(StreamState::Closed);
        self.set_state(id, state);
        self.check_control_backlog();
    }

    /// Queues RST_STREAM `code` for `id`; `peer_may_send`: the peer has not ended the stream,
    /// so what it sent before it sees the reset is remembered as such ([`Self::note_reset`]).
    /// The caller checks the control backlog once its own work is done.
    pub(super) fn queue_reset(&mut self, id: StreamId, code: ErrorCode, peer_may_send: bool) {
        self.control
            .push_back(Control::RstStream { stream: id, code });
        if peer_may_send {
            self.note_reset(id);
        }
    }

    /// We reset (or refused) the peer's stream `id` before the peer ended it: until its
    /// END_STREAM or RST_STREAM arrives, frames it sent before it saw the reset may follow,
    /// and must be minimally processed and discarded (RFC 9113 §5.1 "closed", §5.4.2). The
    /// newest [`RECENT_RESETS`] are remembered; a HEADERS on an older one is taken for a
    /// reused stream id (§5.1.1).
    fn note_reset(&mut self, id: StreamId) {
        if self.recent_resets.len() == RECENT_RESETS {
            self.recent_resets.pop_front();
        }
        self.recent_resets.push_back(id);
    }

    /// `true` when `id` is a stream we reset that the peer may still send on; `ended`: the
    /// frame in hand ends it on the peer's side, and it is forgotten.
    fn was_reset(&mut self, id: StreamId, ended: bool) -> bool {
        let Some(pos) = self.recent_resets.iter().position(|&r| r == id) else {
            return false;
        };
        if ended {
            self.recent_resets.remove(pos);
        }
        true
    }

    /// The last stream id for a GOAWAY we send: `last`, but never more than a GOAWAY we sent
    /// before (RFC 9113 §6.8: the peer may already have retried the streams above it; streams
    /// it opened after our final GOAWAY were refused, not processed).
    fn goaway_last(&mut self, last: StreamId) -> StreamId {
        let last = self.goaway_sent.map_or(last, |sent| sent.min(last));
        self.goaway_sent = Some(last);
        last
    }

    /// A peer that makes us queue control frames faster than it reads them is cut off.
    fn check_control_backlog(&mut self) {
        if self.control.len() > self.config.max_pending_control_frames {
            self.protocol_error(
                ErrorCode::ENHANCE_YOUR_CALM,
                "too many queued control frames",
            );
        }
    }

    fn arm_keepalive(&mut self) {
        if let Some(interval) = self.config.keepalive_time {
            if !self.keepalive_outstanding {
                self.timers.set(Timer::KeepalivePing, self.now + interval);
            }
        }
    }

    /// Server: (re)starts the idle timer when no call is in progress.
    fn arm_idle(&mut self) {
        if let Some(idle) = self.config.max_connection_idle {
            if self.streams.is_empty() && self.side == Side::Server {
                self.timers.set(Timer::Idle, self.now + idle);
            } else {
                self.timers.clear(Timer::Idle);
            }
        }
    }

    fn send_final_goaway(&mut self) {
        self.shutdown = Shutdown::Draining;
        self.timers.clear(Timer::Shutdown);
        let last_stream = self.goaway_last(self.last_peer_id);
        self.control.push_back(Control::GoAway {
            last_stream,
            code: ErrorCode::NO_ERROR,
            debug: Bytes::new(),
        });
    }

    /// Client calls still waiting for a stream slot will never be sent.
    fn fail_pending_opens(&mut self) {
        while let Some(id) = self.pending_open.pop_front() {
            self.end_call(id, Status::unavailable("connection is shutting down"), true);
            self.set_state(id, StreamState::Closed);
        }
    }

    /// Closes the connection cleanly when it is draining and no call is left.
    fn maybe_finish_shutdown(&mut self) {
        if self.closed.is_some() || !self.streams.is_empty() {
            return;
        }
        let draining = self.shutdown == Shutdown::Draining;
        let peer_done = self.goaway_received.is_some();
        if draining || peer_done {
            self.events.push_back(Event::Closed { error: None });
            self.closed = Some(None);
        }
    }
}

/// Forgets `stream`'s deadline, in the stream and in the connection's timer set.
fn clear_deadline(
    deadlines: &mut BTreeSet<(Instant, StreamId)>,
    id: StreamId,
    stream: &mut Stream,
) {
    if let Some(deadline) = stream.deadline.take() {
        deadlines.remove(&(deadline, id));
    }
}

fn ping_payload(kind: u8, seq: u64) -> [u8; 8] {
    let mut payload = seq.to_be_bytes();
    payload[0] = kind;
    payload
}

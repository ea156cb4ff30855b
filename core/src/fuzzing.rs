//! Entry points of the fuzz targets in `core/fuzz/` (ARCHITECTURE.md §11), smoke-tested by
//! `cargo test` too. Each takes arbitrary bytes; it panics only when an invariant of the crate
//! is broken (a round trip that changes a value, output out of proportion to input, a call
//! that ends twice or never), never because the input is malformed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use crate::config::Config;
use crate::connection::{CLIENT_PREFACE, CallRequest, Connection, Side};
use crate::error::{ErrorCode, StreamId};
use crate::event::Event;
use crate::grpc::{Code, MessageDecoder, MessageError, Metadata, RawMessage, Status};
use crate::reader::Reader;

/// Frames parsed from `data` re-encode to the same frames (`frame_roundtrip` target).
pub fn frame_roundtrip(data: &[u8]) {
    crate::frame::fuzz_roundtrip(data);
}

/// Header blocks from `data` decode within the table and list limits (`hpack_decode` target).
pub fn hpack_decode(data: &[u8]) {
    crate::hpack::fuzz_decode(data);
}

/// `data` as gRPC message framing pushed into a [`MessageDecoder`] in chunks whose sizes come
/// from `data` itself, with a limit of at most 63 bytes; the messages and the error must be those
/// of a plain sequential parse of the same bytes (`message_decode` target).
///
/// Layout: a limit byte, then chunks as a length byte and that many bytes.
pub fn message_decode(data: &[u8]) {
    let mut input = Input::new(data);
    let limit = usize::from(input.byte() & 0x3f);
    let mut decoder = MessageDecoder::new(limit);
    let (mut wire, mut got, mut error) = (Vec::new(), Vec::new(), None);
    while !input.is_empty() {
        let len = usize::from(input.byte());
        let chunk = input.bytes(len);
        wire.extend_from_slice(chunk);
        decoder.push(Bytes::copy_from_slice(chunk));
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => got.push(message),
                Ok(None) => break,
                Err(e) => {
                    assert!(error.is_none_or(|first| first == e), "error changed to {e}");
                    error = Some(e);
                    break;
                }
            }
        }
    }
    let (expected, expected_error, rest) = reference_messages(&wire, limit);
    assert_eq!(got, expected, "messages differ from the reference parse");
    assert_eq!(
        error, expected_error,
        "error differs from the reference parse"
    );
    if error.is_none() {
        assert_eq!(decoder.is_mid_message(), rest > 0, "{rest} bytes left over");
    }
}

/// The messages in `wire`, the framing error ending them, and the bytes of an incomplete
/// message left at the end.
fn reference_messages(wire: &[u8], limit: usize) -> (Vec<RawMessage>, Option<MessageError>, usize) {
    let mut messages = Vec::new();
    let mut rest = wire;
    while let Some((&[flag, a, b, c, d], body)) = rest.split_first_chunk::<5>() {
        let size = u32::from_be_bytes([a, b, c, d]);
        if flag > 1 {
            return (messages, Some(MessageError::BadFlag(flag)), 0);
        }
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        if len > limit {
            let size = u64::from(size);
            return (messages, Some(MessageError::TooLarge { size, limit }), 0);
        }
        let Some((data, tail)) = body.split_at_checked(len) else {
            break;
        };
        messages.push(RawMessage {
            compressed: flag == 1,
            data: Bytes::copy_from_slice(data),
        });
        rest = tail;
    }
    (messages, None, rest.len())
}

/// Arbitrary bytes fed to one [`Connection`] at splits chosen by `data`, with application
/// commands and clock jumps in between (`connection_recv` target). Must hold: no panic, output
/// and events in proportion to input, `active_calls` within the concurrency limit, every call
/// ends exactly once, nothing happens after `Closed`.
///
/// Layout: a mode byte (bit 0: client instead of server; bit 1: tight limits; bit 2: keep
/// message credit; bit 3: no valid preface + SETTINGS first; bits 4-5: client calls to start
/// minus one), then records: a byte below 0xe0 feeds the next `byte + 1` bytes to `recv`; a
/// byte from 0xe0 is a command (see `Harness::command`) taking the following byte as argument.
pub fn connection_recv(data: &[u8]) {
    run_connection_recv(data);
}

fn run_connection_recv(data: &[u8]) -> Harness {
    let mut input = Input::new(data);
    let mut harness = Harness::new(input.byte());
    while !input.is_empty() {
        match input.byte() {
            len @ 0..0xe0 => harness.feed(input.bytes(usize::from(len) + 1)),
            op => harness.command(op - 0xe0, input.byte()),
        }
    }
    harness.finish();
    harness
}

/// A sequence of application operations on a client [`Connection`] wired to a server
/// [`Connection`] through in-memory buffers delivered in pieces chosen by `data` (`stream_ops`
/// target). Must hold: no panic, messages arrive intact and in order, every started call ends
/// with exactly one `Finished` (client) and one end (server) once all is delivered, the
/// remaining calls cancelled and the timers run, and neither side closes with an error.
///
/// Layout: a mode byte (bit 0: small windows and buffers; bits 1-2: delivery chunk; bit 3: the
/// client keeps message credit until told), then
/// operations as an op byte and an argument byte (see `Pair::op`).
pub fn stream_ops(data: &[u8]) {
    run_stream_ops(data);
}

fn run_stream_ops(data: &[u8]) -> Pair {
    let mut input = Input::new(data);
    let mut pair = Pair::new(input.byte());
    while !input.is_empty() {
        let op = input.byte();
        pair.op(op, input.byte());
    }
    pair.finish();
    pair
}

/// Fuzz input read front to back; reads past the end give zeros and empty slices.
struct Input<'a>(Reader<'a>);

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self(Reader::new(data))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn byte(&mut self) -> u8 {
        self.0.u8().unwrap_or(0)
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.remaining());
        self.0.take(n).unwrap_or_default()
    }
}

/// What a connection holds for its peer stays within its receive budget, give or take one
/// message being reassembled and one input's bookkeeping. Cheap: checked at every step.
fn assert_held_within_budget(conn: &Connection) {
    let config = conn.config();
    // What one input (at most 4 KiB here) can add past the budget before input pauses: a
    // message's reassembly growth, its messages' bookkeeping, a new stream with its head and
    // its slab.
    let slack = config.max_recv_message_size
        + 4096 * crate::event::Message::OVERHEAD
        + crate::connection::STREAM_COST
        + 2 * crate::grpc::message::SLAB
        + 2 * config.max_header_list_size as usize;
    let held = conn.held_for_peer();
    assert!(
        held <= config.recv_budget + slack,
        "{held} bytes held for the peer, budget {}: {:?}",
        config.recv_budget,
        conn.held_breakdown()
    );
}

/// The connection's sums are those of its streams. A walk over every stream: checked once
/// per operation, not at every step (a drift stays until the sums are recomputed, which
/// they never are).
fn assert_held_consistent(conn: &Connection) {
    assert!(
        conn.held_is_consistent(),
        "held sums drifted from the streams': {:?}",
        conn.held_breakdown()
    );
}

/// Limits small enough for fuzzing to reach every one of them.
fn tight_config(side: Side) -> Config {
    Config {
        header_table_size: 256,
        max_concurrent_streams: 3,
        initial_stream_window: 65_535,
        connection_window: 65_535,
        max_header_list_size: 512,
        max_recv_message_size: 100,
        recv_budget: 0, // the least allowed: twice the message limit plus 64 KiB
        max_send_buffer: 256,
        settings_timeout: Duration::from_secs(1),
        keepalive_time: Some(Duration::from_secs(2)),
        keepalive_timeout: Duration::from_secs(1),
        idle_frame_burst: 20,
        idle_frame_rate: 10,
        reset_burst: 5,
        reset_rate: 1,
        max_pending_control_frames: 8,
        transmit_budget: 16 << 10,
        ..default_config(side)
    }
}

fn default_config(side: Side) -> Config {
    match side {
        Side::Client => Config::client(),
        Side::Server => Config::server(),
    }
}

/// Message `seq` of a call: its content names the stream and position, so a message delivered
/// to the wrong call or out of order does not compare equal.
fn message_body(stream: StreamId, seq: usize, len: usize) -> Bytes {
    let seed = stream
        .0
        .wrapping_mul(31)
        .wrapping_add(u32::try_from(seq).unwrap_or(0));
    (0..len)
        .map(|i| {
            seed.wrapping_add(u32::try_from(i).unwrap_or(0))
                .to_le_bytes()[0]
        })
        .collect()
}

/// The most PINGs a peer of the harness leaves unanswered.
const PINGS_IN_FLIGHT: usize = 16;

/// Messages each side's application queued, per stream.
type Sent = BTreeMap<StreamId, Vec<Bytes>>;

/// What the application saw of one call.
#[derive(Debug, Default)]
struct CallLog {
    /// Times the call ended for the application: `Finished`, `Cancelled`, or (server) our own
    /// trailers or cancel. Exactly one at the end.
    ends: u32,
    /// Messages received on it.
    received: usize,
    half_closed: bool,
}

/// One connection under test and everything its application saw and did.
#[derive(Debug)]
struct Peer {
    conn: Connection,
    side: Side,
    calls: BTreeMap<StreamId, CallLog>,
    sent: Sent,
    /// Message credit received and not yet released, when `hold_credit`.
    held: BTreeMap<StreamId, usize>,
    hold_credit: bool,
    closed: Option<Option<crate::error::ConnectionError>>,
    events: usize,
    written: usize,
    pings_sent: usize,
    pings_acked: usize,
    /// `Closed` was seen and the output drained since: nothing more may be written.
    silent: bool,
    /// Server: calls whose start and cancellation reached the application in one batch of
    /// events, i.e. reset before the application could see them (the rapid-reset signature).
    reset_unseen: usize,
}

impl Peer {
    fn new(side: Side, config: Config, hold_credit: bool, now: Instant) -> Self {
        Self {
            conn: Connection::new(side, Arc::new(config), now),
            side,
            calls: BTreeMap::new(),
            sent: Sent::new(),
            held: BTreeMap::new(),
            hold_credit,
            closed: None,
            events: 0,
            written: 0,
            pings_sent: 0,
            pings_acked: 0,
            silent: false,
            reset_unseen: 0,
        }
    }

    /// Appends everything the connection has to send to `wire`; returns the byte count.
    fn transmit(&mut self, wire: &mut BytesMut) -> usize {
        let before = wire.len();
        for _ in 0..100_000 {
            if self.conn.poll_transmit(wire) == 0 {
                let n = wire.len() - before;
                self.written += n;
                assert!(!self.silent || n == 0, "{n} bytes written after Closed");
                if self.closed.is_some() {
                    self.silent = true;
                    assert!(self.conn.is_closed(), "Closed but not is_closed()");
                    assert_eq!(self.conn.poll_timeout(), None, "a timer after Closed");
                }
                return n;
            }
        }
        panic!("poll_transmit never returns 0");
    }

    /// Takes every pending event and checks it against the calls' history. `peer_sent` is what
    /// the other side queued, when it is one of ours.
    fn poll_events(&mut self, peer_sent: Option<&Sent>) -> usize {
        let mut n = 0;
        let mut started = Vec::new();
        while let Some(event) = self.conn.poll_event() {
            assert!(self.closed.is_none(), "{event:?} after Closed");
            n += 1;
            match event {
                Event::CallStarted { stream, .. } => started.push(stream),
                Event::Cancelled { stream, .. } if started.contains(&stream) => {
                    self.reset_unseen += 1;
                }
                _ => {}
            }
            self.on_event(event, peer_sent);
        }
        self.events += n;
        n
    }

    fn on_event(&mut self, event: Event, peer_sent: Option<&Sent>) {
        let side = self.side;
        match event {
            Event::CallStarted { stream, .. } => {
                assert_eq!(side, Side::Server, "CallStarted on a client");
                let old = self.calls.insert(stream, CallLog::default());
                assert!(old.is_none(), "stream {stream} started twice");
            }
            Event::Headers { stream, .. } => {
                assert_eq!(side, Side::Client, "response Headers on a server");
                self.live(stream);
            }
            Event::Message { stream, message } => {
                let credit = message.credit();
                if let Ok(body) = message.decode(1024) {
                    assert!(body.len() <= 1024, "decoded past the limit");
                }
                let call = self.live(stream);
                if let Some(sent) = peer_sent {
                    let expected = sent.get(&stream).and_then(|m| m.get(call.received));
                    assert_eq!(Some(&message.data), expected, "message on {stream}");
                }
                call.received += 1;
                if self.hold_credit {
                    *self.held.entry(stream).or_default() += credit;
                } else {
                    self.conn.release_capacity(stream, credit);
                }
            }
            Event::HalfClosed { stream } => {
                assert_eq!(side, Side::Server, "HalfClosed on a client");
                let call = self.live(stream);
                assert!(!call.half_closed, "stream {stream} half-closed twice");
                call.half_closed = true;
                if let Some(sent) = peer_sent {
                    let all = sent.get(&stream).map_or(0, Vec::len);
                    assert_eq!(call.received, all, "END_STREAM before all messages");
                }
            }
            Event::Finished { stream, status, .. } => {
                assert_eq!(side, Side::Client, "Finished on a server");
                let call = self.live(stream);
                call.ends += 1;
                if let (Some(sent), true) = (peer_sent, status.is_ok()) {
                    let all = sent.get(&stream).map_or(0, Vec::len);
                    assert_eq!(call.received, all, "OK status before all messages");
                }
            }
            Event::Cancelled { stream, .. } => {
                assert_eq!(side, Side::Server, "Cancelled on a client");
                self.live(stream).ends += 1;
            }
            Event::Writable { stream } => assert!(self.calls.contains_key(&stream)),
            Event::PingAcknowledged { .. } => {
                self.pings_acked += 1;
                assert!(
                    self.pings_acked <= self.pings_sent,
                    "ACK of a PING never sent"
                );
            }
            Event::GoAway { .. } => {}
            Event::Closed { error } => self.closed = Some(error),
        }
    }

    /// The call of an event: one we know, not ended yet.
    fn live(&mut self, stream: StreamId) -> &mut CallLog {
        let Some(call) = self.calls.get_mut(&stream) else {
            panic!("event for unknown stream {stream}");
        };
        assert_eq!(call.ends, 0, "event on stream {stream} after its end");
        call
    }

    /// The `arg`-th call we know of (ended ones included), or stream 1.
    fn pick(&self, arg: u8) -> StreamId {
        let n = self.calls.len().max(1);
        let nth = usize::from(arg) % n;
        self.calls.keys().nth(nth).copied().unwrap_or(StreamId(1))
    }

    fn start_call(&mut self, timeout: Option<Duration>, now: Instant) {
        let mut request = CallRequest::new("/fuzz.Fuzz/Call", "fuzz.local");
        request.timeout = timeout;
        if let Ok(id) = self.conn.start_call(request, now) {
            let old = self.calls.insert(id, CallLog::default());
            assert!(old.is_none(), "start_call reused stream {id}");
        }
    }

    fn send_message(&mut self, id: StreamId, len: usize) {
        let seq = self.sent.get(&id).map_or(0, Vec::len);
        let body = message_body(id, seq, len);
        if self.conn.send_message(id, body.clone(), false).is_ok() {
            self.sent.entry(id).or_default().push(body);
        }
    }

    fn cancel(&mut self, id: StreamId) {
        let ok = self.conn.cancel(id).is_ok();
        // A client hears of its cancel as `Finished`; on a server the call is just over.
        if let (true, Side::Server, Some(call)) = (ok, self.side, self.calls.get_mut(&id)) {
            if call.ends == 0 {
                call.ends = 1;
            }
        }
    }

    fn send_trailers(&mut self, id: StreamId, code: Code) {
        let status = Status::new(code, "fuzz");
        if self.conn.send_trailers(id, status, Metadata::new()).is_ok() {
            let call = self.calls.get_mut(&id);
            let call = call.unwrap_or_else(|| panic!("trailers accepted on unknown {id}"));
            assert_eq!(call.ends, 0, "trailers accepted on ended call {id}");
            call.ends = 1;
        }
    }

    /// Sends a PING, unless [`PINGS_IN_FLIGHT`] are unanswered: a peer that pings without
    /// waiting makes the other queue an ACK per PING, and is cut off for that (tested on its
    /// own), not what a conforming peer does.
    fn ping(&mut self, now: Instant) {
        if self.pings_sent - self.pings_acked >= PINGS_IN_FLIGHT {
            return;
        }
        if self.conn.ping(now).is_ok() {
            self.pings_sent += 1;
        }
    }

    fn release_held(&mut self) {
        for (id, n) in std::mem::take(&mut self.held) {
            self.conn.release_capacity(id, n);
        }
    }

    /// Every call known ended exactly once.
    fn assert_all_ended(&self) {
        for (id, call) in &self.calls {
            assert_eq!(
                call.ends, 1,
                "{:?} call {id} ended {} times",
                self.side, call.ends
            );
        }
    }

    /// Runs application command `op` on the `arg`-th call: 0 send a message, 1 cancel, 2 (server)
    /// trailers with status `arg % 17` / (client) half-close, 3 (server) response head /
    /// (client) start a call, 4 PING, 5 graceful shutdown (when `arg` < 8), 6 release credit.
    fn command(&mut self, op: u8, arg: u8, now: Instant) {
        let id = self.pick(arg);
        match (op, self.side) {
            (0, _) => self.send_message(id, message_len(arg)),
            (1, _) => self.cancel(id),
            (2, Side::Server) => self.send_trailers(id, Code::from_i32(i32::from(arg % 17))),
            (2, Side::Client) => drop(self.conn.finish_sending(id)),
            (3, Side::Server) => drop(self.conn.send_headers(id, Metadata::new(), None)),
            (3, Side::Client) => self.start_call(timeout(arg), now),
            (4, _) => self.ping(now),
            (5, _) if arg < 8 => self.conn.shutdown(now),
            (6, _) => self.release_held(),
            _ => {}
        }
    }
}

/// A message length from an argument byte: mostly small, a few beyond a 64 KiB window.
fn message_len(arg: u8) -> usize {
    match arg {
        0..250 => usize::from(arg) * 3,
        250..=254 => usize::from(arg - 249) * 3000,
        _ => 70_000,
    }
}

/// A call timeout from an argument byte: none for even ones.
fn timeout(arg: u8) -> Option<Duration> {
    (arg % 2 == 1).then(|| Duration::from_millis(u64::from(arg) * 20))
}

/// The connection ended because the server's reset budget ran out, seen from either side.
fn is_reset_budget_close(error: &crate::error::ConnectionError) -> bool {
    use crate::error::ConnectionError::{Protocol, Remote};
    const REASON: &str = "too many reset streams";
    match error {
        Protocol { code, reason } => *code == ErrorCode::ENHANCE_YOUR_CALM && *reason == REASON,
        Remote { code, debug } => {
            *code == ErrorCode::ENHANCE_YOUR_CALM && debug[..] == *REASON.as_bytes()
        }
        _ => false,
    }
}

/// An empty SETTINGS frame and a SETTINGS ACK (RFC 9113 §6.5).
const SETTINGS_AND_ACK: [u8; 18] = [0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0];

/// Output bytes any one command may cause beyond its message bytes.
const COMMAND_OUTPUT: usize = 1024;

/// One connection fed by the fuzzer (`connection_recv`).
#[derive(Debug)]
struct Harness {
    peer: Peer,
    now: Instant,
    /// Bytes given to `recv`.
    fed: usize,
    /// Output our own commands account for.
    allowance: usize,
    /// Commands run and calls started: events they account for.
    commands: usize,
    /// Input held back while the connection asked for none (`wants_input`), as a driver does.
    paused: Vec<u8>,
}

impl Harness {
    fn new(mode: u8) -> Self {
        let side = if mode & 1 == 0 {
            Side::Server
        } else {
            Side::Client
        };
        let config = if mode & 2 != 0 {
            tight_config(side)
        } else {
            default_config(side)
        };
        let now = Instant::now();
        let mut h = Self {
            peer: Peer::new(side, config, mode & 4 != 0, now),
            now,
            fed: 0,
            allowance: 8 << 10,
            commands: 0,
            paused: Vec::new(),
        };
        if side == Side::Client {
            // A few calls, so response frames can hit live streams 1, 3, 5, 7.
            for i in 0..=(mode >> 4) & 3 {
                let timeout = (i == 1).then(|| Duration::from_millis(100));
                h.peer.start_call(timeout, now);
                let id = StreamId(u32::from(i) * 2 + 1);
                h.peer.send_message(id, usize::from(i) * 20);
                if i == 2 {
                    drop(h.peer.conn.finish_sending(id));
                }
            }
            h.allowance += h.peer.calls.len() * COMMAND_OUTPUT;
        }
        if mode & 8 == 0 {
            let mut prefix = Vec::new();
            if side == Side::Server {
                prefix.extend_from_slice(CLIENT_PREFACE);
            }
            prefix.extend_from_slice(&SETTINGS_AND_ACK);
            h.feed(&prefix);
        }
        h.settle();
        h
    }

    /// Feeds `bytes`, after any held back, unless the connection asks for no input.
    fn feed(&mut self, bytes: &[u8]) {
        self.paused.extend_from_slice(bytes);
        self.feed_paused();
    }

    fn feed_paused(&mut self) {
        if self.paused.is_empty() || !self.peer.conn.wants_input() {
            return;
        }
        let bytes = std::mem::take(&mut self.paused);
        self.fed += bytes.len();
        self.peer.conn.recv(&bytes, self.now);
        self.settle();
    }

    /// Command `op` (`0xe0` subtracted) with argument `arg`: 0-6 application commands (see
    /// `Peer::command`), 7-15 move the clock `arg` × 40 ms and fire the timers, 16-31 jump to
    /// the next timer.
    fn command(&mut self, op: u8, arg: u8) {
        self.commands += 1;
        self.allowance += COMMAND_OUTPUT + message_len(arg);
        match op {
            0..7 => self.peer.command(op, arg, self.now),
            7..16 => {
                self.now += Duration::from_millis(u64::from(arg) * 40);
                self.peer.conn.handle_timeout(self.now);
            }
            _ => {
                if let Some(at) = self.peer.conn.poll_timeout() {
                    self.now = self.now.max(at);
                    self.peer.conn.handle_timeout(self.now);
                }
            }
        }
        self.settle();
        self.feed_paused();
    }

    /// Drains output and events, then checks they stay in proportion to what went in.
    fn settle(&mut self) {
        self.peer.transmit(&mut BytesMut::new());
        self.peer.poll_events(None);
        let (fed, allowance) = (self.fed, self.allowance);
        let written = self.peer.written;
        assert!(
            written <= 4 * fed + allowance,
            "{written} bytes out for {fed} in"
        );
        let events = self.peer.events;
        let budget = fed / 2 + 8 * self.commands + 2 * self.peer.calls.len() + 64;
        assert!(events <= budget, "{events} events for {fed} bytes in");
        let active = self.peer.conn.active_calls();
        let limit = match self.peer.side {
            Side::Server => {
                let max = self.peer.conn.config().max_concurrent_streams;
                usize::try_from(max).unwrap_or(usize::MAX).saturating_add(1)
            }
            Side::Client => self.peer.calls.len(),
        };
        assert!(active <= limit, "{active} active calls, limit {limit}");
        assert_held_within_budget(&self.peer.conn);
        assert_held_consistent(&self.peer.conn);
    }

    /// Closes the connection: every call must then have ended exactly once.
    fn finish(&mut self) {
        self.peer.conn.close(ErrorCode::NO_ERROR, self.now);
        self.settle();
        self.peer.assert_all_ended();
    }
}

/// A client and a server wired together (`stream_ops`).
#[derive(Debug)]
struct Pair {
    client: Peer,
    server: Peer,
    now: Instant,
    to_server: BytesMut,
    to_client: BytesMut,
    /// Bytes per `recv` when driving to quiescence.
    chunk: usize,
}

/// Delivers up to `n` bytes of `wire` to `to`, unless it asks for no input (its receive
/// budget is full) or the wire is empty; returns how many moved.
fn deliver(wire: &mut BytesMut, to: &mut Peer, peer_sent: &Sent, n: usize, now: Instant) -> usize {
    let n = n.min(wire.len());
    if n == 0 || !to.conn.wants_input() {
        return 0;
    }
    to.conn.recv(&wire[..n], now);
    wire.advance(n);
    to.poll_events(Some(peer_sent));
    n
}

impl Pair {
    fn new(mode: u8) -> Self {
        let now = Instant::now();
        // The operations can stall the wire inside a header block for seconds of fake time:
        // the slowloris timer (tested on its own) would rightly end such a connection.
        let patient = Duration::from_secs(86_400);
        let mut client = Config {
            header_block_timeout: patient,
            ..Config::client()
        };
        // The operations include PINGs at any rate (up to one per operation, two thousand in
        // an input): keepalive enforcement and the idle-frame budget (each tested on its own)
        // would rightly end such a connection.
        let mut server = Config {
            ping_policy: None,
            idle_frame_burst: 4096,
            header_block_timeout: patient,
            ..Config::server()
        };
        if mode & 1 != 0 {
            for c in [&mut client, &mut server] {
                c.max_concurrent_streams = 2;
                c.initial_stream_window = 65_535;
                c.connection_window = 65_535;
                c.max_send_buffer = 4096;
                c.max_recv_message_size = 1000;
                c.recv_budget = 0; // the least allowed: twice the message limit plus 64 KiB
            }
        }
        let mut pair = Self {
            client: Peer::new(Side::Client, client, mode & 8 != 0, now),
            server: Peer::new(Side::Server, server, false, now),
            now,
            to_server: BytesMut::new(),
            to_client: BytesMut::new(),
            chunk: [7, 64, 1000, usize::MAX][usize::from(mode >> 1) & 3],
        };
        pair.drive();
        pair
    }

    /// Operation `op % 16` with argument `arg`: 0-6 client commands (see `Peer::command`),
    /// 7-12 server commands 0-5, 13/14 deliver `arg + 1` bytes to the server / client, 15 drive
    /// to quiescence (`arg` ≥ 128) or move the clock `arg` × 20 ms and fire the timers.
    fn op(&mut self, op: u8, arg: u8) {
        match op % 16 {
            op @ 0..7 => self.client.command(op, arg, self.now),
            op @ 7..13 => self.server.command(op - 7, arg, self.now),
            13 => drop(self.deliver_to_server(usize::from(arg) + 1)),
            14 => drop(self.deliver_to_client(usize::from(arg) + 1)),
            _ if arg >= 128 => self.drive(),
            _ => {
                self.now += Duration::from_millis(u64::from(arg) * 20);
                self.client.conn.handle_timeout(self.now);
                self.server.conn.handle_timeout(self.now);
            }
        }
        self.client.transmit(&mut self.to_server);
        self.server.transmit(&mut self.to_client);
        self.client.poll_events(Some(&self.server.sent));
        self.server.poll_events(Some(&self.client.sent));
        assert_held_consistent(&self.client.conn);
        assert_held_consistent(&self.server.conn);
    }

    /// [`deliver`]s up to `n` bytes to the server.
    fn deliver_to_server(&mut self, n: usize) -> usize {
        deliver(
            &mut self.to_server,
            &mut self.server,
            &self.client.sent,
            n,
            self.now,
        )
    }

    /// [`deliver`]s up to `n` bytes to the client.
    fn deliver_to_client(&mut self, n: usize) -> usize {
        deliver(
            &mut self.to_client,
            &mut self.client,
            &self.server.sent,
            n,
            self.now,
        )
    }

    /// Moves bytes both ways until both sides are quiet.
    fn drive(&mut self) {
        for _ in 0..10_000 {
            self.client.transmit(&mut self.to_server);
            self.server.transmit(&mut self.to_client);
            let events = self.client.poll_events(Some(&self.server.sent))
                + self.server.poll_events(Some(&self.client.sent));
            assert_held_within_budget(&self.client.conn);
            assert_held_within_budget(&self.server.conn);
            let mut moved = 0;
            loop {
                let n = self.deliver_to_server(self.chunk) + self.deliver_to_client(self.chunk);
                if n == 0 {
                    break;
                }
                moved += n;
            }
            if moved == 0 && events == 0 {
                return;
            }
        }
        panic!("the pair never settles");
    }

    /// Delivers everything, runs the timers, cancels what is left: then every call ended once.
    fn finish(&mut self) {
        self.client.release_held();
        self.drive();
        for _ in 0..4 {
            let next = [
                self.client.conn.poll_timeout(),
                self.server.conn.poll_timeout(),
            ];
            let Some(at) = next.into_iter().flatten().min() else {
                break;
            };
            self.now = self.now.max(at);
            self.client.conn.handle_timeout(self.now);
            self.server.conn.handle_timeout(self.now);
            self.drive();
        }
        let live: Vec<StreamId> = self
            .client
            .calls
            .iter()
            .filter(|(_, c)| c.ends == 0)
            .map(|(id, _)| *id)
            .collect();
        for id in live {
            self.client.cancel(id);
        }
        self.drive();
        self.client.assert_all_ended();
        self.server.assert_all_ended();
        assert_held_consistent(&self.client.conn);
        assert_held_consistent(&self.server.conn);
        // A server's reset budget pays for resets of calls its application never saw (rapid
        // reset, whether the client meant it or a stalled wire delivered opens and cancels
        // together; a unary call is seen only once its request is complete) and for refusals
        // over its concurrency limit (which it holds for such calls until its application saw
        // them end, so a client opening and cancelling calls in a burst meets them). More of
        // both than the burst: the server is right to end the connection then, and only then.
        // The counts are the server's: the refused calls were mostly cancelled by the client
        // already, and it never learns of the refusal.
        let (unseen, refused) = self.server.conn.reset_spending();
        let unseen = usize::try_from(unseen).unwrap_or(usize::MAX);
        let refused = usize::try_from(refused).unwrap_or(usize::MAX);
        let spent = unseen.max(self.server.reset_unseen) + refused;
        let burst = usize::try_from(self.server.conn.config().reset_burst).unwrap_or(usize::MAX);
        let rapid_reset = spent > burst;
        for peer in [&self.client, &self.server] {
            let justified =
                rapid_reset && matches!(&peer.closed, Some(Some(e)) if is_reset_budget_close(e));
            assert!(
                matches!(peer.closed, None | Some(None)) || justified,
                "{:?} closed with {:?} ({unseen} resets of unseen calls, {refused} refused)",
                peer.side,
                peer.closed,
            );
        }
        if self.client.closed.is_none() && self.server.closed.is_none() {
            assert_eq!(
                self.client.pings_acked, self.client.pings_sent,
                "PING unanswered"
            );
        }
    }
}

#[cfg(test)]
mod tests;

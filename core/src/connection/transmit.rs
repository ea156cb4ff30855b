//! The sending side: frames are encoded when the driver asks, many per call, up to a budget.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::state::{StreamState, Transition, next};
use super::streams::{Chunk, PendingEnd, PendingHeaders};
use super::{CLIENT_PREFACE, Connection, Control, Scheme, Side};
use crate::error::{ErrorCode, StreamId};
use crate::event::Event;
use crate::frame::{self, GoAway, Ping, RstStream, Settings, WindowUpdate};
use crate::grpc::{self, Status};
use crate::hpack::Sensitivity;
use crate::queue::InlineQueue;

/// Largest DATA frame we send, whatever the peer accepts: big enough for a 64 KiB message and
/// its prefix in one frame (the receiver can then hand it on without reassembly), small
/// enough that one stream's frame does not hold the others back for long.
const MAX_SEND_FRAME: usize = 128 << 10;

/// Payloads at least this large are chained into a [`Transmit`] instead of copied: from here
/// on, a slice of its own in a vectored write costs less than copying the bytes.
const CHAIN_MIN: usize = 1024;

/// Output for vectored writes: frame headers and small frames are gathered into one buffer,
/// large payloads are chained as the `Bytes` the application gave, never copied. Chaining a
/// payload only notes where it goes in the buffer's byte stream: nothing is split off or
/// allocated per frame, and the buffer is reused once everything was written.
#[derive(Debug, Default)]
pub struct Transmit {
    /// The gathered bytes not written yet.
    inline: BytesMut,
    /// Chained payloads, each with the position in the inline byte stream (counted from the
    /// first byte ever gathered, see `consumed`) that it follows.
    chained: VecDeque<(usize, Bytes)>,
    /// Bytes of the chained payloads not written yet.
    chained_len: usize,
    /// Inline bytes written so far: `inline` starts at this position of the stream.
    consumed: usize,
}

impl Transmit {
    /// An empty output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.inline.len() + self.chained_len
    }

    /// `true` when nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pending bytes as slices, in order: hand them to a vectored write.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        let mut at = 0;
        self.chained
            .iter()
            .flat_map(move |(cut, payload)| {
                let cut = cut - self.consumed;
                let before = &self.inline[at..cut];
                at = cut;
                [before, &payload[..]]
            })
            .chain(std::iter::once_with(move || {
                let written_up_to = self
                    .chained
                    .back()
                    .map_or(0, |(cut, _)| cut - self.consumed);
                &self.inline[written_up_to..]
            }))
            .filter(|c| !c.is_empty())
    }

    /// Drops the first `n` bytes, which the transport wrote.
    pub fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let inline_first = match self.chained.front() {
                Some((cut, _)) => cut - self.consumed,
                None => self.inline.len(),
            };
            if inline_first > 0 {
                let k = n.min(inline_first);
                self.inline.advance(k);
                self.consumed += k;
                n -= k;
                continue;
            }
            let Some((_, front)) = self.chained.front_mut() else {
                break;
            };
            let k = n.min(front.len());
            front.advance(k);
            self.chained_len -= k;
            n -= k;
            if front.is_empty() {
                self.chained.pop_front();
            }
        }
        if self.chained.is_empty() && self.inline.is_empty() {
            // All written: the buffer's space is used again from its start.
            self.inline.clear();
            self.consumed = 0;
        }
    }
}

/// Where encoded frames go: a plain buffer (payloads copied) or a [`Transmit`] (large payloads
/// chained).
pub(crate) trait Sink {
    /// The buffer small frames and frame headers are written into.
    fn buf(&mut self) -> &mut BytesMut;
    /// Appends a payload slice.
    fn put_payload(&mut self, payload: &Bytes);
    /// Bytes written so far.
    fn written(&self) -> usize;
}

impl Sink for BytesMut {
    fn buf(&mut self) -> &mut BytesMut {
        self
    }
    fn put_payload(&mut self, payload: &Bytes) {
        self.extend_from_slice(payload);
    }
    fn written(&self) -> usize {
        self.len()
    }
}

impl Sink for Transmit {
    fn buf(&mut self) -> &mut BytesMut {
        &mut self.inline
    }
    fn put_payload(&mut self, payload: &Bytes) {
        if payload.len() < CHAIN_MIN {
            self.inline.extend_from_slice(payload);
            return;
        }
        self.chained
            .push_back((self.consumed + self.inline.len(), payload.clone()));
        self.chained_len += payload.len();
    }
    fn written(&self) -> usize {
        self.len()
    }
}

/// A reusable list of header fields, stored flat so that building a head allocates nothing
/// once warmed up.
#[derive(Debug, Default)]
pub(crate) struct HeaderScratch {
    bytes: Vec<u8>,
    spans: Vec<[usize; 3]>,
    /// RFC 9113 §6.5.2 size: name + value + 32 per field.
    list_size: usize,
}

impl HeaderScratch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
        self.list_size = 0;
    }

    fn push(&mut self, name: &[u8], value: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name);
        let mid = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.spans.push([start, mid, self.bytes.len()]);
        self.list_size += name.len() + value.len() + 32;
    }

    fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8], Sensitivity)> {
        self.spans.iter().map(|&[start, mid, end]| {
            let name = self.bytes.get(start..mid).unwrap_or_default();
            let value = self.bytes.get(mid..end).unwrap_or_default();
            (name, value, Sensitivity::Normal)
        })
    }
}

impl Connection {
    /// Appends frames to `buf`: everything pending, up to the configured byte budget. Returns the
    /// number of bytes appended; call again until it returns 0.
    pub fn poll_transmit(&mut self, buf: &mut BytesMut) -> usize {
        self.write_output(buf)
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but large payloads are chained into `out`
    /// rather than copied, for a vectored write.
    pub fn poll_transmit_chained(&mut self, out: &mut Transmit) -> usize {
        self.write_output(out)
    }

    fn write_output<S: Sink>(&mut self, sink: &mut S) -> usize {
        let start = sink.written();
        if self.closed.is_none() {
            self.credit_connection();
        }
        if self.preface_pending {
            self.preface_pending = false;
            sink.buf().extend_from_slice(CLIENT_PREFACE);
        }
        while let Some(control) = self.control.pop_front() {
            self.write_control(control, sink.buf());
        }
        if self.closed.is_none() {
            self.write_streams(sink, start);
        }
        sink.written() - start
    }

    fn write_control(&mut self, control: Control, dst: &mut BytesMut) {
        match control {
            Control::Settings => self.local_settings().encode(dst),
            Control::SettingsAck => Settings {
                ack: true,
                ..Settings::default()
            }
            .encode(dst),
            Control::Ping { payload, ack } => Ping { ack, payload }.encode(dst),
            Control::RstStream { stream, code } => RstStream { stream, code }.encode(dst),
            Control::WindowUpdate { stream, increment } => {
                WindowUpdate { stream, increment }.encode(dst)
            }
            Control::GoAway {
                last_stream,
                code,
                debug,
            } => GoAway {
                last_stream,
                code,
                debug,
            }
            .encode(dst),
        }
    }

    /// The SETTINGS we send first (RFC 9113 §6.5.2); push is always disabled.
    fn local_settings(&self) -> Settings {
        let c = &self.config;
        Settings {
            ack: false,
            header_table_size: (c.header_table_size != 4096).then_some(c.header_table_size),
            enable_push: (self.side == Side::Client).then_some(false),
            max_concurrent_streams: Some(c.max_concurrent_streams),
            initial_window_size: Some(c.initial_stream_window),
            max_frame_size: (c.max_frame_size != 16_384).then_some(c.max_frame_size),
            max_header_list_size: Some(c.max_header_list_size),
        }
    }

    /// Writes stream frames in rotation until the budget is spent or nothing can move.
    fn write_streams<S: Sink>(&mut self, sink: &mut S, start: usize) {
        let budget = self.config.transmit_budget;
        let mut conn_blocked = Vec::new();
        while sink.written() - start < budget {
            let Some(id) = self.send_ready.pop_front() else {
                break;
            };
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            stream.scheduled = false;
            if stream.pending_headers.is_some() && !self.write_headers(id, sink) {
                continue;
            }
            let quantum = (self.send_frame_size() * 4).clamp(64 << 10, 256 << 10);
            let waiting_for_conn = self.write_data(id, sink, quantum);
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            if stream.queued_bytes == 0 && stream.pending_end.is_some() {
                self.write_end(id, sink);
            }
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            if stream.want_writable && stream.queued_bytes <= self.config.max_send_buffer / 2 {
                stream.want_writable = false;
                self.events.push_back(Event::Writable { stream: id });
            }
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            if !stream.has_output() {
                continue;
            }
            if waiting_for_conn {
                stream.scheduled = true;
                conn_blocked.push(id);
            } else if stream.send_window.available() > 0 {
                stream.scheduled = true;
                self.send_ready.push_back(id);
            }
            // Else: waits for the stream's WINDOW_UPDATE, which schedules it again.
        }
        // Streams waiting for connection credit keep their place at the front.
        for id in conn_blocked.into_iter().rev() {
            self.send_ready.push_front(id);
        }
    }

    /// Writes the stream's pending HEADERS. `false` if the stream is gone (its head did not fit
    /// the peer's header list limit).
    fn write_headers<S: Sink>(&mut self, id: StreamId, sink: &mut S) -> bool {
        let Some(stream) = self.streams.get_mut(&id) else {
            return false;
        };
        let Some(pending) = stream.pending_headers.take() else {
            return true;
        };
        self.header_scratch.clear();
        let scratch = &mut self.header_scratch;
        let mut end_stream = false;
        match &pending {
            PendingHeaders::Request(request) => {
                // grpc-timeout carries the time left now, not the time asked for.
                let timeout = stream
                    .deadline
                    .map(|d| d.saturating_duration_since(self.now));
                // A call with nothing to send and already half-closed fits in one HEADERS.
                end_stream = stream.queued_bytes == 0
                    && matches!(stream.pending_end, Some(PendingEnd::EndStream));
                let out = grpc::RequestOut {
                    path: &request.path,
                    // RFC 9113 §8.3.1: an empty :authority is malformed; without one the
                    // request simply names no authority.
                    authority: Some(&*request.authority).filter(|a| !a.is_empty()),
                    scheme: match request.scheme {
                        Scheme::Http => "http",
                        Scheme::Https => "https",
                    },
                    timeout,
                    encoding: request.encoding,
                    accept_encoding: request.accept_encoding,
                    user_agent: Some(self.config.user_agent),
                    metadata: &request.metadata,
                };
                grpc::write_request(&out, &mut |name, value| scratch.push(name, value));
            }
            PendingHeaders::Response { metadata, encoding } => {
                grpc::write_response_head(
                    *encoding,
                    grpc::EncodingSet::supported(),
                    metadata,
                    &mut |name, value| scratch.push(name, value),
                );
            }
        }
        if self.header_scratch.list_size > self.peer.max_header_list_size as usize {
            let status = Status::internal(format!(
                "header list of {} bytes exceeds the peer's limit of {}",
                self.header_scratch.list_size, self.peer.max_header_list_size
            ));
            self.end_call(id, status, false);
            if self.side == Side::Client {
                self.set_state(id, StreamState::Closed);
            } else {
                self.reset_stream(id, ErrorCode::INTERNAL_ERROR);
            }
            return false;
        }
        if end_stream {
            if let Some(stream) = self.streams.get_mut(&id) {
                stream.pending_end = None;
            }
        }
        self.encode_block(id, end_stream, sink);
        let Some(stream) = self.streams.get_mut(&id) else {
            return false;
        };
        if let Ok(state) = next(stream.state, Transition::SendHeaders { end_stream }) {
            stream.state = state;
        }
        match pending {
            PendingHeaders::Request(_) => self.last_local_sent = id,
            PendingHeaders::Response { .. } => stream.head_sent = true,
        }
        true
    }

    /// HPACK-encodes the scratch fields and writes them as HEADERS (+ CONTINUATION).
    fn encode_block<S: Sink>(&mut self, id: StreamId, end_stream: bool, sink: &mut S) {
        self.forgive_pings();
        self.block_scratch.clear();
        self.encoder
            .encode(self.header_scratch.fields(), &mut self.block_scratch);
        frame::encode_header_block(
            id,
            end_stream,
            &self.block_scratch,
            self.peer.max_frame_size as usize,
            sink.buf(),
        );
    }

    /// The largest DATA frame we send: what the peer accepts, at most [`MAX_SEND_FRAME`].
    fn send_frame_size(&self) -> usize {
        (self.peer.max_frame_size as usize).min(MAX_SEND_FRAME)
    }

    /// Writes DATA frames for `id` within the windows, up to `quantum` bytes. Returns `true`
    /// when the connection window stopped it.
    fn write_data<S: Sink>(&mut self, id: StreamId, sink: &mut S, quantum: usize) -> bool {
        let max_frame = self.send_frame_size();
        let mut written = 0;
        loop {
            let Some(stream) = self.streams.get_mut(&id) else {
                return false;
            };
            if stream.queued_bytes == 0 || written >= quantum {
                return false;
            }
            let conn = self.conn_send.available();
            if conn == 0 {
                return true;
            }
            let mut len = stream
                .queued_bytes
                .min(stream.send_window.available())
                .min(conn)
                .min(max_frame);
            if len == 0 {
                return false;
            }
            if len < stream.queued_bytes {
                // End the frame where a message ends, when one does: a message that starts a
                // frame and fits in it reaches the peer's application without reassembly.
                let whole = whole_messages_within(&stream.queue, len);
                if whole > 0 {
                    len = whole;
                }
            }
            let drains = len == stream.queued_bytes;
            let end_stream = drains && matches!(stream.pending_end, Some(PendingEnd::EndStream));
            frame::encode_data_header(id, len as u32, end_stream, sink.buf());
            self.ping_strikes = 0;
            self.last_ping_recv = None;
            let mut left = len;
            while left > 0 {
                let Some(chunk) = stream.queue.front_mut() else {
                    break;
                };
                let from = usize::from(chunk.prefix_sent);
                if from < 5 {
                    let take = (5 - from).min(left);
                    sink.buf()
                        .extend_from_slice(chunk.prefix.get(from..from + take).unwrap_or_default());
                    chunk.prefix_sent = (from + take) as u8;
                    left -= take;
                }
                if left == 0 && (usize::from(chunk.prefix_sent) < 5 || !chunk.body.is_empty()) {
                    break;
                }
                let take = chunk.body.len().min(left);
                if take == chunk.body.len() {
                    if take > 0 {
                        sink.put_payload(&chunk.body);
                    }
                    stream.queue.pop_front();
                } else {
                    sink.put_payload(&chunk.body.split_to(take));
                }
                left -= take;
            }
            stream.queued_bytes -= len;
            stream.send_window.consume(len);
            self.conn_send.consume(len);
            written += len;
            if end_stream {
                stream.pending_end = None;
                if let Ok(state) = next(stream.state, Transition::SendEndStream) {
                    self.set_state(id, state);
                }
                return false;
            }
        }
    }

    /// Ends our side of the stream once its queue drained: client END_STREAM, server trailers.
    fn write_end<S: Sink>(&mut self, id: StreamId, sink: &mut S) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let Some(end) = stream.pending_end.take() else {
            return;
        };
        self.header_scratch.clear();
        let scratch = &mut self.header_scratch;
        match &end {
            PendingEnd::EndStream => {
                frame::encode_data_header(id, 0, true, sink.buf());
                if let Ok(state) = next(stream.state, Transition::SendEndStream) {
                    self.set_state(id, state);
                }
                return;
            }
            PendingEnd::Trailers { status, metadata } if stream.head_sent => {
                grpc::write_trailers(status, metadata, &mut |name, value| {
                    scratch.push(name, value)
                });
            }
            PendingEnd::Trailers { status, metadata } => {
                grpc::write_trailers_only(status, metadata, &mut |name, value| {
                    scratch.push(name, value)
                });
                if status.code() == grpc::Code::Unimplemented {
                    // compression.md: a call refused for its grpc-encoding learns what we accept.
                    let accept = grpc::EncodingSet::supported().to_header_value();
                    scratch.push(b"grpc-accept-encoding", accept.as_bytes());
                }
            }
            PendingEnd::HttpStatus(code) => {
                let mut digits = [0u8; 3];
                let code = (*code).clamp(100, 999);
                digits[0] = b'0' + (code / 100) as u8;
                digits[1] = b'0' + (code / 10 % 10) as u8;
                digits[2] = b'0' + (code % 10) as u8;
                scratch.push(b":status", &digits);
            }
        }
        self.encode_block(id, true, sink);
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let Ok(state) = next(stream.state, Transition::SendHeaders { end_stream: true }) else {
            return;
        };
        if state == StreamState::Closed {
            self.set_state(id, state);
        } else {
            // RFC 9113 §8.1: a complete response before the request ended; stop the client
            // with RST_STREAM(NO_ERROR). Written now so it follows the trailers.
            RstStream {
                stream: id,
                code: ErrorCode::NO_ERROR,
            }
            .encode(sink.buf());
            self.note_reset(id);
            self.set_state(id, StreamState::Closed);
        }
    }

    /// We sent headers or data: the peer's early PINGs are forgiven (keepalive.md).
    fn forgive_pings(&mut self) {
        self.ping_strikes = 0;
        self.last_ping_recv = None;
    }

    /// Puts `id` in the send rotation if it has something to write.
    pub(super) fn schedule(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.scheduled || !stream.has_output() {
            return;
        }
        if stream.local && stream.state == StreamState::Idle && !stream.counted {
            return; // Waits in `pending_open` for a concurrency slot.
        }
        stream.scheduled = true;
        self.send_ready.push_back(id);
    }

    /// Client: activates queued calls while the peer's concurrency limit allows.
    pub(super) fn open_pending_calls(&mut self) {
        while self.local_active < self.peer.max_concurrent_streams {
            let Some(id) = self.pending_open.pop_front() else {
                return;
            };
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            stream.counted = true;
            self.local_active += 1;
            self.schedule(id);
        }
    }
}

/// Bytes of the queued messages that lie wholly within the first `limit` bytes of `queue`
/// (a message partly written counts from where it stands).
fn whole_messages_within(queue: &InlineQueue<Chunk>, limit: usize) -> usize {
    let mut total = 0;
    for chunk in queue.iter() {
        let left = 5 - usize::from(chunk.prefix_sent.min(5)) + chunk.body.len();
        if total + left > limit {
            break;
        }
        total += left;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmit_chains_large_payloads_and_advances() {
        let mut out = Transmit::new();
        out.buf().extend_from_slice(b"head");
        let big = Bytes::from(vec![7u8; CHAIN_MIN]);
        out.put_payload(&big);
        out.put_payload(&Bytes::from_static(b"small"));
        assert_eq!(out.len(), 4 + CHAIN_MIN + 5);
        let chunks: Vec<&[u8]> = out.chunks().collect();
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks[1].as_ptr(),
            big.as_ptr(),
            "large payload chained, not copied"
        );
        out.advance(6);
        assert_eq!(out.len(), CHAIN_MIN + 3);
        out.advance(CHAIN_MIN + 1);
        assert_eq!(out.chunks().collect::<Vec<_>>(), vec![&b"ll"[..]]);
        out.advance(2);
        assert!(out.is_empty());
        // Everything written: the next frames go into the same buffer, not a new one.
        let start = out.chunks().next().map(<[u8]>::as_ptr);
        assert_eq!(start, None);
        out.buf().extend_from_slice(b"again");
        out.put_payload(&big);
        let first = out.chunks().next().expect("bytes").as_ptr();
        out.advance(out.len());
        out.buf().extend_from_slice(b"and again");
        let next = out.chunks().next().expect("bytes").as_ptr();
        let distance = (next as usize).abs_diff(first as usize);
        assert!(distance < 64, "no new allocation: {distance} bytes apart");
    }

    /// Random appends (inline bytes, small and chained payloads) and partial writes: the
    /// slices always spell exactly the bytes not written yet, in order.
    #[test]
    fn transmit_slices_match_a_plain_buffer_through_partial_writes() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % bound as u64).expect("small")
        };
        let mut out = Transmit::new();
        let mut expected: VecDeque<u8> = VecDeque::new();
        let mut byte = 0u8;
        let mut fill = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    byte = byte.wrapping_add(1);
                    byte
                })
                .collect()
        };
        for round in 0..2_000 {
            for _ in 0..next(4) {
                let piece = match next(3) {
                    0 => {
                        let piece = fill(next(20));
                        out.buf().extend_from_slice(&piece);
                        piece
                    }
                    1 => {
                        let piece = fill(next(CHAIN_MIN));
                        out.put_payload(&Bytes::from(piece.clone()));
                        piece
                    }
                    _ => {
                        let piece = fill(CHAIN_MIN + next(3 * CHAIN_MIN));
                        out.put_payload(&Bytes::from(piece.clone()));
                        piece
                    }
                };
                expected.extend(piece);
            }
            let flat: Vec<u8> = out.chunks().flatten().copied().collect();
            assert_eq!(
                flat,
                expected.iter().copied().collect::<Vec<_>>(),
                "round {round}"
            );
            assert_eq!(out.len(), expected.len());
            assert!(out.chunks().all(|c| !c.is_empty()));
            let written = if round % 7 == 0 {
                expected.len()
            } else {
                next(expected.len() + 1)
            };
            out.advance(written);
            expected.drain(..written);
            assert_eq!(out.is_empty(), expected.is_empty());
        }
    }

    #[test]
    fn header_scratch_counts_list_size() {
        let mut s = HeaderScratch::default();
        s.push(b"a", b"bc");
        s.push(b"", b"");
        assert_eq!(s.list_size, 3 + 32 + 32);
        let fields: Vec<_> = s
            .fields()
            .map(|(n, v, _)| (n.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(
            fields,
            vec![(b"a".to_vec(), b"bc".to_vec()), (vec![], vec![])]
        );
    }
}

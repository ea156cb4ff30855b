//! The receiving side: bytes → frames → stream states, calls and events.

use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use super::flow_control::DEFAULT_WINDOW;
use super::state::{StreamState, Transition, next};
use super::streams::{PendingEnd, Stream};
use super::{
    CLIENT_PREFACE, Connection, Control, HeaderAssembly, PING_APP, PING_KEEPALIVE, PING_SHUTDOWN,
    Shutdown, Side, clear_deadline,
};
use crate::error::{ConnectionError, ErrorCode, StreamId};
use crate::event::{Event, Message};
use crate::frame::{
    self, Data, Frame, FrameError, FrameHeader, FrameType, GoAway, Ping, Settings, WindowUpdate,
};
use crate::grpc::{self, Code, Encoding, HeadError, Metadata, Status};
use crate::hpack::{DecodeError, FragmentError, PartialBlock};

/// DATA payloads at least this large are gathered into an allocation of their own.
const DEDICATED_FRAME_MIN: usize = 16 << 10;

/// Raw bytes of one header block we read at least before closing the connection (see
/// `Connection::max_block_bytes`).
const MAX_BLOCK_BYTES: usize = 1 << 20;

/// What one received header field costs beyond its bytes, once decoded into metadata.
const FIELD_COST: usize = 96;

/// A DATA frame moving fewer bytes of window than this, completing no message and not ending
/// its stream, is a sliver: it spends from the sliver budget.
const SLIVER: u32 = 64;

/// What is wrong with a header block beyond its fields.
#[derive(Debug, Clone, Copy)]
enum BlockFault {
    /// Over `max_header_list_size`: only the fields within it were kept.
    TooLarge,
    /// The HEADERS frame that started it is a stream error with this code.
    Stream(ErrorCode, &'static str),
}

impl Connection {
    /// Feeds bytes read from the transport, in any split (a byte at a time works). Frames are
    /// processed as soon as they are complete. A large DATA frame is gathered into an
    /// allocation of its own, so that the messages handed on as views of it keep nothing else
    /// alive; everything else passes through one reused buffer.
    pub fn recv(&mut self, mut bytes: &[u8], now: Instant) {
        if self.closed.is_some() || bytes.is_empty() {
            return;
        }
        self.now = now;
        self.read_backing = None;
        while !bytes.is_empty() && self.closed.is_none() {
            let take = self.next_input_len(bytes).clamp(1, bytes.len());
            let (now_part, rest) = bytes.split_at(take);
            self.read_buf.extend_from_slice(now_part);
            bytes = rest;
            self.process_input();
        }
        self.after_input();
    }

    /// Like [`recv`](Self::recv) but takes the buffer: when nothing is pending, messages that
    /// fill at least half of it are handed on as views of it, without a copy.
    pub fn recv_bytes(&mut self, bytes: BytesMut, now: Instant) {
        if self.closed.is_some() || bytes.is_empty() {
            return;
        }
        if !self.read_buf.is_empty() || self.dedicated_frame.is_some() {
            return self.recv(&bytes, now);
        }
        self.now = now;
        self.read_backing = Some(bytes.capacity());
        self.read_buf = bytes;
        self.process_input();
        self.after_input();
    }

    /// How many of `bytes` to append to the read buffer before processing: the rest of the
    /// frame in progress, or at a frame boundary a run of frames up to the next large DATA
    /// frame, which starts an allocation of its own.
    fn next_input_len(&mut self, bytes: &[u8]) -> usize {
        if let Some(total) = self.dedicated_frame {
            return total.saturating_sub(self.read_buf.len());
        }
        if self.preface_expected > 0 {
            return self.preface_expected.saturating_sub(self.read_buf.len());
        }
        if !self.read_buf.is_empty() {
            return match FrameHeader::peek(&self.read_buf) {
                Some(header) => {
                    (FrameHeader::LEN + header.length as usize).saturating_sub(self.read_buf.len())
                }
                None => FrameHeader::LEN - self.read_buf.len(),
            };
        }
        let mut at = 0;
        while let Some(header) = bytes.get(at..).and_then(FrameHeader::peek) {
            let total = FrameHeader::LEN + header.length as usize;
            if self.is_large_data(header) {
                if at > 0 {
                    return at;
                }
                self.start_dedicated_frame(total);
                return total;
            }
            at += total;
        }
        bytes.len()
    }

    /// A DATA frame worth an allocation of its own (and within our frame size limit).
    fn is_large_data(&self, header: FrameHeader) -> bool {
        header.kind == FrameType::DATA
            && header.length as usize >= DEDICATED_FRAME_MIN
            && header.length <= self.config.max_frame_size
    }

    /// Moves the start of a large DATA frame (what `read_buf` holds of it, at its front) to the
    /// front of the large-frame allocation, reused once the last frame's messages are gone
    /// (no allocation, no heap churn) or made anew of exactly its size.
    fn start_dedicated_frame(&mut self, total: usize) {
        let (mut frame, size) = self.frame_alloc.take(total);
        frame.extend_from_slice(&self.read_buf);
        self.read_buf.clear();
        self.small_buf = std::mem::replace(&mut self.read_buf, frame);
        self.dedicated_frame = Some(total);
        self.frame_backing_size = size;
        self.read_backing = None;
    }

    /// The large frame in `read_buf` was split off: the small-frame buffer is back, and the
    /// large-frame allocation is kept for the next.
    fn end_dedicated_frame(&mut self) {
        self.frame_alloc.buf =
            std::mem::replace(&mut self.read_buf, std::mem::take(&mut self.small_buf));
    }

    /// After a batch of input: the receive budget's rule 3, and the header-block timer.
    fn after_input(&mut self) {
        self.relieve_pressure();
        self.watch_incomplete_block();
    }

    fn process_input(&mut self) {
        self.arm_keepalive();
        while self.closed.is_none() {
            if self.preface_expected > 0 && !self.match_preface() {
                return;
            }
            let Some(header) = FrameHeader::peek(&self.read_buf) else {
                break;
            };
            // RFC 9113 §4.2: a frame above our SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR,
            // checked before buffering for it.
            if header.length > self.config.max_frame_size {
                self.protocol_error(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "frame larger than SETTINGS_MAX_FRAME_SIZE",
                );
                return;
            }
            // A header block beyond what we ever read is refused before the frame that would
            // pass the bound is buffered.
            let header_block = match header.kind {
                FrameType::HEADERS => Some(0),
                FrameType::CONTINUATION => {
                    Some(self.assembly.as_ref().map_or(0, |a| a.block.total()))
                }
                _ => None,
            };
            if header_block.is_some_and(|before| {
                before.saturating_add(header.length as usize) > self.max_block_bytes()
            }) {
                self.protocol_error(ErrorCode::ENHANCE_YOUR_CALM, "header block too large");
                return;
            }
            let total = FrameHeader::LEN + header.length as usize;
            if self.read_buf.len() < total {
                if self.dedicated_frame.is_none() && self.is_large_data(header) {
                    self.start_dedicated_frame(total);
                } else {
                    self.read_backing = None;
                    self.read_buf.reserve(total - self.read_buf.len());
                }
                break;
            }
            let dedicated = self.dedicated_frame.take().is_some();
            self.frame_backing = if dedicated {
                Some(self.frame_backing_size)
            } else {
                self.read_backing
            };
            let mut bytes = self.read_buf.split_to(total).freeze();
            if dedicated {
                self.end_dedicated_frame();
            }
            let payload = bytes.split_off(FrameHeader::LEN);
            if !self.got_peer_settings
                && (header.kind != FrameType::SETTINGS || header.flags & frame::flags::ACK != 0)
            {
                // RFC 9113 §3.4: the preface's first frame is SETTINGS.
                self.protocol_error(ErrorCode::PROTOCOL_ERROR, "first frame is not SETTINGS");
                return;
            }
            if let Some(assembly) = &self.assembly {
                // RFC 9113 §6.10: nothing may interleave a header block.
                if header.kind != FrameType::CONTINUATION || header.stream != assembly.stream {
                    self.protocol_error(ErrorCode::PROTOCOL_ERROR, "header block interrupted");
                    return;
                }
            }
            match Frame::decode(header, payload) {
                Ok(frame) => self.on_frame(frame),
                // A HEADERS frame we could not read leaves the HPACK context unknowable
                // (`Headers::decode` returns its one stream error, a self-dependency, as a
                // frame, so that its block is still decoded).
                Err(FrameError::Stream { reason, .. }) if header.kind == FrameType::HEADERS => {
                    self.protocol_error(ErrorCode::PROTOCOL_ERROR, reason);
                }
                Err(FrameError::Stream {
                    stream,
                    code,
                    reason,
                }) if header.kind == FrameType::PRIORITY && self.is_idle_stream(stream) => {
                    // RFC 9113 §6.3 makes a PRIORITY of the wrong length a stream error, and
                    // PRIORITY may arrive on an idle stream (§5.1); but RST_STREAM must not be
                    // sent for an idle stream (§6.4). The error is raised to a connection
                    // error with the same code, as §5.4.1 allows for any stream error.
                    self.protocol_error(code, reason);
                }
                Err(FrameError::Stream {
                    stream,
                    code,
                    reason,
                }) => self.stream_error(stream, code, reason),
                Err(FrameError::Connection { code, reason }) => self.protocol_error(code, reason),
            }
            self.frame_backing = None;
        }
    }

    /// Arms the header-block timer when input stopped inside a header block or a frame header
    /// (slowloris), once: more dribbled bytes do not extend it. Cleared at a clean boundary.
    fn watch_incomplete_block(&mut self) {
        let in_block = self.assembly.is_some()
            || match FrameHeader::peek(&self.read_buf) {
                None => !self.read_buf.is_empty(),
                Some(header) => {
                    header.kind == FrameType::HEADERS || header.kind == FrameType::CONTINUATION
                }
            };
        if !in_block {
            self.timers.clear(super::timers::Timer::HeaderBlock);
        } else if !self.timers.is_set(super::timers::Timer::HeaderBlock) {
            self.timers.set(
                super::timers::Timer::HeaderBlock,
                self.now + self.config.header_block_timeout,
            );
        }
    }

    /// Server: consumes the client preface; `false` while more of it is needed (or it was wrong).
    fn match_preface(&mut self) -> bool {
        let offset = CLIENT_PREFACE.len() - self.preface_expected;
        let n = self.preface_expected.min(self.read_buf.len());
        let expected = CLIENT_PREFACE.get(offset..offset + n).unwrap_or_default();
        if self.read_buf.get(..n) != Some(expected) {
            self.protocol_error(ErrorCode::PROTOCOL_ERROR, "invalid connection preface");
            return false;
        }
        self.read_buf.advance(n);
        self.preface_expected -= n;
        self.preface_expected == 0
    }

    fn on_frame(&mut self, frame: Frame) {
        match frame {
            Frame::Data(data) => self.on_data(data),
            Frame::Headers(headers) => {
                self.fields.clear();
                self.assembly = Some(HeaderAssembly {
                    stream: headers.stream,
                    end_stream: headers.end_stream,
                    block: PartialBlock::new(self.config.max_header_list_size as usize),
                    stream_error: headers.priority_error().map(|e| (e.code(), e.reason())),
                });
                self.push_fragment(&headers.fragment, headers.end_headers);
            }
            Frame::Continuation(cont) => {
                if self.assembly.is_none() {
                    self.protocol_error(ErrorCode::PROTOCOL_ERROR, "CONTINUATION without HEADERS");
                    return;
                }
                // CONTINUATION flood: frames that carry (almost) nothing are budgeted; the
                // bytes of a block are bounded before its frames are buffered.
                if !cont.end_headers {
                    if cont.fragment.is_empty() && !self.spend_idle() {
                        return;
                    }
                    if cont.fragment.len() < SLIVER as usize && !self.spend_sliver() {
                        return;
                    }
                }
                self.push_fragment(&cont.fragment, cont.end_headers);
            }
            Frame::Priority(_) | Frame::Unknown(_) => {
                self.spend_idle();
            }
            Frame::RstStream(rst) => self.on_rst_stream(rst.stream, rst.code),
            Frame::Settings(settings) => self.on_settings(settings),
            Frame::PushPromise(_) => {
                // RFC 9113 §8.4: we never enable push; a server may not push to a server.
                self.protocol_error(ErrorCode::PROTOCOL_ERROR, "PUSH_PROMISE with push disabled");
            }
            Frame::Ping(ping) => self.on_ping(ping),
            Frame::GoAway(goaway) => self.on_goaway(goaway),
            Frame::WindowUpdate(update) => self.on_window_update(update),
        }
    }

    /// Raw bytes of one header block we read at most: beyond them the connection is closed
    /// with ENHANCE_YOUR_CALM, before the frame that would pass the bound is buffered. The
    /// block is decoded as it arrives (`push_fragment`), so this bounds the work one block
    /// costs, not memory: up to it, a block over `max_header_list_size` fails its call alone
    /// and the HPACK context stays in step. At least `MAX_BLOCK_BYTES`, and at least twice the
    /// list limit plus 1 KiB.
    fn max_block_bytes(&self) -> usize {
        self.max_field_bytes().max(MAX_BLOCK_BYTES)
    }

    /// Raw bytes of one field (HPACK representation) that we buffer while it is cut by a
    /// fragment boundary: twice the decoded list limit plus slack, or the dynamic table size
    /// if larger (an entry the peer's encoder may insert). A sane encoder's field is never
    /// larger than its decoded size, so only a field we could neither emit nor store is
    /// refused: the connection closes with ENHANCE_YOUR_CALM.
    fn max_field_bytes(&self) -> usize {
        (self.config.max_header_list_size as usize)
            .saturating_mul(2)
            .max(self.config.header_table_size as usize)
            .saturating_add(1024)
    }

    /// Decodes one fragment of the header block in progress; at `end_headers` the block is
    /// handed on. RFC 9113 §4.3: every block is decoded, even one to be discarded, so the
    /// HPACK context stays in step with the peer's encoder.
    fn push_fragment(&mut self, fragment: &Bytes, end_headers: bool) {
        let Some(mut assembly) = self.assembly.take() else {
            return;
        };
        let max_field = self.max_field_bytes();
        let fields = &mut self.fields;
        let pushed =
            assembly
                .block
                .push(&mut self.decoder, fragment, end_headers, max_field, |f| {
                    fields.push(f)
                });
        match pushed {
            Ok(()) => {}
            Err(FragmentError::Compression(reason)) => {
                self.protocol_error(ErrorCode::COMPRESSION_ERROR, reason);
                return;
            }
            Err(FragmentError::FieldTooLarge { .. }) => {
                self.protocol_error(ErrorCode::ENHANCE_YOUR_CALM, "header field too large");
                return;
            }
        }
        if !end_headers {
            self.assembly = Some(assembly);
            return;
        }
        let too_large = match assembly.block.finish(&mut self.decoder) {
            Ok(()) => None,
            Err(DecodeError::ListTooLarge { .. }) => Some(BlockFault::TooLarge),
            Err(DecodeError::Compression(reason)) => {
                self.protocol_error(ErrorCode::COMPRESSION_ERROR, reason);
                return;
            }
        };
        let fault = assembly
            .stream_error
            .map(|(code, reason)| BlockFault::Stream(code, reason))
            .or(too_large);
        self.on_header_block(assembly.stream, assembly.end_stream, fault);
    }

    /// Spends one token of the idle-frame budget; closes with ENHANCE_YOUR_CALM when empty.
    fn spend_idle(&mut self) -> bool {
        let spent = self.idle_budget.spend(self.now);
        self.calm_unless(spent, "too many frames that do no work")
    }

    /// `spent` as is; when a budget had no token left, first closes the connection with
    /// ENHANCE_YOUR_CALM and `reason`.
    fn calm_unless(&mut self, spent: bool, reason: &'static str) -> bool {
        if !spent {
            self.protocol_error(ErrorCode::ENHANCE_YOUR_CALM, reason);
        }
        spent
    }

    /// Spends one token of the reset budget; closes with ENHANCE_YOUR_CALM when empty.
    pub(super) fn spend_reset(&mut self) -> bool {
        let spent = self.reset_budget.spend(self.now);
        self.calm_unless(spent, "too many reset streams")
    }

    /// `true` when `id` names a stream that was never opened (by either side): a client call
    /// still queued behind the peer's concurrency limit is idle on the wire.
    fn is_idle_stream(&self, id: StreamId) -> bool {
        if let Some(stream) = self.streams.get(&id) {
            return stream.state == StreamState::Idle;
        }
        let peer_initiated = id.is_client_initiated() == (self.side == Side::Server);
        if peer_initiated {
            id > self.last_peer_id
        } else {
            id.0 >= self.next_local_id
        }
    }

    /// A stream error found by the frame layer or by us: reset the stream, end its call.
    pub(super) fn stream_error(&mut self, id: StreamId, code: ErrorCode, reason: &'static str) {
        if self.is_idle_stream(id) {
            // RFC 9113 §5.1: frames other than HEADERS/PRIORITY on an idle stream.
            self.protocol_error(ErrorCode::PROTOCOL_ERROR, reason);
            return;
        }
        if self
            .streams
            .get(&id)
            .is_none_or(|s| s.state == StreamState::Closed)
        {
            // A closed stream has nothing to reset: RST_STREAM is not sent on it (RFC 9113
            // §5.1, and at most one per stream, §5.4.2), and what the peer sent on it before
            // it learnt of the close may be discarded (§5.1). Budgeted like any frame that
            // does no work.
            self.spend_idle();
            return;
        }
        if !self.spend_reset() {
            return;
        }
        self.end_call(
            id,
            Status::internal(format!("HTTP/2 stream error {code}: {reason}")),
            false,
        );
        self.reset_stream(id, code);
    }

    fn on_data(&mut self, data: Data) {
        let id = data.stream;
        // RFC 9113 §6.9.1: the connection window is charged for every DATA frame, even on
        // streams we no longer know. Its credit returns as the memory the frame filled is
        // freed (`held.rs`); padding and dropped bytes fill none.
        if self.conn_recv.receive(data.flow_len).is_err() {
            self.protocol_error(
                ErrorCode::FLOW_CONTROL_ERROR,
                "connection receive window exceeded",
            );
            return;
        }
        if data.data.is_empty() && !data.end_stream && !self.spend_idle() {
            return;
        }
        let events_before = self.events.len();
        if self.is_idle_stream(id) {
            self.protocol_error(ErrorCode::PROTOCOL_ERROR, "DATA on an idle stream");
            return;
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            // A stream we closed: RFC 9113 §5.1 lets us ignore it.
            self.was_reset(id, data.end_stream);
            if data.flow_len < SLIVER && !data.end_stream {
                self.spend_sliver();
            }
            return;
        };
        if next(stream.state, Transition::RecvData).is_err() {
            if stream.state == StreamState::Closed {
                // We reset it or ended it; the peer's frames were in flight.
                self.was_reset(id, data.end_stream);
                return;
            }
            // RFC 9113 §6.1: half-closed (remote), the peer itself ended the stream.
            self.stream_error(id, ErrorCode::STREAM_CLOSED, "DATA after END_STREAM");
            return;
        }
        if stream.recv_window.receive(data.flow_len).is_err() {
            self.stream_error(
                id,
                ErrorCode::FLOW_CONTROL_ERROR,
                "stream receive window exceeded",
            );
            return;
        }
        if stream.local && !stream.head_received {
            self.fail_call(
                id,
                Status::internal("DATA before the response headers"),
                ErrorCode::PROTOCOL_ERROR,
            );
            return;
        }
        stream.held += u64::from(data.flow_len);
        if stream.reported {
            // Nobody reads this call any more: everything is credited back.
            stream.unreleased = 0;
        } else {
            match self.frame_backing {
                Some(backing) => stream.decoder.push_shared(data.data, backing),
                None => stream.decoder.push(data.data),
            }
            loop {
                match stream.decoder.next_message() {
                    Ok(Some(raw)) => {
                        let encoding = if raw.compressed {
                            match stream.recv_encoding {
                                Ok(Some(encoding)) if encoding != Encoding::Identity => {
                                    Some(encoding)
                                }
                                // PROTOCOL-HTTP2.md: a compressed flag without an encoding.
                                Ok(_) => {
                                    let status = Status::internal(
                                        "compressed message received without grpc-encoding",
                                    );
                                    self.fail_call(id, status, ErrorCode::CANCEL);
                                    return;
                                }
                                Err(()) => {
                                    let status = Status::internal(
                                        "compressed message in an encoding we do not support",
                                    );
                                    self.fail_call(id, status, ErrorCode::CANCEL);
                                    return;
                                }
                            }
                        } else {
                            None
                        };
                        // Its credit (bytes and bookkeeping) waits for the application's
                        // release: even empty messages queue only within the window.
                        let message = Message {
                            data: raw.data,
                            encoding,
                        };
                        stream.unreleased += message.credit() as u64;
                        self.events.push_back(Event::Message {
                            stream: id,
                            message,
                        });
                    }
                    Ok(None) => break,
                    Err(error) => {
                        self.fail_call(id, error.to_status(), ErrorCode::CANCEL);
                        return;
                    }
                }
            }
        }
        self.recharge(id);
        self.credit_stream(id);
        let completed_nothing = self.events.len() == events_before;
        if data.flow_len < SLIVER && completed_nothing && !data.end_stream && !self.spend_sliver() {
            return;
        }
        if data.end_stream {
            self.on_remote_end(id);
        }
    }

    /// Spends one token of the sliver budget: DATA frames that move almost nothing and
    /// complete nothing (1-byte pieces of a large message). A slow producer's small frames
    /// stay within its refill; a flood closes with ENHANCE_YOUR_CALM.
    fn spend_sliver(&mut self) -> bool {
        let spent = self.sliver_budget.spend(self.now);
        self.calm_unless(spent, "too many DATA frames that carry almost nothing")
    }

    /// Returns to the peer whatever `id` holds beyond its unreleased messages.
    pub(super) fn credit_stream(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.held <= stream.unreleased || !stream.state.can_recv() {
            return;
        }
        let credit = u32::try_from(stream.held - stream.unreleased).unwrap_or(u32::MAX);
        stream.held -= u64::from(credit);
        if let Some(increment) = stream.recv_window.release(credit) {
            self.control.push_back(Control::WindowUpdate {
                stream: id,
                increment,
            });
        }
    }

    /// The peer sent END_STREAM on `id`.
    fn on_remote_end(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let mid_message = stream.decoder.is_mid_message();
        let local = stream.local;
        let reported = stream.reported;
        let Ok(state) = next(stream.state, Transition::RecvEndStream) else {
            return;
        };
        if !reported {
            if local {
                // PROTOCOL-HTTP2.md: a response ends with trailers; without them the call
                // failed, never succeeded.
                self.end_call(
                    id,
                    Status::internal("server closed the stream without trailers"),
                    false,
                );
            } else if mid_message {
                self.end_call(
                    id,
                    Status::internal("client half-closed in the middle of a message"),
                    false,
                );
                self.queue_trailers(id, Status::internal("incomplete message"));
            } else {
                self.events.push_back(Event::HalfClosed { stream: id });
            }
        }
        self.set_state(id, state);
    }

    /// Ends a call because of what the peer sent on it: report `status`, reset with `code`.
    pub(super) fn fail_call(&mut self, id: StreamId, status: Status, code: ErrorCode) {
        let local = self.streams.get(&id).is_some_and(|s| s.local);
        self.end_call(id, status.clone(), false);
        if local {
            self.reset_stream(id, code);
        } else {
            // A server answers with the status when it still can, then resets.
            self.queue_trailers(id, status);
        }
    }

    /// Server: ends the call on the wire with `status` (trailers, or Trailers-Only).
    pub(super) fn queue_trailers(&mut self, id: StreamId, status: Status) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if !stream.state.can_send() {
            return;
        }
        stream.pending_headers = None;
        stream.queue.clear();
        stream.queued_bytes = 0;
        stream.pending_end = Some(PendingEnd::Trailers {
            status,
            metadata: Metadata::new(),
        });
        stream.send_finished = true;
        self.schedule(id);
    }

    /// A whole header block was decoded into `self.fields`.
    fn on_header_block(&mut self, id: StreamId, end_stream: bool, fault: Option<BlockFault>) {
        let mut fields = std::mem::take(&mut self.fields);
        // Held while the stream lives: the fields' bytes and what one field costs us once
        // decoded into metadata (more than the 32 bytes RFC 9113 §6.5.2 counts: an HTTP/2
        // bomb's empty fields must cost what they really hold).
        let cost = fields
            .iter()
            .map(|f| f.name.len() + f.value.len() + FIELD_COST)
            .sum::<usize>();
        match self.side {
            Side::Server => self.on_request_headers(id, end_stream, &mut fields, fault),
            Side::Client => self.on_response_headers(id, end_stream, &mut fields, fault),
        }
        if let Some(stream) = self.streams.get_mut(&id) {
            stream.head_cost = stream.head_cost.saturating_add(cost);
            self.recharge(id);
        }
        fields.clear();
        self.fields = fields;
    }

    fn on_request_headers(
        &mut self,
        id: StreamId,
        end_stream: bool,
        fields: &mut Vec<crate::hpack::Field>,
        fault: Option<BlockFault>,
    ) {
        if let Some(stream) = self.streams.get(&id) {
            // Request trailers: legal HTTP/2, meaningless to gRPC. They must end the stream,
            // and follow the HTTP/2 field rules like any header block.
            if !stream.state.can_recv() {
                if stream.state != StreamState::Closed {
                    // RFC 9113 §5.1: half-closed (remote), the peer itself ended the stream.
                    self.stream_error(id, ErrorCode::STREAM_CLOSED, "HEADERS after END_STREAM");
                } else {
                    // Closed: we reset or ended it, the peer's frames were in flight (§5.1).
                    self.was_reset(id, end_stream);
                }
                return;
            }
            if let Some(BlockFault::Stream(code, reason)) = fault {
                self.stream_error(id, code, reason);
                return;
            }
            if !end_stream {
                self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "trailers without END_STREAM");
                return;
            }
            if let Some(BlockFault::TooLarge) = fault {
                // The call, already started, fails as its head would have (RFC 9113 §10.5.1).
                let status = Status::resource_exhausted("request trailers too large");
                self.fail_call(id, status, ErrorCode::CANCEL);
                self.on_remote_end(id);
                return;
            }
            if let Err(error) = grpc::check_request_trailers(fields.drain(..)) {
                // RFC 9113 §8.1.1: the request is malformed; its call, already started, ends.
                let reason = match error {
                    HeadError::Malformed(reason) => reason,
                    _ => "malformed request trailers",
                };
                self.stream_error(id, ErrorCode::PROTOCOL_ERROR, reason);
                return;
            }
            self.on_remote_end(id);
            return;
        }
        if !id.is_client_initiated() {
            self.protocol_error(
                ErrorCode::PROTOCOL_ERROR,
                "client opened an even-numbered stream",
            );
            return;
        }
        if id <= self.last_peer_id {
            if self.was_reset(id, end_stream) {
                // RFC 9113 §5.1: sent before the peer saw our RST_STREAM (trailers, say).
                // Decoded, so the HPACK context is in step, and discarded.
                self.spend_idle();
                return;
            }
            if self.ignored_after_goaway(id) {
                // Trailers of a stream opened after our final GOAWAY, ignored like its open.
                self.spend_idle();
                return;
            }
            // RFC 9113 §5.1.1: ids only increase; an unexpected id (going back, or a
            // forgotten stream's) is a connection PROTOCOL_ERROR.
            self.protocol_error(
                ErrorCode::PROTOCOL_ERROR,
                "stream id not above the last one",
            );
            return;
        }
        self.last_peer_id = id;
        if self.shutdown == Shutdown::Draining {
            self.ignore_open_after_goaway();
            return;
        }
        if self.remote_active >= self.config.max_concurrent_streams {
            // RFC 9113 §5.1.2. Refusals are budgeted: a peer that keeps ignoring the limit
            // (rapid reset keeps the count low; this catches the rest) is cut off.
            self.refused_over_limit += 1;
            if self.spend_reset() {
                self.reset_new_stream(id, ErrorCode::REFUSED_STREAM, end_stream);
            }
            return;
        }
        if let Some(BlockFault::Stream(code, _)) = fault {
            // RFC 7540 §5.3.1: a stream error; the stream opened with this HEADERS is reset.
            if self.spend_reset() {
                self.reset_new_stream(id, code, end_stream);
            }
            return;
        }
        if let Some(BlockFault::TooLarge) = fault {
            let status = Status::resource_exhausted("request header list too large");
            self.reject_call(
                id,
                end_stream,
                PendingEnd::Trailers {
                    status,
                    metadata: Metadata::new(),
                },
            );
            return;
        }
        let head = match grpc::parse_request(fields.drain(..)) {
            Ok(head) => head,
            Err(HeadError::Malformed(_)) => {
                // RFC 9113 §8.1.1: a malformed request is a stream error PROTOCOL_ERROR.
                if self.spend_reset() {
                    self.reset_new_stream(id, ErrorCode::PROTOCOL_ERROR, end_stream);
                }
                return;
            }
            Err(HeadError::BadMethod) => {
                return self.reject_call(id, end_stream, PendingEnd::HttpStatus(405));
            }
            Err(HeadError::BadContentType) => {
                return self.reject_call(id, end_stream, PendingEnd::HttpStatus(415));
            }
            Err(HeadError::Grpc(status)) => {
                let end = PendingEnd::Trailers {
                    status,
                    metadata: Metadata::new(),
                };
                return self.reject_call(id, end_stream, end);
            }
        };
        let encoding = match head.encoding.as_deref() {
            None => None,
            Some(name) => match Encoding::parse(name) {
                Some(encoding) if encoding.is_supported() => Some(encoding),
                _ => {
                    // compression.md: an encoding we cannot decode is UNIMPLEMENTED.
                    let status = Status::unimplemented(format!(
                        "grpc-encoding {:?} is not supported",
                        String::from_utf8_lossy(name)
                    ));
                    let end = PendingEnd::Trailers {
                        status,
                        metadata: Metadata::new(),
                    };
                    return self.reject_call(id, end_stream, end);
                }
            },
        };
        let mut stream = self.new_remote_stream();
        stream.recv_encoding = Ok(encoding);
        let deadline = head.timeout.and_then(|t| self.now.checked_add(t));
        stream.deadline = deadline;
        stream.state = next(StreamState::Idle, Transition::RecvHeaders { end_stream })
            .unwrap_or(StreamState::Open);
        self.streams.insert(id, stream);
        self.timers.clear(super::timers::Timer::Idle);
        if let Some(deadline) = deadline {
            self.deadlines.insert((deadline, id));
        }
        self.events.push_back(Event::CallStarted {
            stream: id,
            head: Box::new(head),
            deadline,
        });
        if end_stream {
            self.events.push_back(Event::HalfClosed { stream: id });
        }
    }

    /// Server: resets the stream the peer's HEADERS just opened, which we never keep; its
    /// frames still in flight are discarded while it has not ended (`note_reset`).
    /// A stream opened above our final GOAWAY's last stream id: never processed, and the
    /// GOAWAY already tells the peer so (RFC 9113 §6.8), so it is ignored rather than answered
    /// with RST_STREAM. A client with a thousand calls in flight when we drain would otherwise
    /// make us queue a thousand control frames at once: the backlog its own peer is cut off
    /// for. A conforming client opens at most our concurrency limit in the time its GOAWAY
    /// takes to arrive; beyond that, each open spends the idle-frame budget.
    fn ignore_open_after_goaway(&mut self) {
        self.opened_after_goaway = self.opened_after_goaway.saturating_add(1);
        if self.opened_after_goaway > self.config.max_concurrent_streams {
            self.spend_idle();
        }
    }

    /// `true` for a stream the peer opened after our final GOAWAY: its frames are ignored.
    fn ignored_after_goaway(&self, id: StreamId) -> bool {
        self.shutdown == Shutdown::Draining && self.goaway_sent.is_some_and(|last| id > last)
    }

    fn reset_new_stream(&mut self, id: StreamId, code: ErrorCode, end_stream: bool) {
        self.control
            .push_back(Control::RstStream { stream: id, code });
        if !end_stream {
            self.note_reset(id);
        }
        self.check_control_backlog();
    }

    /// A server stream for a new call, counted against our concurrency limit until the
    /// application is done with it.
    fn new_remote_stream(&mut self) -> Stream {
        let mut stream = Stream::new(
            false,
            self.peer.initial_window,
            self.initial_recv_window(),
            self.config.initial_stream_window,
            self.config.max_recv_message_size,
        );
        stream.counted = true;
        self.remote_active += 1;
        stream
    }

    /// Server: answers a request the application never sees (bad method, content type,
    /// encoding, oversized head).
    fn reject_call(&mut self, id: StreamId, end_stream: bool, end: PendingEnd) {
        let mut stream = self.new_remote_stream();
        stream.state = next(StreamState::Idle, Transition::RecvHeaders { end_stream })
            .unwrap_or(StreamState::Open);
        stream.reported = true;
        stream.app_done = true;
        stream.announced = true;
        stream.send_finished = true;
        stream.pending_end = Some(end);
        self.streams.insert(id, stream);
        self.schedule(id);
    }

    fn on_response_headers(
        &mut self,
        id: StreamId,
        end_stream: bool,
        fields: &mut Vec<crate::hpack::Field>,
        fault: Option<BlockFault>,
    ) {
        let Some(stream) = self.streams.get_mut(&id) else {
            if !id.is_client_initiated() || self.is_idle_stream(id) {
                self.protocol_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "HEADERS on a stream the client never opened",
                );
            }
            return;
        };
        if !stream.state.can_recv() {
            if stream.state != StreamState::Closed {
                // RFC 9113 §5.1: half-closed (remote), or idle (a call still queued).
                self.stream_error(id, ErrorCode::STREAM_CLOSED, "HEADERS after END_STREAM");
            }
            return;
        }
        if stream.reported {
            // The call already ended here (deadline, cancel); keep the stream state right.
            if end_stream {
                self.on_remote_end(id);
            }
            return;
        }
        if let Some(BlockFault::Stream(code, reason)) = fault {
            let status = Status::internal(format!("HTTP/2 stream error {code}: {reason}"));
            self.fail_call(id, status, code);
            return;
        }
        if let Some(BlockFault::TooLarge) = fault {
            self.fail_call(
                id,
                Status::internal("response header list too large"),
                ErrorCode::CANCEL,
            );
            return;
        }
        if stream.head_received {
            // Trailers.
            if !end_stream {
                self.fail_call(
                    id,
                    Status::internal("trailers without END_STREAM"),
                    ErrorCode::PROTOCOL_ERROR,
                );
                return;
            }
            if stream.decoder.is_mid_message() {
                self.fail_call(
                    id,
                    Status::internal("stream ended in the middle of a message"),
                    ErrorCode::CANCEL,
                );
                return;
            }
            match grpc::parse_trailers(fields.drain(..), false) {
                Ok(trailers) => self.finish_call(id, trailers.status, trailers.metadata),
                Err(error) => {
                    self.fail_call(id, head_error_status(error), ErrorCode::PROTOCOL_ERROR)
                }
            }
            return;
        }
        if end_stream {
            // Trailers-Only.
            match grpc::parse_trailers_only(fields.drain(..)) {
                Ok((head, trailers)) if head.http_status != 200 => {
                    let status = http_status(head.http_status);
                    self.finish_call(id, status, trailers.metadata);
                }
                Ok((_, trailers)) => self.finish_call(id, trailers.status, trailers.metadata),
                Err(error) => {
                    self.fail_call(id, head_error_status(error), ErrorCode::PROTOCOL_ERROR)
                }
            }
            return;
        }
        match grpc::parse_response(fields.drain(..)) {
            Ok(head) if head.http_status != 200 => {
                self.fail_call(id, http_status(head.http_status), ErrorCode::CANCEL);
            }
            Ok(head) => {
                stream.head_received = true;
                stream.recv_encoding = match head.encoding.as_deref() {
                    None => Ok(None),
                    Some(name) => match Encoding::parse(name) {
                        Some(encoding) if encoding.is_supported() => Ok(Some(encoding)),
                        _ => Err(()),
                    },
                };
                if let Ok(state) = next(stream.state, Transition::RecvHeaders { end_stream: false })
                {
                    stream.state = state;
                }
                self.events.push_back(Event::Headers {
                    stream: id,
                    metadata: head.metadata,
                });
            }
            Err(error) => self.fail_call(id, head_error_status(error), ErrorCode::PROTOCOL_ERROR),
        }
    }

    /// Client: the server's trailers arrived; the call ends with them.
    fn finish_call(&mut self, id: StreamId, status: Status, metadata: Metadata) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.reported {
            return;
        }
        stream.reported = true;
        let still_sending = stream.state == StreamState::Open;
        clear_deadline(&mut self.deadlines, id, stream);
        self.events.push_back(Event::Finished {
            stream: id,
            status,
            metadata,
            unprocessed: false,
        });
        if let Ok(state) = next(stream.state, Transition::RecvEndStream) {
            if still_sending {
                // The server is done with the call: stop sending (RFC 9113 §8.1).
                stream.state = state;
                self.reset_stream(id, ErrorCode::CANCEL);
            } else {
                self.set_state(id, state);
            }
        }
    }

    fn on_rst_stream(&mut self, id: StreamId, code: ErrorCode) {
        if self.is_idle_stream(id) {
            // RFC 9113 §6.4.
            self.protocol_error(ErrorCode::PROTOCOL_ERROR, "RST_STREAM on an idle stream");
            return;
        }
        // The peer ended the stream: its frames in flight, if we reset it, are over.
        self.was_reset(id, true);
        let Some(stream) = self.streams.get(&id) else {
            return;
        };
        if !stream.local && !stream.announced {
            // Rapid reset (CVE-2023-44487): opened and reset before the application saw it
            // (a unary call is announced only once its request is complete).
            self.resets_unseen += 1;
            if !self.spend_reset() {
                return;
            }
        }
        let unprocessed = code == ErrorCode::REFUSED_STREAM;
        // A server enforcing the deadline we sent resets with CANCEL, possibly just before our
        // own timer fires: past our deadline, that is DEADLINE_EXCEEDED, as in grpc-go.
        let expired = self
            .streams
            .get(&id)
            .and_then(|s| s.deadline)
            .is_some_and(|d| self.now >= d);
        let status = if code == ErrorCode::CANCEL && expired {
            Status::deadline_exceeded("deadline exceeded (stream reset by the peer)")
        } else {
            reset_status(code, self.side)
        };
        self.end_call(id, status, unprocessed);
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.clear_send();
        let state = next(stream.state, Transition::RecvReset).unwrap_or(StreamState::Closed);
        self.set_state(id, state);
    }

    fn on_settings(&mut self, settings: Settings) {
        if settings.ack {
            if self.settings_unacked == 0 {
                self.protocol_error(ErrorCode::PROTOCOL_ERROR, "SETTINGS ACK without SETTINGS");
                return;
            }
            self.settings_unacked -= 1;
            if self.settings_unacked == 0 {
                self.timers.clear(super::timers::Timer::SettingsAck);
            }
            if !self.settings_acked {
                self.settings_acked = true;
                // RFC 7541 §6.3, RFC 9113 §4.3.1: from now on the peer's size updates may go
                // up to our SETTINGS_HEADER_TABLE_SIZE, and below 4,096 its next block must
                // open with one.
                self.decoder
                    .set_max_table_size(self.config.header_table_size as usize);
                let ours = i64::from(self.config.initial_stream_window);
                let delta = ours - i64::from(DEFAULT_WINDOW.max(self.config.initial_stream_window));
                if delta != 0 {
                    for stream in self.streams.values_mut() {
                        stream.recv_window.adjust(delta);
                    }
                }
            }
            return;
        }
        if self.got_peer_settings && !self.spend_idle() {
            return;
        }
        self.got_peer_settings = true;
        if self.side == Side::Client && settings.enable_push == Some(true) {
            // RFC 9113 §6.5.2: a server must not set ENABLE_PUSH to 1.
            self.protocol_error(ErrorCode::PROTOCOL_ERROR, "server enabled push");
            return;
        }
        if let Some(size) = settings.header_table_size {
            // We may use up to the peer's table size; 64 KiB bounds our encoder's memory.
            self.encoder
                .set_max_table_size((size as usize).min(64 << 10));
        }
        if let Some(max) = settings.max_concurrent_streams {
            self.peer.max_concurrent_streams = max;
        }
        if let Some(size) = settings.max_frame_size {
            self.peer.max_frame_size = size;
        }
        if let Some(size) = settings.max_header_list_size {
            self.peer.max_header_list_size = size;
        }
        if let Some(window) = settings.initial_window_size {
            // RFC 9113 §6.9.2: every stream's send window moves by the difference.
            let delta = i64::from(window) - i64::from(self.peer.initial_window);
            self.peer.initial_window = window;
            let mut overflow = false;
            let mut grown = Vec::new();
            for (id, stream) in self.streams.iter_mut() {
                if stream.send_window.adjust(delta).is_err() {
                    overflow = true;
                    break;
                }
                if delta > 0 && stream.has_output() {
                    grown.push(*id);
                }
            }
            if overflow {
                self.protocol_error(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "SETTINGS_INITIAL_WINDOW_SIZE overflows a window",
                );
                return;
            }
            grown.sort_unstable();
            for id in grown {
                self.schedule(id);
            }
        }
        self.control.push_back(Control::SettingsAck);
        self.check_control_backlog();
        self.open_pending_calls();
    }

    fn on_ping(&mut self, ping: Ping) {
        if !ping.ack {
            if !self.police_ping() {
                return;
            }
            if self.spend_idle() {
                self.control.push_back(Control::Ping {
                    payload: ping.payload,
                    ack: true,
                });
                self.check_control_backlog();
            }
            return;
        }
        let [kind, ..] = ping.payload;
        let seq = u64::from_be_bytes([
            0,
            ping.payload[1],
            ping.payload[2],
            ping.payload[3],
            ping.payload[4],
            ping.payload[5],
            ping.payload[6],
            ping.payload[7],
        ]);
        match kind {
            PING_APP => {
                if let Some(pos) = self
                    .app_pings
                    .iter()
                    .position(|&(s, _)| s & 0x00ff_ffff_ffff_ffff == seq)
                {
                    if let Some((_, sent)) = self.app_pings.remove(pos) {
                        let rtt = self.now.saturating_duration_since(sent);
                        self.events.push_back(Event::PingAcknowledged { rtt });
                    }
                }
            }
            PING_KEEPALIVE => {
                self.keepalive_outstanding = false;
                self.timers.clear(super::timers::Timer::KeepaliveAck);
                self.arm_keepalive();
            }
            PING_SHUTDOWN if self.shutdown == Shutdown::Announced => {
                self.send_final_goaway();
                self.maybe_finish_shutdown();
            }
            _ => {}
        }
    }

    /// Server keepalive enforcement (keepalive.md): a PING sooner than the policy allows after
    /// the previous one is a strike; past `max_strikes`, GOAWAY(ENHANCE_YOUR_CALM,
    /// "too_many_pings"). `false` when the connection was closed.
    fn police_ping(&mut self) -> bool {
        let (Side::Server, Some(policy)) = (self.side, self.config.ping_policy) else {
            return true;
        };
        let min = if self.streams.is_empty() && !policy.permit_without_calls {
            std::time::Duration::from_secs(2 * 60 * 60)
        } else {
            policy.min_interval
        };
        if let Some(last) = self.last_ping_recv {
            if self.now.saturating_duration_since(last) < min {
                self.ping_strikes += 1;
                if self.ping_strikes > policy.max_strikes {
                    self.protocol_error(ErrorCode::ENHANCE_YOUR_CALM, "too_many_pings");
                    return false;
                }
            }
        }
        self.last_ping_recv = Some(self.now);
        true
    }

    fn on_goaway(&mut self, goaway: GoAway) {
        // RFC 9113 §6.8: the last stream id may only go down.
        let last = self
            .goaway_received
            .map_or(goaway.last_stream, |prev| prev.min(goaway.last_stream));
        self.goaway_received = Some(last);
        self.events.push_back(Event::GoAway {
            last_stream: goaway.last_stream,
            code: goaway.code,
            debug: goaway.debug.clone(),
        });
        // Our calls above `last` were never processed: they may be retried elsewhere.
        let mut unprocessed: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(id, s)| s.local && **id > last)
            .map(|(id, _)| *id)
            .collect();
        unprocessed.sort_unstable();
        self.pending_open.clear();
        for id in unprocessed {
            self.end_call(
                id,
                Status::unavailable("the server is going away; call not processed"),
                true,
            );
            self.set_state(id, StreamState::Closed);
        }
        if goaway.code != ErrorCode::NO_ERROR {
            self.close_with(
                ConnectionError::Remote {
                    code: goaway.code,
                    debug: goaway.debug,
                },
                None,
                "",
            );
            return;
        }
        self.maybe_finish_shutdown();
    }

    fn on_window_update(&mut self, update: WindowUpdate) {
        if update.stream.is_connection() {
            if self.conn_send.grow(update.increment).is_err() {
                self.protocol_error(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "connection send window overflow",
                );
            }
            return;
        }
        if self.is_idle_stream(update.stream) {
            // RFC 9113 §5.1.
            self.protocol_error(ErrorCode::PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
            return;
        }
        let Some(stream) = self.streams.get_mut(&update.stream) else {
            // A closed stream: legal while the peer has not seen the end yet (RFC 9113 §6.9);
            // it costs one lookup and triggers no reply, so it is not budgeted.
            return;
        };
        if stream.send_window.grow(update.increment).is_err() {
            self.stream_error(
                update.stream,
                ErrorCode::FLOW_CONTROL_ERROR,
                "stream send window overflow",
            );
            return;
        }
        self.schedule(update.stream);
    }
}

/// The status of a call whose stream the peer reset (grpc-go's mapping of HTTP/2 codes).
fn reset_status(code: ErrorCode, side: Side) -> Status {
    let who = if side == Side::Client {
        "server"
    } else {
        "client"
    };
    let message = format!("stream reset by the {who} with {code}");
    let code = match code {
        ErrorCode::CANCEL => Code::Cancelled,
        ErrorCode::REFUSED_STREAM => Code::Unavailable,
        ErrorCode::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
        ErrorCode::INADEQUATE_SECURITY => Code::PermissionDenied,
        _ => Code::Internal,
    };
    Status::new(code, message)
}

/// The status of a response whose HTTP status was not 200 (http-grpc-status-mapping.md).
fn http_status(status: u16) -> Status {
    Status::new(
        Code::from_http_status(status),
        format!("unexpected HTTP status {status}"),
    )
}

/// The status of a call whose response head or trailers we could not accept.
fn head_error_status(error: HeadError) -> Status {
    match error {
        HeadError::Grpc(status) => status,
        HeadError::Malformed(reason) => Status::internal(format!("malformed response: {reason}")),
        HeadError::BadMethod => Status::internal("malformed response: unexpected method"),
        HeadError::BadContentType => {
            Status::unknown("response content-type is not application/grpc")
        }
    }
}

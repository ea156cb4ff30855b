//! The receiving side: bytes → frames → stream states, calls and events. This module reads
//! frames off the input, dispatches them and keeps the abuse budgets they spend; its parts
//! handle header blocks (`headers`), DATA (`data`), SETTINGS, PING and WINDOW_UPDATE
//! (`control`), and the streams and connections the peer ends (`shutdown`).

use std::time::Instant;

use bytes::{Buf, BytesMut};

use super::state::StreamState;
use super::{CLIENT_PREFACE, Connection, HeaderAssembly, Side};
use crate::error::{ErrorCode, StreamId};
use crate::frame::{self, Frame, FrameError, FrameHeader, FrameType};
use crate::grpc::Status;
use crate::hpack::PartialBlock;

mod control;
mod data;
mod headers;
mod shutdown;

/// DATA payloads at least this large are gathered into an allocation of their own.
const DEDICATED_FRAME_MIN: usize = 16 << 10;

/// A DATA frame moving fewer bytes of window than this, completing no message and not ending
/// its stream, is a sliver: it spends from the sliver budget.
const SLIVER: u32 = 64;

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
    pub(super) fn next_input_len(&mut self, bytes: &[u8]) -> usize {
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
    pub(super) fn is_large_data(&self, header: FrameHeader) -> bool {
        header.kind == FrameType::DATA
            && header.length as usize >= DEDICATED_FRAME_MIN
            && header.length <= self.config.max_frame_size
    }

    /// Moves the start of a large DATA frame (what `read_buf` holds of it, at its front) to the
    /// front of the large-frame allocation, reused once the last frame's messages are gone
    /// (no allocation, no heap churn) or made anew of exactly its size.
    pub(super) fn start_dedicated_frame(&mut self, total: usize) {
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
    pub(super) fn end_dedicated_frame(&mut self) {
        self.frame_alloc.buf =
            std::mem::replace(&mut self.read_buf, std::mem::take(&mut self.small_buf));
    }

    /// After a batch of input: the receive budget's rule 3, and the header-block timer.
    pub(super) fn after_input(&mut self) {
        self.relieve_pressure();
        self.watch_incomplete_block();
    }

    pub(super) fn process_input(&mut self) {
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
    pub(super) fn watch_incomplete_block(&mut self) {
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
    pub(super) fn match_preface(&mut self) -> bool {
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

    pub(super) fn on_frame(&mut self, frame: Frame) {
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

    /// Spends one token of the idle-frame budget; closes with ENHANCE_YOUR_CALM when empty.
    pub(super) fn spend_idle(&mut self) -> bool {
        let spent = self.idle_budget.spend(self.now);
        self.calm_unless(spent, "too many frames that do no work")
    }

    /// `spent` as is; when a budget had no token left, first closes the connection with
    /// ENHANCE_YOUR_CALM and `reason`.
    pub(super) fn calm_unless(&mut self, spent: bool, reason: &'static str) -> bool {
        if !spent {
            self.protocol_error(ErrorCode::ENHANCE_YOUR_CALM, reason);
        }
        spent
    }

    /// Spends one token of the reset budget; closes with ENHANCE_YOUR_CALM when empty.
    pub(in crate::connection) fn spend_reset(&mut self) -> bool {
        let spent = self.reset_budget.spend(self.now);
        self.calm_unless(spent, "too many reset streams")
    }

    /// `true` when `id` names a stream that was never opened (by either side): a client call
    /// still queued behind the peer's concurrency limit is idle on the wire.
    pub(super) fn is_idle_stream(&self, id: StreamId) -> bool {
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
    pub(in crate::connection) fn stream_error(
        &mut self,
        id: StreamId,
        code: ErrorCode,
        reason: &'static str,
    ) {
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
}

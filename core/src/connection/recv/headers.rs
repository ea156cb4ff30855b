//! Received header blocks: assembling them across CONTINUATION frames, requests (server),
//! responses and trailers (client), and streams opened after our final GOAWAY.

use bytes::Bytes;

use crate::connection::state::{StreamState, Transition, next};
use crate::connection::streams::{PendingEnd, Stream};
use crate::connection::{Connection, Shutdown, Side, clear_deadline};
use crate::error::{ErrorCode, StreamId};
use crate::event::Event;
use crate::grpc::{self, Code, Encoding, HeadError, Metadata, Status};
use crate::hpack::{DecodeError, FragmentError};

/// Raw bytes of one header block we read at least before closing the connection (see
/// `Connection::max_block_bytes`).
pub(super) const MAX_BLOCK_BYTES: usize = 1 << 20;

/// What one received header field costs beyond its bytes, once decoded into metadata.
pub(super) const FIELD_COST: usize = 96;

/// What is wrong with a header block beyond its fields.
#[derive(Debug, Clone, Copy)]
pub(super) enum BlockFault {
    /// Over `max_header_list_size`: only the fields within it were kept.
    TooLarge,
    /// The HEADERS frame that started it is a stream error with this code.
    Stream(ErrorCode, &'static str),
}

impl Connection {
    /// Raw bytes of one header block we read at most: beyond them the connection is closed
    /// with ENHANCE_YOUR_CALM, before the frame that would pass the bound is buffered. The
    /// block is decoded as it arrives (`push_fragment`), so this bounds the work one block
    /// costs, not memory: up to it, a block over `max_header_list_size` fails its call alone
    /// and the HPACK context stays in step. At least `MAX_BLOCK_BYTES`, and at least twice the
    /// list limit plus 1 KiB.
    pub(super) fn max_block_bytes(&self) -> usize {
        self.max_field_bytes().max(MAX_BLOCK_BYTES)
    }

    /// Raw bytes of one field (HPACK representation) that we buffer while it is cut by a
    /// fragment boundary: twice the decoded list limit plus slack, or the dynamic table size
    /// if larger (an entry the peer's encoder may insert). A sane encoder's field is never
    /// larger than its decoded size, so only a field we could neither emit nor store is
    /// refused: the connection closes with ENHANCE_YOUR_CALM.
    pub(super) fn max_field_bytes(&self) -> usize {
        (self.config.max_header_list_size as usize)
            .saturating_mul(2)
            .max(self.config.header_table_size as usize)
            .saturating_add(1024)
    }

    /// Decodes one fragment of the header block in progress; at `end_headers` the block is
    /// handed on. RFC 9113 §4.3: every block is decoded, even one to be discarded, so the
    /// HPACK context stays in step with the peer's encoder.
    pub(super) fn push_fragment(&mut self, fragment: &Bytes, end_headers: bool) {
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

    /// A whole header block was decoded into `self.fields`.
    pub(super) fn on_header_block(
        &mut self,
        id: StreamId,
        end_stream: bool,
        fault: Option<BlockFault>,
    ) {
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

    pub(super) fn on_request_headers(
        &mut self,
        id: StreamId,
        end_stream: bool,
        fields: &mut Vec<crate::hpack::Field>,
        fault: Option<BlockFault>,
    ) {
        if self.streams.contains_key(&id) {
            self.on_request_trailers(id, end_stream, fields, fault);
        } else if self.admit_new_stream(id, end_stream) {
            self.open_call(id, end_stream, fields, fault);
        }
    }

    /// Request trailers: legal HTTP/2, meaningless to gRPC. They must end the stream, and
    /// follow the HTTP/2 field rules like any header block.
    fn on_request_trailers(
        &mut self,
        id: StreamId,
        end_stream: bool,
        fields: &mut Vec<crate::hpack::Field>,
        fault: Option<BlockFault>,
    ) {
        let Some(state) = self.streams.get(&id).map(|s| s.state) else {
            return;
        };
        if !state.can_recv() {
            if state != StreamState::Closed {
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
    }

    /// Whether the peer may open stream `id` now (RFC 9113 §5.1.1, §5.1.2, §6.8); when not,
    /// what it deserves (an error, a refusal, or nothing after our GOAWAY) was done.
    fn admit_new_stream(&mut self, id: StreamId, end_stream: bool) -> bool {
        if !id.is_client_initiated() {
            self.protocol_error(
                ErrorCode::PROTOCOL_ERROR,
                "client opened an even-numbered stream",
            );
            return false;
        }
        if id <= self.last_peer_id {
            if self.was_reset(id, end_stream) {
                // RFC 9113 §5.1: sent before the peer saw our RST_STREAM (trailers, say).
                // Decoded, so the HPACK context is in step, and discarded.
                self.spend_idle();
                return false;
            }
            if self.ignored_after_goaway(id) {
                // Trailers of a stream opened after our final GOAWAY, ignored like its open.
                self.spend_idle();
                return false;
            }
            // RFC 9113 §5.1.1: ids only increase; an unexpected id (going back, or a
            // forgotten stream's) is a connection PROTOCOL_ERROR.
            self.protocol_error(
                ErrorCode::PROTOCOL_ERROR,
                "stream id not above the last one",
            );
            return false;
        }
        self.last_peer_id = id;
        if self.shutdown == Shutdown::Draining {
            self.ignore_open_after_goaway();
            return false;
        }
        if self.remote_active >= self.config.max_concurrent_streams && self.over_limit() {
            // RFC 9113 §5.1.2. Refusals are budgeted: a peer that keeps ignoring the limit
            // (rapid reset keeps the count low; this catches the rest) is cut off.
            self.refused_over_limit += 1;
            if self.spend_reset() {
                self.reset_new_stream(id, ErrorCode::REFUSED_STREAM, end_stream);
            }
            return false;
        }
        true
    }

    /// Whether a new stream would exceed our concurrency limit, at the limit by count. Streams
    /// still counted only because the application has not yet seen their end (closed on the
    /// wire: the peer reset them, say) free their slots as soon as it polls their events; up
    /// to the limit's worth of them do not count against a new stream. So a client that
    /// cancels a call and at once starts another (both frames in one read) is not refused,
    /// and what a peer keeps the server busy with stays bounded: twice the limit at most,
    /// the rapid-reset budget aside.
    fn over_limit(&self) -> bool {
        let limit = self.config.max_concurrent_streams;
        let winding_down = self
            .streams
            .values()
            .filter(|s| !s.local && s.counted && s.state == StreamState::Closed && !s.app_done())
            .count();
        let winding_down = u32::try_from(winding_down).unwrap_or(u32::MAX).min(limit);
        self.remote_active.saturating_sub(winding_down) >= limit
    }

    /// Opens a call on the new stream `id`, or refuses its head (a stream error, an HTTP
    /// status, or a gRPC status in Trailers-Only).
    fn open_call(
        &mut self,
        id: StreamId,
        end_stream: bool,
        fields: &mut Vec<crate::hpack::Field>,
        fault: Option<BlockFault>,
    ) {
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
        let encoding = match declared_encoding(head.encoding.as_deref()) {
            Ok(encoding) => encoding,
            Err(status) => {
                let end = PendingEnd::Trailers {
                    status,
                    metadata: Metadata::new(),
                };
                return self.reject_call(id, end_stream, end);
            }
        };
        let mut stream = self.new_remote_stream();
        stream.recv_encoding = Ok(encoding);
        let deadline = head.timeout.and_then(|t| self.now.checked_add(t));
        stream.deadline = deadline;
        stream.state = next(StreamState::Idle, Transition::RecvHeaders { end_stream })
            .unwrap_or(StreamState::Open);
        self.streams.insert(id, stream);
        self.timers.clear(crate::connection::timers::Timer::Idle);
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
    pub(super) fn ignore_open_after_goaway(&mut self) {
        self.opened_after_goaway = self.opened_after_goaway.saturating_add(1);
        if self.opened_after_goaway > self.config.max_concurrent_streams {
            self.spend_idle();
        }
    }

    /// `true` for a stream the peer opened after our final GOAWAY: its frames are ignored.
    pub(super) fn ignored_after_goaway(&self, id: StreamId) -> bool {
        self.shutdown == Shutdown::Draining && self.goaway_sent.is_some_and(|last| id > last)
    }

    /// Resets a stream the peer opened that we never took on (refused, malformed).
    pub(super) fn reset_new_stream(&mut self, id: StreamId, code: ErrorCode, end_stream: bool) {
        self.queue_reset(id, code, !end_stream);
        self.check_control_backlog();
    }

    /// A server stream for a new call, counted against our concurrency limit until the
    /// application is done with it.
    pub(super) fn new_remote_stream(&mut self) -> Stream {
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
    pub(super) fn reject_call(&mut self, id: StreamId, end_stream: bool, end: PendingEnd) {
        let mut stream = self.new_remote_stream();
        stream.state = next(StreamState::Idle, Transition::RecvHeaders { end_stream })
            .unwrap_or(StreamState::Open);
        stream.mark_done();
        stream.announced = true;
        stream.send_finished = true;
        stream.pending_end = Some(end);
        self.streams.insert(id, stream);
        self.schedule(id);
    }

    pub(super) fn on_response_headers(
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
        if stream.reported() {
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
            self.on_response_trailers(id, end_stream, fields);
        } else if end_stream {
            self.on_trailers_only(id, fields);
        } else {
            self.on_response_head(id, fields);
        }
    }

    /// The trailers that end a call whose head arrived.
    fn on_response_trailers(
        &mut self,
        id: StreamId,
        end_stream: bool,
        fields: &mut Vec<crate::hpack::Field>,
    ) {
        if !end_stream {
            self.fail_call(
                id,
                Status::internal("trailers without END_STREAM"),
                ErrorCode::PROTOCOL_ERROR,
            );
            return;
        }
        if self
            .streams
            .get(&id)
            .is_some_and(|s| s.decoder.is_mid_message())
        {
            self.fail_call(
                id,
                Status::internal("stream ended in the middle of a message"),
                ErrorCode::CANCEL,
            );
            return;
        }
        match grpc::parse_trailers(fields.drain(..), false) {
            Ok(trailers) => self.finish_call(id, trailers.status, trailers.metadata),
            Err(error) => self.fail_call(id, head_error_status(error), ErrorCode::PROTOCOL_ERROR),
        }
    }

    /// A response that is only trailers (END_STREAM on its first header block).
    fn on_trailers_only(&mut self, id: StreamId, fields: &mut Vec<crate::hpack::Field>) {
        match grpc::parse_trailers_only(fields.drain(..)) {
            Ok((head, trailers)) if head.http_status != 200 => {
                let status = http_status(head.http_status);
                self.finish_call(id, status, trailers.metadata);
            }
            Ok((_, trailers)) => self.finish_call(id, trailers.status, trailers.metadata),
            Err(error) => self.fail_call(id, head_error_status(error), ErrorCode::PROTOCOL_ERROR),
        }
    }

    /// A response head: the call goes on, its messages decoded with the encoding it declares.
    fn on_response_head(&mut self, id: StreamId, fields: &mut Vec<crate::hpack::Field>) {
        let head = match grpc::parse_response(fields.drain(..)) {
            Ok(head) if head.http_status == 200 => head,
            Ok(head) => {
                return self.fail_call(id, http_status(head.http_status), ErrorCode::CANCEL);
            }
            Err(error) => {
                return self.fail_call(id, head_error_status(error), ErrorCode::PROTOCOL_ERROR);
            }
        };
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.head_received = true;
        stream.recv_encoding = declared_encoding(head.encoding.as_deref()).map_err(|_| ());
        if let Ok(state) = next(stream.state, Transition::RecvHeaders { end_stream: false }) {
            stream.state = state;
        }
        self.events.push_back(Event::Headers {
            stream: id,
            metadata: head.metadata,
        });
    }

    /// Client: the server's trailers arrived; the call ends with them.
    pub(super) fn finish_call(&mut self, id: StreamId, status: Status, metadata: Metadata) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.reported() {
            return;
        }
        stream.mark_reported();
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
}

/// The status of a response whose HTTP status was not 200 (http-grpc-status-mapping.md).
pub(super) fn http_status(status: u16) -> Status {
    Status::new(
        Code::from_http_status(status),
        format!("unexpected HTTP status {status}"),
    )
}

/// The status of a call whose response head or trailers we could not accept.
pub(super) fn head_error_status(error: HeadError) -> Status {
    match error {
        HeadError::Grpc(status) => status,
        HeadError::Malformed(reason) => Status::internal(format!("malformed response: {reason}")),
        HeadError::BadMethod => Status::internal("malformed response: unexpected method"),
        HeadError::BadContentType => {
            Status::unknown("response content-type is not application/grpc")
        }
    }
}

/// The message encoding a request or response declares (`grpc-encoding`), or the
/// UNIMPLEMENTED status of one we cannot decode (compression.md).
fn declared_encoding(name: Option<&[u8]>) -> Result<Option<Encoding>, Status> {
    let Some(name) = name else {
        return Ok(None);
    };
    match Encoding::parse(name) {
        Some(encoding) if encoding.is_supported() => Ok(Some(encoding)),
        _ => Err(Status::unimplemented(format!(
            "grpc-encoding {:?} is not supported",
            String::from_utf8_lossy(name)
        ))),
    }
}

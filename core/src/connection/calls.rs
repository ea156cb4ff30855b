//! Application commands: start calls, send messages, headers and trailers, cancel, release.

use core::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::state::StreamState;
use super::streams::{Chunk, PendingEnd, PendingHeaders, Stream};
use super::{CallRequest, Connection, Side, clear_deadline};
use crate::error::{ErrorCode, StreamId};
use crate::grpc::{Code, Encoding, Metadata, Status, encode_prefix};

/// The application asked for something the connection or call cannot do. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The connection is closed.
    ConnectionClosed,
    /// The connection is shutting down (GOAWAY sent or received): start the call elsewhere.
    GoingAway,
    /// All 2^30 client stream ids were used: open a new connection.
    StreamIdsExhausted,
    /// That command belongs to the other side (e.g. `start_call` on a server).
    WrongSide,
    /// No call with that stream id is in progress.
    UnknownStream(StreamId),
    /// The call already ended (finished, cancelled, reset or past its deadline).
    CallEnded(StreamId),
    /// The client already half-closed, or the server already sent trailers.
    SendingFinished(StreamId),
    /// Response headers were already sent (or queued) for this call.
    HeadersAlreadySent(StreamId),
    /// The message is larger than `max_send_message_size` (gRPC: RESOURCE_EXHAUSTED).
    MessageTooLarge {
        /// The message's size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The call's send queue is full; wait for `Event::Writable`.
    SendBufferFull(StreamId),
    /// A compressed message on a call that has no outgoing `grpc-encoding`.
    NoEncoding(StreamId),
}

impl CallError {
    /// The gRPC status a call layer reports for this error.
    pub fn to_status(&self) -> Status {
        let code = match self {
            Self::ConnectionClosed | Self::GoingAway | Self::StreamIdsExhausted => {
                Code::Unavailable
            }
            Self::MessageTooLarge { .. } => Code::ResourceExhausted,
            Self::CallEnded(_) => Code::Cancelled,
            _ => Code::Internal,
        };
        Status::new(code, self.to_string())
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnectionClosed => f.write_str("the connection is closed"),
            Self::GoingAway => f.write_str("the connection is shutting down"),
            Self::StreamIdsExhausted => f.write_str("the connection ran out of stream ids"),
            Self::WrongSide => f.write_str("not available on this side of the connection"),
            Self::UnknownStream(id) => write!(f, "no call on stream {id}"),
            Self::CallEnded(id) => write!(f, "the call on stream {id} already ended"),
            Self::SendingFinished(id) => {
                write!(f, "the call on stream {id} already finished sending")
            }
            Self::HeadersAlreadySent(id) => write!(f, "headers were already sent on stream {id}"),
            Self::MessageTooLarge { size, limit } => {
                write!(
                    f,
                    "message of {size} bytes exceeds the send limit of {limit}"
                )
            }
            Self::SendBufferFull(id) => write!(f, "the send buffer of stream {id} is full"),
            Self::NoEncoding(id) => {
                write!(f, "compressed message on stream {id} without grpc-encoding")
            }
        }
    }
}

impl std::error::Error for CallError {}

impl Connection {
    /// Client: starts a call. Its HEADERS go out when the peer's concurrency limit allows;
    /// until then the call waits in order (it is not failed). The deadline counts from `now`.
    pub fn start_call(
        &mut self,
        request: impl Into<Arc<CallRequest>>,
        now: Instant,
    ) -> Result<StreamId, CallError> {
        let request = request.into();
        if self.side != Side::Client {
            return Err(CallError::WrongSide);
        }
        self.check_open()?;
        self.now = now;
        if self.goaway_received.is_some() || self.shutdown != super::Shutdown::None {
            return Err(CallError::GoingAway);
        }
        if self.next_local_id > StreamId::MAX.0 {
            return Err(CallError::StreamIdsExhausted);
        }
        let id = StreamId(self.next_local_id);
        self.next_local_id += 2;
        let mut stream = Stream::new(
            true,
            self.peer.initial_window,
            self.initial_recv_window(),
            self.config.initial_stream_window,
            self.config.max_recv_message_size,
        );
        stream.send_encoding = request.encoding.filter(|e| *e != Encoding::Identity);
        stream.deadline = request.timeout.and_then(|t| now.checked_add(t));
        if let Some(deadline) = stream.deadline {
            self.deadlines.insert((deadline, id));
        }
        stream.pending_headers = Some(PendingHeaders::Request(request));
        self.streams.insert(id, stream);
        self.pending_open.push_back(id);
        self.open_pending_calls();
        Ok(id)
    }

    /// Queues one message on a call. `compressed` says `message` is already compressed with the
    /// call's outgoing encoding (see [`crate::grpc::compress`]). One message is always accepted
    /// on an empty queue; beyond `max_send_buffer` queued bytes the call must wait for
    /// [`Event::Writable`](crate::Event::Writable).
    pub fn send_message(
        &mut self,
        id: StreamId,
        message: Bytes,
        compressed: bool,
    ) -> Result<(), CallError> {
        self.check_open()?;
        let max_size = self.config.max_send_message_size.min(u32::MAX as usize);
        let max_buffer = self.config.max_send_buffer;
        let stream = self.sendable(id)?;
        if compressed && stream.send_encoding.is_none() {
            return Err(CallError::NoEncoding(id));
        }
        if message.len() > max_size {
            return Err(CallError::MessageTooLarge {
                size: message.len(),
                limit: max_size,
            });
        }
        if stream.queued_bytes > 0 && stream.queued_bytes + message.len() > max_buffer {
            stream.want_writable = true;
            return Err(CallError::SendBufferFull(id));
        }
        if !stream.local && !stream.head_sent && stream.pending_headers.is_none() {
            // The response head goes first, implicitly.
            stream.pending_headers = Some(PendingHeaders::Response {
                metadata: Metadata::new(),
                encoding: stream.send_encoding,
            });
        }
        stream.queued_bytes += 5 + message.len();
        stream.queue.push_back(Chunk {
            prefix: encode_prefix(compressed, message.len() as u32),
            prefix_sent: 0,
            body: message,
        });
        self.schedule(id);
        Ok(())
    }

    /// Client: half-closes the call (no more messages), END_STREAM after the queued messages.
    pub fn finish_sending(&mut self, id: StreamId) -> Result<(), CallError> {
        if self.side != Side::Client {
            return Err(CallError::WrongSide);
        }
        self.check_open()?;
        let stream = self.sendable(id)?;
        stream.pending_end = Some(PendingEnd::EndStream);
        stream.send_finished = true;
        self.schedule(id);
        Ok(())
    }

    /// Server: sends the response head now, with initial metadata, and chooses the compression
    /// of the response messages (`None` for plain).
    pub fn send_headers(
        &mut self,
        id: StreamId,
        metadata: Metadata,
        encoding: Option<Encoding>,
    ) -> Result<(), CallError> {
        if self.side != Side::Server {
            return Err(CallError::WrongSide);
        }
        self.check_open()?;
        let stream = self.sendable(id)?;
        if stream.head_sent || stream.pending_headers.is_some() {
            return Err(CallError::HeadersAlreadySent(id));
        }
        stream.send_encoding = encoding.filter(|e| *e != Encoding::Identity);
        stream.pending_headers = Some(PendingHeaders::Response {
            metadata,
            encoding: stream.send_encoding,
        });
        self.schedule(id);
        Ok(())
    }

    /// Server: ends the call with `status` and trailing metadata, after the queued messages (a
    /// Trailers-Only response when no head was sent). The call is then over for the application.
    pub fn send_trailers(
        &mut self,
        id: StreamId,
        status: Status,
        metadata: Metadata,
    ) -> Result<(), CallError> {
        if self.side != Side::Server {
            return Err(CallError::WrongSide);
        }
        self.check_open()?;
        let stream = self.sendable(id)?;
        stream.pending_end = Some(PendingEnd::Trailers { status, metadata });
        stream.send_finished = true;
        stream.mark_done();
        stream.end_receiving();
        if let Some(stream) = self.streams.get_mut(&id) {
            clear_deadline(&mut self.deadlines, id, stream);
        }
        self.recharge(id);
        self.schedule(id);
        self.maybe_forget(id);
        Ok(())
    }

    /// Cancels a call: RST_STREAM(CANCEL) if it reached the wire. A client then receives
    /// `Event::Finished` with CANCELLED; on a server the call is simply over. Cancelling a call
    /// that already ended is a no-op.
    pub fn cancel(&mut self, id: StreamId) -> Result<(), CallError> {
        self.check_open()?;
        let Some(stream) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if stream.reported() && stream.state == StreamState::Closed {
            return Ok(());
        }
        let on_wire = stream.state.is_active();
        if stream.local {
            self.end_call(id, Status::cancelled("cancelled by the client"), false);
        } else if let Some(stream) = self.streams.get_mut(&id) {
            stream.mark_done();
            stream.clear_send();
            stream.end_receiving();
            self.recharge(id);
        }
        if let Some(pos) = self.pending_open.iter().position(|&p| p == id) {
            self.pending_open.remove(pos);
        }
        if on_wire {
            self.reset_stream(id, ErrorCode::CANCEL);
        } else {
            self.set_state(id, StreamState::Closed);
        }
        Ok(())
    }

    /// The application consumed `n` bytes of received messages on `id` (see
    /// [`Message::credit`](crate::Message::credit)); the credit goes back to the peer, batched.
    /// Unknown or finished streams are ignored.
    pub fn release_capacity(&mut self, id: StreamId, n: usize) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.unreleased = stream.unreleased.saturating_sub(n as u64);
        self.recharge(id);
        self.credit_stream(id);
    }

    /// Bytes `send_message` accepts on `id` before the call must wait for `Event::Writable`.
    pub fn send_capacity(&self, id: StreamId) -> usize {
        self.streams
            .get(&id)
            .filter(|s| !s.send_finished)
            .map_or(0, |s| {
                self.config.max_send_buffer.saturating_sub(s.queued_bytes)
            })
    }

    /// The stream, if the application may still send on it.
    fn sendable(&mut self, id: StreamId) -> Result<&mut Stream, CallError> {
        let stream = self
            .streams
            .get_mut(&id)
            .ok_or(CallError::UnknownStream(id))?;
        if stream.reported() && !stream.send_finished {
            return Err(CallError::CallEnded(id));
        }
        if stream.send_finished {
            return Err(if stream.reported() && stream.pending_end.is_none() {
                CallError::CallEnded(id)
            } else {
                CallError::SendingFinished(id)
            });
        }
        if !stream.state.can_send() {
            return Err(CallError::CallEnded(id));
        }
        Ok(stream)
    }
}

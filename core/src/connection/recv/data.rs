//! Received DATA: flow control, message reassembly, the end of the peer's side of a stream,
//! and the calls it fails.

use bytes::Bytes;

use super::SLIVER;
use crate::connection::state::{StreamState, Transition, next};
use crate::connection::streams::PendingEnd;
use crate::connection::{Connection, Control};
use crate::error::{ErrorCode, StreamId};
use crate::event::{Event, Message};
use crate::frame::Data;
use crate::grpc::{Encoding, Metadata, Status};

impl Connection {
    pub(super) fn on_data(&mut self, data: Data) {
        let (id, flow_len, end_stream) = (data.stream, data.flow_len, data.end_stream);
        if !self.admit_data(&data) {
            return;
        }
        let events_before = self.events.len();
        if !self.deliver_messages(id, data.data) {
            return;
        }
        self.recharge(id);
        self.credit_stream(id);
        let completed_nothing = self.events.len() == events_before;
        if flow_len < SLIVER && completed_nothing && !end_stream && !self.spend_sliver() {
            return;
        }
        if end_stream {
            self.on_remote_end(id);
        }
    }

    /// Charges a DATA frame to the windows and checks that its stream may receive it; `false`
    /// when it goes no further (ignored, or an error was dealt with). Its bytes are then held
    /// for the stream.
    fn admit_data(&mut self, data: &Data) -> bool {
        let id = data.stream;
        // RFC 9113 §6.9.1: the connection window is charged for every DATA frame, even on
        // streams we no longer know. Its credit returns as the memory the frame filled is
        // freed (`held.rs`); padding and dropped bytes fill none.
        if self.conn_recv.receive(data.flow_len).is_err() {
            self.protocol_error(
                ErrorCode::FLOW_CONTROL_ERROR,
                "connection receive window exceeded",
            );
            return false;
        }
        if data.data.is_empty() && !data.end_stream && !self.spend_idle() {
            return false;
        }
        if self.is_idle_stream(id) {
            self.protocol_error(ErrorCode::PROTOCOL_ERROR, "DATA on an idle stream");
            return false;
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            // A stream we closed: RFC 9113 §5.1 lets us ignore it.
            self.was_reset(id, data.end_stream);
            if data.flow_len < SLIVER && !data.end_stream {
                self.spend_sliver();
            }
            return false;
        };
        if next(stream.state, Transition::RecvData).is_err() {
            if stream.state == StreamState::Closed {
                // We reset it or ended it; the peer's frames were in flight.
                self.was_reset(id, data.end_stream);
                return false;
            }
            // RFC 9113 §6.1: half-closed (remote), the peer itself ended the stream.
            self.stream_error(id, ErrorCode::STREAM_CLOSED, "DATA after END_STREAM");
            return false;
        }
        if stream.recv_window.receive(data.flow_len).is_err() {
            self.stream_error(
                id,
                ErrorCode::FLOW_CONTROL_ERROR,
                "stream receive window exceeded",
            );
            return false;
        }
        if stream.local && !stream.head_received {
            self.fail_call(
                id,
                Status::internal("DATA before the response headers"),
                ErrorCode::PROTOCOL_ERROR,
            );
            return false;
        }
        stream.held += u64::from(data.flow_len);
        true
    }

    /// Hands `bytes` to the stream's message decoder and reports the messages it completes;
    /// `false` if one failed the call. Nobody reads a call that already ended: its bytes are
    /// credited back at once.
    fn deliver_messages(&mut self, id: StreamId, bytes: Bytes) -> bool {
        let backing = self.frame_backing;
        let Some(stream) = self.streams.get_mut(&id) else {
            return false;
        };
        if stream.reported() {
            stream.unreleased = 0;
            return true;
        }
        match backing {
            Some(backing) => stream.decoder.push_shared(bytes, backing),
            None => stream.decoder.push(bytes),
        }
        loop {
            let raw = match stream.decoder.next_message() {
                Ok(Some(raw)) => raw,
                Ok(None) => return true,
                Err(error) => {
                    self.fail_call(id, error.to_status(), ErrorCode::CANCEL);
                    return false;
                }
            };
            let encoding = match message_encoding(stream.recv_encoding, raw.compressed) {
                Ok(encoding) => encoding,
                Err(status) => {
                    self.fail_call(id, status, ErrorCode::CANCEL);
                    return false;
                }
            };
            // Its credit (bytes and bookkeeping) waits for the application's release: even
            // empty messages queue only within the window.
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
    }

    /// Spends one token of the sliver budget: DATA frames that move almost nothing and
    /// complete nothing (1-byte pieces of a large message). A slow producer's small frames
    /// stay within its refill; a flood closes with ENHANCE_YOUR_CALM.
    pub(super) fn spend_sliver(&mut self) -> bool {
        let spent = self.sliver_budget.spend(self.now);
        self.calm_unless(spent, "too many DATA frames that carry almost nothing")
    }

    /// Returns to the peer whatever `id` holds beyond its unreleased messages.
    pub(in crate::connection) fn credit_stream(&mut self, id: StreamId) {
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
    pub(super) fn on_remote_end(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let mid_message = stream.decoder.is_mid_message();
        let local = stream.local;
        let reported = stream.reported();
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
    pub(in crate::connection) fn fail_call(
        &mut self,
        id: StreamId,
        status: Status,
        code: ErrorCode,
    ) {
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
    pub(in crate::connection) fn queue_trailers(&mut self, id: StreamId, status: Status) {
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
}

/// The encoding to decode a received message with: the stream's declared one when the
/// message is compressed (PROTOCOL-HTTP2.md), else none.
fn message_encoding(
    declared: Result<Option<Encoding>, ()>,
    compressed: bool,
) -> Result<Option<Encoding>, Status> {
    if !compressed {
        return Ok(None);
    }
    match declared {
        Ok(Some(encoding)) if encoding != Encoding::Identity => Ok(Some(encoding)),
        Ok(_) => Err(Status::internal(
            "compressed message received without grpc-encoding",
        )),
        Err(()) => Err(Status::internal(
            "compressed message in an encoding we do not support",
        )),
    }
}

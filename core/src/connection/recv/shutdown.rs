//! RST_STREAM and GOAWAY: the streams and connections the peer ends.

use crate::connection::state::{StreamState, Transition, next};
use crate::connection::{Connection, Side};
use crate::error::{ConnectionError, ErrorCode, StreamId};
use crate::event::Event;
use crate::frame::GoAway;
use crate::grpc::{Code, Status};

impl Connection {
    pub(super) fn on_rst_stream(&mut self, id: StreamId, code: ErrorCode) {
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

    pub(super) fn on_goaway(&mut self, goaway: GoAway) {
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
}

/// The status of a call whose stream the peer reset (grpc-go's mapping of HTTP/2 codes).
pub(super) fn reset_status(code: ErrorCode, side: Side) -> Status {
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

//! Per-stream state: the HTTP/2 state, both windows, the message reassembly and the send queue.

use crate::queue::InlineQueue;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::flow_control::{RecvWindow, SendWindow};
use super::state::StreamState;
use crate::error::StreamId;
use crate::grpc::{Encoding, MessageDecoder, Metadata, Status};

use super::CallRequest;

/// One queued message: its 5-byte prefix kept inline (no allocation per message) and its body,
/// both consumed from the front as DATA frames are written.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) prefix: [u8; 5],
    /// Prefix bytes already written.
    pub(crate) prefix_sent: u8,
    pub(crate) body: Bytes,
}

/// Headers we still have to write for this stream.
#[derive(Debug)]
pub(crate) enum PendingHeaders {
    /// Client: the request head.
    Request(Arc<CallRequest>),
    /// Server: the response head.
    Response {
        metadata: Metadata,
        encoding: Option<Encoding>,
    },
}

/// How our side of the stream ends once the queue drains.
#[derive(Debug)]
pub(crate) enum PendingEnd {
    /// Client half-close: END_STREAM on the last DATA frame (or an empty one).
    EndStream,
    /// Server: trailers (or a Trailers-Only response when no head was sent).
    Trailers { status: Status, metadata: Metadata },
    /// Server: a bare HTTP response without gRPC (405, 415): `:status` and END_STREAM.
    HttpStatus(u16),
}

/// Where a call stands as the application sees it; it only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CallPhase {
    /// Its end is not reported yet.
    Running,
    /// Its terminal event is queued (or the server application ended the call itself):
    /// nothing more is reported for it.
    Reported,
    /// The application has seen (or caused) its end: once the stream is Closed on the wire
    /// too, it can be forgotten.
    Done,
}

/// One stream's state. Its HTTP/2 state and its call's phase are enums; the flags left are
/// facts independent of them and of each other (which side opened it, what was sent or
/// received of the head, the send side's bookkeeping).
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) state: StreamState,
    /// We opened it (a client call).
    pub(crate) local: bool,
    pub(crate) send_window: SendWindow,
    pub(crate) recv_window: RecvWindow,
    /// Received bytes not yet credited back to the peer. Kept equal to `unreleased` whenever it
    /// is above it: everything except delivered, unreleased message bytes is credited at once
    /// (padding, prefixes, a message still being assembled, bounded by the message limit).
    /// When a message completes, its already-credited bytes become a debt (`held` below
    /// `unreleased`) that the application's releases repay before any new credit.
    pub(crate) held: u64,
    /// Credit of the messages delivered to the application and not yet released by it
    /// ([`Message::credit`](crate::Message::credit): their bytes and a fixed cost each).
    pub(crate) unreleased: u64,
    /// The application has seen `Event::CallStarted` for this (server) stream.
    pub(crate) announced: bool,
    pub(crate) decoder: MessageDecoder,
    /// The peer's `grpc-encoding`: `Ok(None)` identity, `Err(())` a name we do not support.
    pub(crate) recv_encoding: Result<Option<Encoding>, ()>,
    /// Client: the response head arrived (messages and trailers may follow).
    pub(crate) head_received: bool,
    /// Server: the response head was written (trailers are not Trailers-Only).
    pub(crate) head_sent: bool,
    pub(crate) pending_headers: Option<PendingHeaders>,
    pub(crate) queue: InlineQueue<Chunk>,
    pub(crate) queued_bytes: usize,
    pub(crate) pending_end: Option<PendingEnd>,
    /// The application may not queue more (half-closed or trailers given).
    pub(crate) send_finished: bool,
    /// `send_message` refused a message: emit `Writable` once the queue drains.
    pub(crate) want_writable: bool,
    /// Our compression for outgoing messages.
    pub(crate) send_encoding: Option<Encoding>,
    pub(crate) deadline: Option<Instant>,
    /// Where the call stands as the application sees it.
    phase: CallPhase,
    /// The stream sits in the connection's send rotation.
    pub(crate) scheduled: bool,
    /// Counted in the connection's active-stream tally for its side.
    pub(crate) counted: bool,
    /// Decoded size (RFC 9113 §6.5.2) of the heads received on this stream, held while it
    /// lives.
    pub(crate) head_cost: usize,
    /// What the stream is charged against the receive budget now (see `held.rs`), and the
    /// part of it that is a message being reassembled.
    pub(crate) charged: usize,
    pub(crate) charged_partial: usize,
}

impl Stream {
    pub(crate) fn new(
        local: bool,
        send_window: u32,
        recv_window: u32,
        recv_target: u32,
        max_message: usize,
    ) -> Self {
        Self {
            state: StreamState::Idle,
            local,
            send_window: SendWindow::new(send_window),
            recv_window: RecvWindow::new(recv_window, recv_target),
            held: 0,
            unreleased: 0,
            announced: false,
            decoder: MessageDecoder::new(max_message),
            recv_encoding: Ok(None),
            head_received: false,
            head_sent: false,
            pending_headers: None,
            queue: InlineQueue::default(),
            queued_bytes: 0,
            pending_end: None,
            send_finished: false,
            want_writable: false,
            send_encoding: None,
            deadline: None,
            phase: CallPhase::Running,
            scheduled: false,
            counted: false,
            head_cost: 0,
            charged: 0,
            charged_partial: 0,
        }
    }

    /// The call's end was reported (or the server application ended it itself).
    pub(crate) fn reported(&self) -> bool {
        self.phase >= CallPhase::Reported
    }

    /// The application has seen (or caused) the call's end.
    pub(crate) fn app_done(&self) -> bool {
        self.phase == CallPhase::Done
    }

    /// The call's end is reported: nothing more is, for it.
    pub(crate) fn mark_reported(&mut self) {
        self.phase = self.phase.max(CallPhase::Reported);
    }

    /// The application has seen (or caused) the call's end.
    pub(crate) fn mark_done(&mut self) {
        self.phase = CallPhase::Done;
    }

    /// Something is ready to be written, ignoring flow control.
    pub(crate) fn has_output(&self) -> bool {
        self.pending_headers.is_some() || self.queued_bytes > 0 || self.pending_end.is_some()
    }

    /// Stops receiving for the application: a partial message and later DATA are dropped.
    pub(crate) fn end_receiving(&mut self) {
        self.decoder.discard();
    }

    /// Drops everything queued for sending (the stream was reset).
    pub(crate) fn clear_send(&mut self) {
        self.pending_headers = None;
        self.queue.clear();
        self.queued_bytes = 0;
        self.pending_end = None;
        self.send_finished = true;
    }
}

/// A cheap hasher for stream ids: ids are small, distinct and policed (they only increase and
/// their number is bounded by MAX_CONCURRENT_STREAMS), so SipHash buys nothing here.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StreamIdHasher(u64);

impl Hasher for StreamIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// All live streams by id.
pub(crate) type StreamMap = HashMap<StreamId, Stream, BuildHasherDefault<StreamIdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_map_finds_ids() {
        let mut map = StreamMap::default();
        for id in (1..2000).step_by(2) {
            map.insert(StreamId(id), Stream::new(true, 10, 10, 10, 10));
        }
        assert!(map.contains_key(&StreamId(1999)));
        assert!(!map.contains_key(&StreamId(2)));
        assert!(!map.get(&StreamId(1)).unwrap().has_output());
    }
}

//! What a [`Connection`](crate::Connection) reports to the application: plain data.

use core::time::Duration;
use std::time::Instant;

use bytes::Bytes;

use crate::error::{ConnectionError, ErrorCode, StreamId};
use crate::grpc::{Encoding, Metadata, RequestHead, Status};

/// One received gRPC message, as it was on the wire (possibly compressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message bytes; compressed with `encoding` when that is `Some`.
    pub data: Bytes,
    /// The call's `grpc-encoding` when the message's compressed flag was set.
    pub encoding: Option<Encoding>,
}

impl Message {
    /// What one message costs beyond its bytes while the application holds it: its prefix,
    /// its event and its place in a queue. Charged so that a flood of empty messages is
    /// bounded by the receive budget like any other.
    pub const OVERHEAD: usize = 64;

    /// Credit this message holds until the application calls
    /// [`Connection::release_capacity`](crate::Connection::release_capacity) with it: its
    /// bytes plus [`OVERHEAD`](Self::OVERHEAD). Stream and connection windows reopen by it.
    pub fn credit(&self) -> usize {
        self.data.len() + Self::OVERHEAD
    }

    /// The message bytes, decompressed if needed, refusing anything over `limit` bytes.
    pub fn decode(&self, limit: usize) -> Result<Bytes, Status> {
        match self.encoding {
            None | Some(Encoding::Identity) => {
                if self.data.len() > limit {
                    return Err(Status::resource_exhausted(format!(
                        "message of {} bytes exceeds the limit of {limit}",
                        self.data.len()
                    )));
                }
                Ok(self.data.clone())
            }
            Some(encoding) => {
                crate::grpc::decompress(encoding, &self.data, limit).map_err(|e| e.to_status())
            }
        }
    }

    /// As [`decode`](Self::decode), taking the message: an uncompressed one hands over its
    /// bytes as they are (a clone of a freshly received `Bytes` would allocate).
    pub fn into_payload(self, limit: usize) -> Result<Bytes, Status> {
        match self.encoding {
            None | Some(Encoding::Identity) => {
                if self.data.len() > limit {
                    return Err(Status::resource_exhausted(format!(
                        "message of {} bytes exceeds the limit of {limit}",
                        self.data.len()
                    )));
                }
                Ok(self.data)
            }
            Some(_) => self.decode(limit),
        }
    }
}

/// Something that happened on the connection. Complete when emitted.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Server: a client started a call. Its stream holds a concurrency slot until the call ends.
    CallStarted {
        /// The call's stream.
        stream: StreamId,
        /// The validated request head: path, authority, metadata, encodings.
        head: Box<RequestHead>,
        /// When the call's `grpc-timeout` expires, on the clock passed to `recv`.
        deadline: Option<Instant>,
    },
    /// Client: the server's response headers (initial metadata).
    Headers {
        /// The call's stream.
        stream: StreamId,
        /// Custom metadata of the response head.
        metadata: Metadata,
    },
    /// A message arrived. Its credit returns to the peer only through `release_capacity`.
    Message {
        /// The call's stream.
        stream: StreamId,
        /// The message, possibly compressed.
        message: Message,
    },
    /// Server: the client half-closed; no more messages will arrive on this call.
    HalfClosed {
        /// The call's stream.
        stream: StreamId,
    },
    /// Client: the call ended, with the server's status or one we derived (deadline, reset,
    /// connection loss, malformed response). Last event of the call.
    Finished {
        /// The call's stream.
        stream: StreamId,
        /// The final status.
        status: Status,
        /// Trailing metadata (empty when the status was derived locally).
        metadata: Metadata,
        /// The server never processed the call (REFUSED_STREAM, or above a GOAWAY's last stream
        /// id, or never sent): it is safe to retry it transparently.
        unprocessed: bool,
    },
    /// Server: the call ended without our trailers: the client cancelled it, its deadline
    /// passed, or the connection died. Last event of the call.
    Cancelled {
        /// The call's stream.
        stream: StreamId,
        /// Why (CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE, ...).
        status: Status,
    },
    /// The stream's send queue drained: `send_message` accepts more.
    Writable {
        /// The call's stream.
        stream: StreamId,
    },
    /// The peer acknowledged a PING sent through `Connection::ping`.
    PingAcknowledged {
        /// Time between sending the PING and receiving its ACK.
        rtt: Duration,
    },
    /// The peer is shutting the connection down: no new calls; calls above `last_stream` were
    /// reported `unprocessed`.
    GoAway {
        /// Highest stream id the peer may have processed.
        last_stream: StreamId,
        /// The peer's error code (NO_ERROR for a graceful shutdown).
        code: ErrorCode,
        /// Opaque debug data from the peer.
        debug: Bytes,
    },
    /// The connection is over; `None` for a clean close. Flush `poll_transmit`, then drop it.
    Closed {
        /// What ended it.
        error: Option<ConnectionError>,
    },
}

//! PING frames (RFC 9113 §6.7).

use bytes::{Bytes, BytesMut};

use super::{FrameError, FrameHeader, FrameType, flags, put_header, require_connection};
use crate::error::{ErrorCode, StreamId};
use crate::reader::Reader;

/// A PING frame: a liveness probe or its answer (RFC 9113 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// This frame answers a PING; it must not be answered.
    pub ack: bool,
    /// Opaque data, echoed unchanged in the answer.
    pub payload: [u8; 8],
}

impl Ping {
    /// Payload size on the wire.
    const LEN: usize = 8;

    /// A PING asking for an answer.
    pub fn new(payload: [u8; 8]) -> Self {
        Self {
            ack: false,
            payload,
        }
    }

    /// The answer to this PING: same payload, ACK set (RFC 9113 §6.7).
    pub fn pong(self) -> Self {
        Self { ack: true, ..self }
    }

    /// Decodes a PING payload (RFC 9113 §6.7).
    pub(super) fn decode(header: &FrameHeader, payload: &Bytes) -> Result<Self, FrameError> {
        // RFC 9113 §6.7: PING on a stream is a connection PROTOCOL_ERROR.
        require_connection(header, "PING on a stream")?;
        // RFC 9113 §6.7: any length other than 8 is a connection FRAME_SIZE_ERROR.
        let size_error =
            || FrameError::connection(ErrorCode::FRAME_SIZE_ERROR, "PING payload is not 8 bytes");
        if payload.len() != Self::LEN {
            return Err(size_error());
        }
        let data = Reader::new(payload)
            .array::<8>()
            .map_err(|_| size_error())?;
        Ok(Self {
            ack: header.flags & flags::ACK != 0,
            payload: data,
        })
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let frame_flags = if self.ack { flags::ACK } else { 0 };
        put_header(
            dst,
            Self::LEN,
            FrameType::PING,
            frame_flags,
            StreamId::CONNECTION,
        );
        dst.extend_from_slice(&self.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{Frame, FrameType};
    use super::*;

    #[test]
    fn decode_ack_and_payload() {
        let frame = decode_raw(FrameType::PING, flags::ACK, 0, b"12345678").unwrap();
        assert_eq!(frame, Frame::Ping(Ping::new(*b"12345678").pong()));
        let frame = decode_raw(FrameType::PING, 0xfe, 0, b"abcdefgh").unwrap();
        assert_eq!(frame, Frame::Ping(Ping::new(*b"abcdefgh")));
    }

    #[test]
    fn length_must_be_eight() {
        for len in [0, 7, 9] {
            let result = decode_raw(FrameType::PING, 0, 0, &vec![0; len]);
            assert_conn(result, ErrorCode::FRAME_SIZE_ERROR);
        }
    }

    #[test]
    fn ping_on_a_stream_is_a_connection_error() {
        let result = decode_raw(FrameType::PING, 0, 1, &[0; 8]);
        assert_conn(result, ErrorCode::PROTOCOL_ERROR);
    }

    #[test]
    fn roundtrip_and_canonical() {
        for ping in [
            Ping::new([1, 2, 3, 4, 5, 6, 7, 8]),
            Ping::new([0; 8]).pong(),
        ] {
            let frame = Frame::Ping(ping);
            assert_eq!(roundtrip(&frame), frame);
        }
        assert_canonical(&wire(
            FrameType::PING,
            flags::ACK,
            0,
            b"\xff\0\0\0\0\0\0\x01",
        ));
        assert_canonical(&wire(FrameType::PING, 0, 0, b"87654321"));
    }
}

//! WINDOW_UPDATE frames (RFC 9113 §6.9).

use bytes::{BufMut, Bytes, BytesMut};

use super::{FrameError, FrameHeader, FrameType, STREAM_ID_MASK, put_header};
use crate::error::{ErrorCode, StreamId};
use crate::reader::Reader;

/// A WINDOW_UPDATE frame: grants flow-control credit on one stream, or on the whole
/// connection when `stream` is 0 (RFC 9113 §6.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUpdate {
    /// The stream, or [`StreamId::CONNECTION`] for the connection window.
    pub stream: StreamId,
    /// Credit granted in bytes: 1..=2^31-1 when decoded.
    pub increment: u32,
}

impl WindowUpdate {
    /// Payload size on the wire.
    const LEN: usize = 4;

    /// Decodes a WINDOW_UPDATE payload (RFC 9113 §6.9).
    pub(super) fn decode(header: &FrameHeader, payload: &Bytes) -> Result<Self, FrameError> {
        // RFC 9113 §6.9: any length other than 4 is a connection FRAME_SIZE_ERROR.
        let size_error = || {
            FrameError::connection(
                ErrorCode::FRAME_SIZE_ERROR,
                "WINDOW_UPDATE payload is not 4 bytes",
            )
        };
        if payload.len() != Self::LEN {
            return Err(size_error());
        }
        // RFC 9113 §6.9: the reserved bit is ignored.
        let increment = Reader::new(payload).u32().map_err(|_| size_error())? & STREAM_ID_MASK;
        // RFC 9113 §6.9: an increment of 0 is a stream PROTOCOL_ERROR, or a connection one
        // on stream 0.
        if increment == 0 {
            const REASON: &str = "WINDOW_UPDATE increment of 0";
            return Err(if header.stream.is_connection() {
                FrameError::connection(ErrorCode::PROTOCOL_ERROR, REASON)
            } else {
                FrameError::stream(header.stream, ErrorCode::PROTOCOL_ERROR, REASON)
            });
        }
        Ok(Self {
            stream: header.stream,
            increment,
        })
    }

    /// Writes the frame. `increment` must be 1..=2^31-1; its top bit is not sent.
    pub fn encode(&self, dst: &mut BytesMut) {
        put_header(dst, Self::LEN, FrameType::WINDOW_UPDATE, 0, self.stream);
        dst.put_u32(self.increment & STREAM_ID_MASK);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{Frame, FrameType};
    use super::*;

    #[test]
    fn decode_ignores_reserved_bit() {
        let frame = decode_raw(FrameType::WINDOW_UPDATE, 0, 3, &[0x80, 0, 1, 0]).unwrap();
        let expected = WindowUpdate {
            stream: StreamId(3),
            increment: 256,
        };
        assert_eq!(frame, Frame::WindowUpdate(expected));
        let frame = decode_raw(FrameType::WINDOW_UPDATE, 0, 0, &[0xff; 4]).unwrap();
        let expected = WindowUpdate {
            stream: StreamId(0),
            increment: 0x7fff_ffff,
        };
        assert_eq!(frame, Frame::WindowUpdate(expected));
    }

    #[test]
    fn zero_increment_is_a_stream_or_connection_error() {
        let result = decode_raw(FrameType::WINDOW_UPDATE, 0, 5, &[0; 4]);
        assert_stream(result, 5, ErrorCode::PROTOCOL_ERROR);
        let result = decode_raw(FrameType::WINDOW_UPDATE, 0, 0, &[0; 4]);
        assert_conn(result, ErrorCode::PROTOCOL_ERROR);
        // Only the reserved bit set: still 0.
        let result = decode_raw(FrameType::WINDOW_UPDATE, 0, 5, &[0x80, 0, 0, 0]);
        assert_stream(result, 5, ErrorCode::PROTOCOL_ERROR);
    }

    #[test]
    fn length_must_be_four() {
        for (len, stream) in [(3, 1), (5, 1), (0, 0), (5, 0)] {
            let result = decode_raw(FrameType::WINDOW_UPDATE, 0, stream, &vec![1; len]);
            assert_conn(result, ErrorCode::FRAME_SIZE_ERROR);
        }
    }

    #[test]
    fn roundtrip_and_canonical() {
        for (stream, increment) in [(0, 1), (7, 65_535), (1, 0x7fff_ffff)] {
            let frame = Frame::WindowUpdate(WindowUpdate {
                stream: StreamId(stream),
                increment,
            });
            assert_eq!(roundtrip(&frame), frame);
        }
        assert_canonical(&wire(FrameType::WINDOW_UPDATE, 0, 9, &[0, 1, 0, 0]));
    }
}

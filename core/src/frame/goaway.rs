//! GOAWAY frames (RFC 9113 §6.8).

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    FrameError, FrameHeader, FrameType, STREAM_ID_MASK, put_header, require_connection,
    unpadded_rest,
};
use crate::error::{ErrorCode, StreamId};
use crate::reader::Reader;

/// A GOAWAY frame: the sender accepts no stream above `last_stream` (RFC 9113 §6.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoAway {
    /// The highest peer-initiated stream the sender processed or may process.
    pub last_stream: StreamId,
    /// Why the connection is closing; NO_ERROR for a graceful shutdown.
    pub code: ErrorCode,
    /// Opaque diagnostic data, a slice of the received payload.
    pub debug: Bytes,
}

impl GoAway {
    /// Size of the fixed fields on the wire.
    const FIXED_LEN: usize = 8;

    /// Decodes a GOAWAY payload (RFC 9113 §6.8).
    pub(super) fn decode(header: &FrameHeader, payload: Bytes) -> Result<Self, FrameError> {
        // RFC 9113 §6.8: GOAWAY on a stream is a connection PROTOCOL_ERROR.
        require_connection(header, "GOAWAY on a stream")?;
        // RFC 9113 §4.2: too short for its fixed fields; on stream 0, so a connection error.
        let size_error =
            || FrameError::connection(ErrorCode::FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes");
        let mut r = Reader::new(&payload);
        let last = r.u32().map_err(|_| size_error())?;
        let code = r.u32().map_err(|_| size_error())?;
        // The rest is debug data: a slice, never a copy.
        let debug = unpadded_rest(&payload, &r, None)?;
        Ok(Self {
            // RFC 9113 §6.8: the reserved bit is ignored.
            last_stream: StreamId(last & STREAM_ID_MASK),
            code: ErrorCode(code),
            debug,
        })
    }

    /// Writes the frame. The debug data must keep the payload within the peer's
    /// SETTINGS_MAX_FRAME_SIZE.
    pub fn encode(&self, dst: &mut BytesMut) {
        let len = Self::FIXED_LEN + self.debug.len();
        dst.reserve(FrameHeader::LEN + len);
        put_header(dst, len, FrameType::GOAWAY, 0, StreamId::CONNECTION);
        dst.put_u32(self.last_stream.0 & STREAM_ID_MASK);
        dst.put_u32(self.code.0);
        dst.extend_from_slice(&self.debug);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{Frame, FrameType};
    use super::*;

    #[test]
    fn decode_fields_and_debug_data() {
        let payload = [0x80, 0, 0, 7, 0, 0, 0, 0xb, b'c', b'a', b'l', b'm'];
        let frame = decode_raw(FrameType::GOAWAY, 0xff, 0, &payload).unwrap();
        let expected = GoAway {
            last_stream: StreamId(7),
            code: ErrorCode::ENHANCE_YOUR_CALM,
            debug: Bytes::from_static(b"calm"),
        };
        assert_eq!(frame, Frame::GoAway(expected));
    }

    #[test]
    fn debug_data_is_a_slice_of_the_payload() {
        let payload = Bytes::from_static(b"\0\0\0\x01\0\0\0\0debug");
        let header = FrameHeader {
            length: 13,
            kind: FrameType::GOAWAY,
            flags: 0,
            stream: StreamId(0),
        };
        let Frame::GoAway(g) = Frame::decode(header, payload.clone()).unwrap() else {
            panic!("not a GOAWAY")
        };
        assert_eq!(g.debug.as_ptr_range().end, payload.as_ptr_range().end);
    }

    #[test]
    fn shorter_than_eight_is_a_frame_size_error() {
        for len in [0, 7] {
            let result = decode_raw(FrameType::GOAWAY, 0, 0, &vec![0; len]);
            assert_conn(result, ErrorCode::FRAME_SIZE_ERROR);
        }
        // Exactly 8: no debug data.
        let frame = decode_raw(FrameType::GOAWAY, 0, 0, &[0; 8]).unwrap();
        let Frame::GoAway(g) = frame else {
            panic!("not a GOAWAY")
        };
        assert!(g.debug.is_empty());
    }

    #[test]
    fn goaway_on_a_stream_is_a_connection_error() {
        let result = decode_raw(FrameType::GOAWAY, 0, 3, &[0; 8]);
        assert_conn(result, ErrorCode::PROTOCOL_ERROR);
    }

    #[test]
    fn roundtrip_and_canonical() {
        for debug in [Bytes::new(), Bytes::from_static(b"too many pings")] {
            let frame = Frame::GoAway(GoAway {
                last_stream: StreamId::MAX,
                code: ErrorCode::NO_ERROR,
                debug,
            });
            assert_eq!(roundtrip(&frame), frame);
        }
        assert_canonical(&wire(FrameType::GOAWAY, 0, 0, b"\0\0\0\x05\0\0\0\x01why"));
    }
}

//! RST_STREAM frames (RFC 9113 §6.4).

use bytes::{BufMut, Bytes, BytesMut};

use super::{FrameError, FrameHeader, FrameType, put_header, require_stream};
use crate::error::{ErrorCode, StreamId};
use crate::reader::Reader;

/// An RST_STREAM frame: ends one stream immediately (RFC 9113 §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RstStream {
    /// The stream being reset; never 0.
    pub stream: StreamId,
    /// Why, possibly a code this crate does not know.
    pub code: ErrorCode,
}

impl RstStream {
    /// Payload size on the wire.
    const LEN: usize = 4;

    /// Decodes an RST_STREAM payload (RFC 9113 §6.4).
    pub(super) fn decode(header: &FrameHeader, payload: &Bytes) -> Result<Self, FrameError> {
        // RFC 9113 §6.4: RST_STREAM on stream 0 is a connection PROTOCOL_ERROR.
        let stream = require_stream(header, "RST_STREAM on stream 0")?;
        // RFC 9113 §6.4: any length other than 4 is a connection FRAME_SIZE_ERROR.
        let size_error = || {
            FrameError::connection(
                ErrorCode::FRAME_SIZE_ERROR,
                "RST_STREAM payload is not 4 bytes",
            )
        };
        if payload.len() != Self::LEN {
            return Err(size_error());
        }
        let code = Reader::new(payload).u32().map_err(|_| size_error())?;
        Ok(Self {
            stream,
            code: ErrorCode(code),
        })
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        put_header(dst, Self::LEN, FrameType::RST_STREAM, 0, self.stream);
        dst.put_u32(self.code.0);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{Frame, FrameType};
    use super::*;

    #[test]
    fn decode_keeps_unknown_codes() {
        let frame = decode_raw(FrameType::RST_STREAM, 0xff, 3, &[0, 0, 1, 0]).unwrap();
        let expected = RstStream {
            stream: StreamId(3),
            code: ErrorCode(0x100),
        };
        assert_eq!(frame, Frame::RstStream(expected));
    }

    #[test]
    fn length_must_be_four() {
        for len in [0, 3, 5] {
            let result = decode_raw(FrameType::RST_STREAM, 0, 3, &vec![0; len]);
            assert_conn(result, ErrorCode::FRAME_SIZE_ERROR);
        }
    }

    #[test]
    fn stream_zero_is_a_connection_error() {
        let result = decode_raw(FrameType::RST_STREAM, 0, 0, &[0, 0, 0, 8]);
        assert_conn(result, ErrorCode::PROTOCOL_ERROR);
    }

    #[test]
    fn roundtrip_and_canonical() {
        let frame = Frame::RstStream(RstStream {
            stream: StreamId(1),
            code: ErrorCode::CANCEL,
        });
        assert_eq!(roundtrip(&frame), frame);
        assert_eq!(
            encode(&frame),
            wire(FrameType::RST_STREAM, 0, 1, &[0, 0, 0, 8])
        );
        assert_canonical(&wire(FrameType::RST_STREAM, 0, 77, &[1, 2, 3, 4]));
    }
}

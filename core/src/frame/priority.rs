//! PRIORITY frames and the priority fields of HEADERS (RFC 9113 §5.3.2, §6.3). The scheme is
//! deprecated: the fields are parsed and checked, then ignored by the connection.

use bytes::{BufMut, Bytes, BytesMut};

use super::{FrameError, FrameHeader, FrameType, STREAM_ID_MASK, put_header, require_stream};
use crate::error::{ErrorCode, StreamId};
use crate::reader::{Incomplete, Reader};

/// The deprecated priority fields of PRIORITY and HEADERS frames (RFC 9113 §6.2, §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrioritySpec {
    /// The stream this one depends on (0: the root).
    pub dependency: StreamId,
    /// The dependency is exclusive.
    pub exclusive: bool,
    /// The weight as sent on the wire: the actual weight is this value plus one (1..=256).
    pub weight: u8,
}

impl PrioritySpec {
    /// Size of the fields on the wire.
    pub const LEN: usize = 5;

    /// Reads the 5 bytes of priority fields.
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, Incomplete> {
        let word = r.u32()?;
        let weight = r.u8()?;
        Ok(Self {
            dependency: StreamId(word & STREAM_ID_MASK),
            exclusive: word & !STREAM_ID_MASK != 0,
            weight,
        })
    }

    /// Writes the 5 bytes of priority fields.
    pub(super) fn put(&self, dst: &mut BytesMut) {
        let exclusive = if self.exclusive { !STREAM_ID_MASK } else { 0 };
        dst.put_u32((self.dependency.0 & STREAM_ID_MASK) | exclusive);
        dst.put_u8(self.weight);
    }

    /// RFC 7540 §5.3.1 (kept by RFC 9113 for the fields it still parses): a stream cannot
    /// depend on itself; a stream PROTOCOL_ERROR.
    pub(super) fn check_not_self(&self, stream: StreamId) -> Result<(), FrameError> {
        if self.dependency == stream {
            return Err(FrameError::stream(
                stream,
                ErrorCode::PROTOCOL_ERROR,
                "stream depends on itself",
            ));
        }
        Ok(())
    }
}

/// A PRIORITY frame (RFC 9113 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    /// The stream being prioritised; never 0. May be in any state, idle or closed included.
    pub stream: StreamId,
    /// The priority fields.
    pub spec: PrioritySpec,
}

impl Priority {
    /// Decodes a PRIORITY payload (RFC 9113 §6.3).
    pub(super) fn decode(header: &FrameHeader, payload: &Bytes) -> Result<Self, FrameError> {
        // RFC 9113 §6.3: PRIORITY on stream 0 is a connection PROTOCOL_ERROR.
        let stream = require_stream(header, "PRIORITY on stream 0")?;
        // RFC 9113 §6.3: any length other than 5 is a stream FRAME_SIZE_ERROR.
        let size_error = || {
            FrameError::stream(
                stream,
                ErrorCode::FRAME_SIZE_ERROR,
                "PRIORITY payload is not 5 bytes",
            )
        };
        if payload.len() != PrioritySpec::LEN {
            return Err(size_error());
        }
        let spec = PrioritySpec::read(&mut Reader::new(payload)).map_err(|_| size_error())?;
        spec.check_not_self(stream)?;
        Ok(Self { stream, spec })
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        put_header(dst, PrioritySpec::LEN, FrameType::PRIORITY, 0, self.stream);
        self.spec.put(dst);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{Frame, FrameType};
    use super::*;

    #[test]
    fn decode_fields() {
        let frame = decode_raw(FrameType::PRIORITY, 0, 3, &[0x80, 0, 0, 1, 15]).unwrap();
        let expected = Priority {
            stream: StreamId(3),
            spec: PrioritySpec {
                dependency: StreamId(1),
                exclusive: true,
                weight: 15,
            },
        };
        assert_eq!(frame, Frame::Priority(expected));
    }

    #[test]
    fn length_must_be_five_stream_error() {
        for len in [0, 4, 6] {
            let payload = vec![0; len];
            let result = decode_raw(FrameType::PRIORITY, 0, 3, &payload);
            assert_stream(result, 3, ErrorCode::FRAME_SIZE_ERROR);
        }
    }

    #[test]
    fn stream_zero_is_a_connection_error() {
        let result = decode_raw(FrameType::PRIORITY, 0, 0, &[0, 0, 0, 1, 0]);
        assert_conn(result, ErrorCode::PROTOCOL_ERROR);
    }

    #[test]
    fn self_dependency_is_a_stream_error() {
        let result = decode_raw(FrameType::PRIORITY, 0, 5, &[0x80, 0, 0, 5, 0]);
        assert_stream(result, 5, ErrorCode::PROTOCOL_ERROR);
    }

    #[test]
    fn roundtrip_and_canonical() {
        let frame = Frame::Priority(Priority {
            stream: StreamId(0x7fff_ffff),
            spec: PrioritySpec {
                dependency: StreamId(7),
                exclusive: false,
                weight: 255,
            },
        });
        assert_eq!(roundtrip(&frame), frame);
        assert_canonical(&wire(FrameType::PRIORITY, 0, 9, &[0x80, 0, 1, 0, 3]));
    }
}

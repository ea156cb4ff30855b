//! DATA frames (RFC 9113 §6.1).

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    FrameError, FrameHeader, FrameType, flags, padded_len, put_header, put_padding, read_pad_len,
    require_stream, unpadded_rest,
};
use crate::error::StreamId;
use crate::reader::Reader;

/// A DATA frame: bytes of one stream's body (RFC 9113 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// The stream; never 0.
    pub stream: StreamId,
    /// The sender sends nothing more on this stream.
    pub end_stream: bool,
    /// The data, padding stripped: a slice of the received payload, not a copy.
    pub data: Bytes,
    /// The whole payload length, Pad Length field and padding included: what the frame counts
    /// against both flow-control windows (RFC 9113 §6.9.1).
    pub flow_len: u32,
    /// The Pad Length field when the frame was (or is to be) padded.
    pub pad_len: Option<u8>,
}

impl Data {
    /// An unpadded DATA frame carrying `data`.
    pub fn new(stream: StreamId, data: Bytes, end_stream: bool) -> Self {
        let flow_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        Self {
            stream,
            end_stream,
            data,
            flow_len,
            pad_len: None,
        }
    }

    /// Decodes a DATA payload (RFC 9113 §6.1).
    pub(super) fn decode(header: &FrameHeader, payload: Bytes) -> Result<Self, FrameError> {
        // RFC 9113 §6.1: DATA on stream 0 is a connection PROTOCOL_ERROR.
        let stream = require_stream(header, "DATA on stream 0")?;
        let mut r = Reader::new(&payload);
        let pad_len = read_pad_len(header, &mut r)?;
        let data = unpadded_rest(&payload, &r, pad_len)?;
        Ok(Self {
            stream,
            end_stream: header.flags & flags::END_STREAM != 0,
            data,
            flow_len: header.length,
            pad_len,
        })
    }

    /// Writes the frame: header, then Pad Length, data and zero padding when padded.
    /// `flow_len` is not read: the length is computed from `data` and `pad_len`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut frame_flags = 0;
        if self.end_stream {
            frame_flags |= flags::END_STREAM;
        }
        if self.pad_len.is_some() {
            frame_flags |= flags::PADDED;
        }
        let len = padded_len(self.data.len(), self.pad_len);
        dst.reserve(FrameHeader::LEN + len);
        put_header(dst, len, FrameType::DATA, frame_flags, self.stream);
        if let Some(pad) = self.pad_len {
            dst.put_u8(pad);
        }
        dst.extend_from_slice(&self.data);
        put_padding(dst, self.pad_len);
    }
}

/// Writes only the 9-byte header of an unpadded DATA frame of `len` payload bytes; the caller
/// appends the payload. `len` must not exceed the peer's SETTINGS_MAX_FRAME_SIZE.
pub fn encode_data_header(stream: StreamId, len: u32, end_stream: bool, dst: &mut BytesMut) {
    let frame_flags = if end_stream { flags::END_STREAM } else { 0 };
    FrameHeader {
        length: len,
        kind: FrameType::DATA,
        flags: frame_flags,
        stream,
    }
    .encode(dst);
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{Frame, FrameType, flags};
    use super::*;
    use crate::error::ErrorCode;

    fn data_of(frame: Frame) -> Data {
        match frame {
            Frame::Data(d) => d,
            other => panic!("expected DATA, got {other:?}"),
        }
    }

    #[test]
    fn decode_plain() {
        let d = data_of(decode_raw(FrameType::DATA, flags::END_STREAM, 3, b"hello").unwrap());
        assert_eq!(d.stream, StreamId(3));
        assert!(d.end_stream);
        assert_eq!(&d.data[..], b"hello");
        assert_eq!(d.flow_len, 5);
        assert_eq!(d.pad_len, None);
    }

    #[test]
    fn padding_is_stripped_without_copy_and_counted_for_flow_control() {
        // Pad Length 3, "abcd", 3 padding bytes.
        let bytes = wire(FrameType::DATA, flags::PADDED, 1, b"\x03abcd\0\0\0");
        let header = FrameHeader::peek(&bytes).unwrap();
        let payload = Bytes::copy_from_slice(&bytes[FrameHeader::LEN..]);
        let range = payload.as_ptr_range();
        let d = data_of(Frame::decode(header, payload).unwrap());
        assert_eq!(&d.data[..], b"abcd");
        assert_eq!(d.pad_len, Some(3));
        assert_eq!(d.flow_len, 8);
        assert!(!d.end_stream);
        let inner = d.data.as_ptr_range();
        assert!(
            range.start <= inner.start && inner.end <= range.end,
            "data was copied"
        );
        // Unpadded data is a slice too.
        let payload = Bytes::from_static(b"xyz");
        let header = FrameHeader {
            length: 3,
            kind: FrameType::DATA,
            flags: 0,
            stream: StreamId(1),
        };
        let d = data_of(Frame::decode(header, payload.clone()).unwrap());
        assert_eq!(d.data.as_ptr(), payload.as_ptr());
    }

    #[test]
    fn padding_may_fill_all_but_the_pad_length_field() {
        // RFC 9113 §6.1: error only when padding ≥ payload length (here 4 = 1 + 3).
        let d = data_of(decode_raw(FrameType::DATA, flags::PADDED, 1, b"\x03\0\0\0").unwrap());
        assert!(d.data.is_empty());
        assert_eq!(d.flow_len, 4);
        // One more padding byte than fits.
        let result = decode_raw(FrameType::DATA, flags::PADDED, 1, b"\x04\0\0\0");
        assert_conn(result, ErrorCode::PROTOCOL_ERROR);
        let result = decode_raw(FrameType::DATA, flags::PADDED, 1, b"\xffab");
        assert_conn(result, ErrorCode::PROTOCOL_ERROR);
    }

    #[test]
    fn padded_with_empty_payload_is_a_frame_size_error() {
        let result = decode_raw(FrameType::DATA, flags::PADDED, 1, b"");
        assert_conn(result, ErrorCode::FRAME_SIZE_ERROR);
    }

    #[test]
    fn stream_zero_is_a_connection_protocol_error() {
        assert_conn(
            decode_raw(FrameType::DATA, 0, 0, b"x"),
            ErrorCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn unknown_flags_are_ignored() {
        let d = data_of(decode_raw(FrameType::DATA, 0xf6, 1, b"ab").unwrap());
        assert!(!d.end_stream);
        assert_eq!(d.pad_len, None);
        assert_eq!(&d.data[..], b"ab");
    }

    #[test]
    fn roundtrip_and_canonical() {
        for frame in [
            Data::new(StreamId(1), Bytes::from_static(b"payload"), false),
            Data::new(StreamId(0x7fff_ffff), Bytes::new(), true),
            Data {
                pad_len: Some(5),
                flow_len: 8,
                ..Data::new(StreamId(9), Bytes::from_static(b"ab"), true)
            },
            Data {
                pad_len: Some(0),
                flow_len: 1,
                ..Data::new(StreamId(9), Bytes::new(), false)
            },
        ] {
            let frame = Frame::Data(frame);
            assert_eq!(roundtrip(&frame), frame);
        }
        assert_canonical(&wire(FrameType::DATA, flags::END_STREAM, 5, b"abc"));
        assert_canonical(&wire(FrameType::DATA, flags::PADDED, 5, b"\x02abc\0\0"));
        assert_canonical(&wire(
            FrameType::DATA,
            flags::PADDED | flags::END_STREAM,
            5,
            b"\x00",
        ));
    }

    #[test]
    fn data_header_encoder_matches_full_encoder() {
        let full = Data::new(StreamId(11), Bytes::from_static(b"message"), true);
        let mut expected = BytesMut::new();
        full.encode(&mut expected);
        let mut out = BytesMut::new();
        encode_data_header(StreamId(11), 7, true, &mut out);
        assert_eq!(out.len(), FrameHeader::LEN);
        out.extend_from_slice(b"message");
        assert_eq!(out, expected);
    }
}

//! The frames that carry field blocks: HEADERS, CONTINUATION and PUSH_PROMISE (RFC 9113 §4.3,
//! §6.2, §6.6, §6.10). Fragments stay slices of the received payload; reassembly and HPACK
//! decoding are the connection's.

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    FrameError, FrameHeader, FrameType, MAX_PAYLOAD_LEN, PrioritySpec, STREAM_ID_MASK, flags,
    padded_len, put_header, put_padding, read_pad_len, require_stream, unpadded_rest,
};
use crate::error::{ErrorCode, StreamId};
use crate::reader::Reader;

/// A HEADERS frame: opens a stream or carries trailers (RFC 9113 §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// The stream; never 0.
    pub stream: StreamId,
    /// The sender sends nothing more on this stream after this field block.
    pub end_stream: bool,
    /// The field block ends in this frame; otherwise CONTINUATION frames follow at once.
    pub end_headers: bool,
    /// The deprecated priority fields, when the PRIORITY flag was set.
    pub priority: Option<PrioritySpec>,
    /// The field block fragment, padding stripped: a slice of the payload.
    pub fragment: Bytes,
    /// The Pad Length field when the frame was (or is to be) padded.
    pub pad_len: Option<u8>,
}

impl Headers {
    /// Decodes a HEADERS payload (RFC 9113 §6.2).
    pub(super) fn decode(header: &FrameHeader, payload: Bytes) -> Result<Self, FrameError> {
        // RFC 9113 §6.2: HEADERS on stream 0 is a connection PROTOCOL_ERROR.
        let stream = require_stream(header, "HEADERS on stream 0")?;
        let mut r = Reader::new(&payload);
        let pad_len = read_pad_len(header, &mut r)?;
        let priority = if header.flags & flags::PRIORITY != 0 {
            // RFC 9113 §4.2: too short for its fixed fields; HEADERS carries a field block, so
            // this is a connection FRAME_SIZE_ERROR.
            let spec = PrioritySpec::read(&mut r).map_err(|_| {
                FrameError::connection(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "HEADERS too short for its priority fields",
                )
            })?;
            Some(spec)
        } else {
            None
        };
        // RFC 9113 §6.2: padding beyond the fragment is a connection PROTOCOL_ERROR.
        let fragment = unpadded_rest(&payload, &r, pad_len)?;
        // A self-dependency is a stream error (`priority_error`), but the fragment still has
        // to be decoded: it is returned, and left to the connection.
        Ok(Self {
            stream,
            end_stream: header.flags & flags::END_STREAM != 0,
            end_headers: header.flags & flags::END_HEADERS != 0,
            priority,
            fragment,
            pad_len,
        })
    }

    /// The stream error the priority fields make of this frame, if any: a stream that depends
    /// on itself (RFC 7540 §5.3.1, stream error PROTOCOL_ERROR). The frame is otherwise valid
    /// and its fragment must still be decoded (RFC 9113 §4.3), so [`Frame::decode`] returns
    /// it and leaves this to the caller.
    ///
    /// [`Frame::decode`]: super::Frame::decode
    pub fn priority_error(&self) -> Option<FrameError> {
        self.priority
            .as_ref()
            .and_then(|spec| spec.check_not_self(self.stream).err())
    }

    /// Writes this one frame: Pad Length, priority fields, fragment and zero padding as set.
    /// The payload must fit the peer's SETTINGS_MAX_FRAME_SIZE; to split a long field block
    /// use [`encode_header_block`].
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut frame_flags = 0;
        if self.end_stream {
            frame_flags |= flags::END_STREAM;
        }
        if self.end_headers {
            frame_flags |= flags::END_HEADERS;
        }
        if self.pad_len.is_some() {
            frame_flags |= flags::PADDED;
        }
        let mut body = self.fragment.len();
        if self.priority.is_some() {
            frame_flags |= flags::PRIORITY;
            body += PrioritySpec::LEN;
        }
        let len = padded_len(body, self.pad_len);
        dst.reserve(FrameHeader::LEN + len);
        put_header(dst, len, FrameType::HEADERS, frame_flags, self.stream);
        if let Some(pad) = self.pad_len {
            dst.put_u8(pad);
        }
        if let Some(spec) = &self.priority {
            spec.put(dst);
        }
        dst.extend_from_slice(&self.fragment);
        put_padding(dst, self.pad_len);
    }
}

/// A CONTINUATION frame: the next fragment of a field block (RFC 9113 §6.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    /// The stream; never 0, and the same as the frame that started the block (checked by the
    /// connection).
    pub stream: StreamId,
    /// The field block ends in this frame.
    pub end_headers: bool,
    /// The field block fragment: the whole payload.
    pub fragment: Bytes,
}

impl Continuation {
    /// Decodes a CONTINUATION payload (RFC 9113 §6.10).
    pub(super) fn decode(header: &FrameHeader, payload: Bytes) -> Result<Self, FrameError> {
        // RFC 9113 §6.10: CONTINUATION on stream 0 is a connection PROTOCOL_ERROR.
        let stream = require_stream(header, "CONTINUATION on stream 0")?;
        Ok(Self {
            stream,
            end_headers: header.flags & flags::END_HEADERS != 0,
            fragment: payload,
        })
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let frame_flags = if self.end_headers {
            flags::END_HEADERS
        } else {
            0
        };
        let len = self.fragment.len();
        dst.reserve(FrameHeader::LEN + len);
        put_header(dst, len, FrameType::CONTINUATION, frame_flags, self.stream);
        dst.extend_from_slice(&self.fragment);
    }
}

/// A PUSH_PROMISE frame: the server reserves `promised` for a pushed response (RFC 9113 §6.6).
/// gRPC never pushes; clients disable push and the connection rejects these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPromise {
    /// The stream the promise is associated with; never 0.
    pub stream: StreamId,
    /// The stream being reserved; never 0 when decoded.
    pub promised: StreamId,
    /// The field block ends in this frame.
    pub end_headers: bool,
    /// The field block fragment, padding stripped: a slice of the payload.
    pub fragment: Bytes,
    /// The Pad Length field when the frame was (or is to be) padded.
    pub pad_len: Option<u8>,
}

impl PushPromise {
    /// Decodes a PUSH_PROMISE payload (RFC 9113 §6.6).
    pub(super) fn decode(header: &FrameHeader, payload: Bytes) -> Result<Self, FrameError> {
        // RFC 9113 §6.6: PUSH_PROMISE on stream 0 is a connection PROTOCOL_ERROR.
        let stream = require_stream(header, "PUSH_PROMISE on stream 0")?;
        let mut r = Reader::new(&payload);
        let pad_len = read_pad_len(header, &mut r)?;
        // RFC 9113 §4.2: too short for the Promised Stream ID; carries a field block, so a
        // connection FRAME_SIZE_ERROR.
        let promised = r.u32().map_err(|_| {
            FrameError::connection(
                ErrorCode::FRAME_SIZE_ERROR,
                "PUSH_PROMISE too short for its promised stream",
            )
        })?;
        // RFC 9113 §6.6: the reserved bit is ignored.
        let promised = StreamId(promised & STREAM_ID_MASK);
        // RFC 9113 §6.6, §5.1.1: stream 0 can never be promised.
        if promised.is_connection() {
            return Err(FrameError::connection(
                ErrorCode::PROTOCOL_ERROR,
                "PUSH_PROMISE promises stream 0",
            ));
        }
        // RFC 9113 §6.6: padding beyond the fragment is a connection PROTOCOL_ERROR.
        let fragment = unpadded_rest(&payload, &r, pad_len)?;
        Ok(Self {
            stream,
            promised,
            end_headers: header.flags & flags::END_HEADERS != 0,
            fragment,
            pad_len,
        })
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut frame_flags = 0;
        if self.end_headers {
            frame_flags |= flags::END_HEADERS;
        }
        if self.pad_len.is_some() {
            frame_flags |= flags::PADDED;
        }
        let len = padded_len(4 + self.fragment.len(), self.pad_len);
        dst.reserve(FrameHeader::LEN + len);
        put_header(dst, len, FrameType::PUSH_PROMISE, frame_flags, self.stream);
        if let Some(pad) = self.pad_len {
            dst.put_u8(pad);
        }
        dst.put_u32(self.promised.0 & STREAM_ID_MASK);
        dst.extend_from_slice(&self.fragment);
        put_padding(dst, self.pad_len);
    }
}

/// Writes a header block as one HEADERS (or PUSH_PROMISE-less) frame followed by as many
/// CONTINUATION frames as `max_frame_size` requires; END_HEADERS on the last.
///
/// No padding and no priority fields; END_STREAM, when asked, is on the HEADERS frame (RFC 9113
/// §6.2: CONTINUATION has no END_STREAM). An empty block is one empty HEADERS frame.
/// `max_frame_size` is the peer's SETTINGS_MAX_FRAME_SIZE; it is clamped to 1..=2^24-1 so the
/// loop always progresses. Allocates nothing beyond growing `dst` once.
pub fn encode_header_block(
    stream: StreamId,
    end_stream: bool,
    block: &[u8],
    max_frame_size: usize,
    dst: &mut BytesMut,
) {
    // u32 → usize never truncates on the 32- and 64-bit targets Rust supports for std.
    let max = max_frame_size.clamp(1, MAX_PAYLOAD_LEN as usize);
    let frames = block.len().div_ceil(max).max(1);
    dst.reserve(block.len() + frames * FrameHeader::LEN);

    let (first, mut rest) = block.split_at(block.len().min(max));
    let mut frame_flags = if end_stream { flags::END_STREAM } else { 0 };
    if rest.is_empty() {
        frame_flags |= flags::END_HEADERS;
    }
    put_header(dst, first.len(), FrameType::HEADERS, frame_flags, stream);
    dst.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(max));
        rest = tail;
        let frame_flags = if rest.is_empty() {
            flags::END_HEADERS
        } else {
            0
        };
        put_header(
            dst,
            chunk.len(),
            FrameType::CONTINUATION,
            frame_flags,
            stream,
        );
        dst.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{Frame, FrameType};
    use super::*;

    const PRIO: [u8; 5] = [0x80, 0, 0, 1, 9]; // exclusive on stream 1, wire weight 9

    fn headers_of(result: Result<Frame, FrameError>) -> Headers {
        match result {
            Ok(Frame::Headers(h)) => h,
            other => panic!("expected HEADERS, got {other:?}"),
        }
    }

    fn prio_spec() -> PrioritySpec {
        PrioritySpec {
            dependency: StreamId(1),
            exclusive: true,
            weight: 9,
        }
    }

    #[test]
    fn decode_plain_headers() {
        let f = flags::END_STREAM | flags::END_HEADERS;
        let h = headers_of(decode_raw(FrameType::HEADERS, f, 3, b"block"));
        assert_eq!(h.stream, StreamId(3));
        assert!(h.end_stream && h.end_headers);
        assert_eq!((h.priority, h.pad_len), (None, None));
        assert_eq!(&h.fragment[..], b"block");
    }

    #[test]
    fn decode_padded_with_priority_is_zero_copy() {
        let mut payload = vec![2];
        payload.extend_from_slice(&PRIO);
        payload.extend_from_slice(b"frag\0\0");
        let bytes = wire(
            FrameType::HEADERS,
            flags::PADDED | flags::PRIORITY,
            3,
            &payload,
        );
        let header = FrameHeader::peek(&bytes).unwrap();
        let payload = Bytes::copy_from_slice(&bytes[FrameHeader::LEN..]);
        let range = payload.as_ptr_range();
        let h = headers_of(Frame::decode(header, payload));
        assert_eq!(h.priority, Some(prio_spec()));
        assert_eq!(h.pad_len, Some(2));
        assert_eq!(&h.fragment[..], b"frag");
        assert!(!h.end_headers && !h.end_stream);
        let inner = h.fragment.as_ptr_range();
        assert!(
            range.start <= inner.start && inner.end <= range.end,
            "copied"
        );
    }

    #[test]
    fn padding_limits() {
        let f = flags::PADDED | flags::PRIORITY;
        // Padding filling everything after the fixed fields is fine.
        let mut payload = vec![3];
        payload.extend_from_slice(&PRIO);
        payload.extend_from_slice(&[0; 3]);
        let h = headers_of(decode_raw(FrameType::HEADERS, f, 3, &payload));
        assert!(h.fragment.is_empty());
        // One byte more padding than fits.
        payload[0] = 4;
        let result = decode_raw(FrameType::HEADERS, f, 3, &payload);
        assert_conn(result, ErrorCode::PROTOCOL_ERROR);
        // Without PRIORITY.
        let result = decode_raw(FrameType::HEADERS, flags::PADDED, 3, b"\x02a");
        assert_conn(result, ErrorCode::PROTOCOL_ERROR);
        let h = headers_of(decode_raw(FrameType::HEADERS, flags::PADDED, 3, b"\x01a"));
        assert!(h.fragment.is_empty());
    }

    #[test]
    fn fixed_fields_that_do_not_fit_are_frame_size_errors() {
        let padded = decode_raw(FrameType::HEADERS, flags::PADDED, 3, b"");
        assert_conn(padded, ErrorCode::FRAME_SIZE_ERROR);
        let prio = decode_raw(FrameType::HEADERS, flags::PRIORITY, 3, &PRIO[..4]);
        assert_conn(prio, ErrorCode::FRAME_SIZE_ERROR);
        // PADDED + PRIORITY need 6 bytes; 5 is one short.
        let both = decode_raw(
            FrameType::HEADERS,
            flags::PADDED | flags::PRIORITY,
            3,
            &[0, 0, 0, 0, 1],
        );
        assert_conn(both, ErrorCode::FRAME_SIZE_ERROR);
        // Exactly the fixed fields.
        let h = headers_of(decode_raw(FrameType::HEADERS, flags::PRIORITY, 3, &PRIO));
        assert_eq!(h.priority, Some(prio_spec()));
        assert!(h.fragment.is_empty());
    }

    #[test]
    fn self_dependency_is_a_stream_error_left_to_the_caller() {
        // Decoded, so that the connection can still decode its fragment.
        let h = headers_of(decode_raw(FrameType::HEADERS, flags::PRIORITY, 1, &PRIO));
        let error = h.priority_error().expect("a stream error");
        assert_stream(Err(error), 1, ErrorCode::PROTOCOL_ERROR);
        let h = headers_of(decode_raw(FrameType::HEADERS, flags::PRIORITY, 3, &PRIO));
        assert_eq!(h.priority_error(), None);
        let h = headers_of(decode_raw(FrameType::HEADERS, 0, 1, b""));
        assert_eq!(h.priority_error(), None);
    }

    #[test]
    fn stream_zero_is_a_connection_error() {
        for kind in [
            FrameType::HEADERS,
            FrameType::CONTINUATION,
            FrameType::PUSH_PROMISE,
        ] {
            let result = decode_raw(kind, 0, 0, &[0, 0, 0, 2]);
            assert_conn(result, ErrorCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn unknown_flags_are_ignored() {
        let h = headers_of(decode_raw(FrameType::HEADERS, 0xd2, 3, b"x"));
        assert!(!h.end_stream && !h.end_headers);
        assert_eq!((h.priority, h.pad_len), (None, None));
    }

    #[test]
    fn continuation_decode() {
        let frame = decode_raw(FrameType::CONTINUATION, 0xff, 5, b"more").unwrap();
        let expected = Continuation {
            stream: StreamId(5),
            end_headers: true,
            fragment: Bytes::from_static(b"more"),
        };
        assert_eq!(frame, Frame::Continuation(expected));
    }

    #[test]
    fn push_promise_decode() {
        let payload = b"\x01\x80\0\0\x02hd\0";
        let f = flags::PADDED | flags::END_HEADERS;
        let frame = decode_raw(FrameType::PUSH_PROMISE, f, 1, payload).unwrap();
        let expected = PushPromise {
            stream: StreamId(1),
            promised: StreamId(2),
            end_headers: true,
            fragment: Bytes::from_static(b"hd"),
            pad_len: Some(1),
        };
        assert_eq!(frame, Frame::PushPromise(expected));
    }

    #[test]
    fn push_promise_limits() {
        let pp = |f, payload: &[u8]| decode_raw(FrameType::PUSH_PROMISE, f, 1, payload);
        assert_conn(pp(0, &[0, 0, 2]), ErrorCode::FRAME_SIZE_ERROR);
        assert_conn(
            pp(flags::PADDED, &[0, 0, 0, 2]),
            ErrorCode::FRAME_SIZE_ERROR,
        );
        assert_conn(pp(flags::PADDED, b""), ErrorCode::FRAME_SIZE_ERROR);
        assert!(pp(0, &[0, 0, 0, 2]).is_ok());
        assert!(pp(flags::PADDED, &[1, 0, 0, 0, 2, 0]).is_ok());
        assert_conn(
            pp(flags::PADDED, &[2, 0, 0, 0, 2, 0]),
            ErrorCode::PROTOCOL_ERROR,
        );
        assert_conn(pp(0, &[0x80, 0, 0, 0]), ErrorCode::PROTOCOL_ERROR);
    }

    #[test]
    fn roundtrips() {
        let frames = [
            Frame::Headers(Headers {
                stream: StreamId(1),
                end_stream: true,
                end_headers: true,
                priority: None,
                fragment: Bytes::from_static(b"\x82\x86"),
                pad_len: None,
            }),
            Frame::Headers(Headers {
                stream: StreamId(3),
                end_stream: false,
                end_headers: false,
                priority: Some(prio_spec()),
                fragment: Bytes::from_static(b"abc"),
                pad_len: Some(7),
            }),
            Frame::Headers(Headers {
                stream: StreamId::MAX,
                end_stream: false,
                end_headers: true,
                priority: None,
                fragment: Bytes::new(),
                pad_len: Some(0),
            }),
            Frame::Continuation(Continuation {
                stream: StreamId(3),
                end_headers: false,
                fragment: Bytes::from_static(b"xyz"),
            }),
            Frame::PushPromise(PushPromise {
                stream: StreamId(1),
                promised: StreamId(4),
                end_headers: false,
                fragment: Bytes::from_static(b"p"),
                pad_len: Some(3),
            }),
            Frame::PushPromise(PushPromise {
                stream: StreamId(1),
                promised: StreamId::MAX,
                end_headers: true,
                fragment: Bytes::new(),
                pad_len: None,
            }),
        ];
        for frame in frames {
            assert_eq!(roundtrip(&frame), frame);
        }
    }

    #[test]
    fn canonical_inputs_reencode_identically() {
        let mut payload = vec![1];
        payload.extend_from_slice(&PRIO);
        payload.extend_from_slice(b"f\0");
        let all = flags::PADDED | flags::PRIORITY | flags::END_STREAM | flags::END_HEADERS;
        assert_canonical(&wire(FrameType::HEADERS, all, 3, &payload));
        assert_canonical(&wire(FrameType::HEADERS, flags::END_HEADERS, 3, b"abc"));
        assert_canonical(&wire(FrameType::CONTINUATION, 0, 3, b"abc"));
        assert_canonical(&wire(FrameType::PUSH_PROMISE, 0, 3, b"\0\0\0\x04q"));
    }

    /// Splits `bytes` into frames, checking each is whole.
    fn frames_of(mut bytes: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let header = FrameHeader::peek(bytes).unwrap();
            let end = FrameHeader::LEN + header.length as usize;
            out.push(decode_wire(&bytes[..end]).unwrap());
            bytes = &bytes[end..];
        }
        out
    }

    /// Encodes `block` with `max`, checks the frame sequence and returns the fragment sizes.
    fn split(block: &[u8], max: usize, end_stream: bool) -> Vec<usize> {
        let mut out = BytesMut::new();
        encode_header_block(StreamId(7), end_stream, block, max, &mut out);
        let frames = frames_of(&out);
        let last = frames.len() - 1;
        let mut reassembled = Vec::new();
        let mut sizes = Vec::new();
        for (i, frame) in frames.into_iter().enumerate() {
            let (fragment, end_headers) = match (i, frame) {
                (0, Frame::Headers(h)) => {
                    assert_eq!(h.stream, StreamId(7));
                    assert_eq!(h.end_stream, end_stream);
                    assert_eq!((h.priority, h.pad_len), (None, None));
                    (h.fragment, h.end_headers)
                }
                (i, Frame::Continuation(c)) if i > 0 => {
                    assert_eq!(c.stream, StreamId(7));
                    (c.fragment, c.end_headers)
                }
                (i, other) => panic!("unexpected frame {i}: {other:?}"),
            };
            assert_eq!(end_headers, i == last, "END_HEADERS only on the last frame");
            assert!(fragment.len() <= max.max(1));
            sizes.push(fragment.len());
            reassembled.extend_from_slice(&fragment);
        }
        assert_eq!(reassembled, block);
        sizes
    }

    #[test]
    fn header_block_splitting() {
        let block: Vec<u8> = (0..=255).cycle().take(40).collect();
        assert_eq!(split(&block, 16_384, true), [40]);
        assert_eq!(split(&block, 40, false), [40]);
        assert_eq!(split(&block, 39, true), [39, 1]);
        assert_eq!(split(&block, 20, false), [20, 20]);
        // Exact multiple: no empty trailing CONTINUATION.
        assert_eq!(split(&block, 10, true), [10, 10, 10, 10]);
        // One byte over a multiple.
        let one_over: Vec<u8> = (0..41).collect();
        assert_eq!(split(&one_over, 10, true), [10, 10, 10, 10, 1]);
        assert_eq!(split(b"", 10, true), [0]);
        // A zero limit is clamped so the loop still progresses.
        assert_eq!(split(b"abc", 0, false), [1, 1, 1]);
    }

    #[test]
    fn header_block_at_default_max_frame_size() {
        let block = vec![0x5a; 2 * 16_384];
        assert_eq!(split(&block, 16_384, false), [16_384, 16_384]);
        let block = vec![0x5a; 2 * 16_384 + 1];
        assert_eq!(split(&block, 16_384, true), [16_384, 16_384, 1]);
    }

    #[test]
    fn header_block_matches_headers_encoder_when_it_fits() {
        let h = Headers {
            stream: StreamId(7),
            end_stream: true,
            end_headers: true,
            priority: None,
            fragment: Bytes::from_static(b"fields"),
            pad_len: None,
        };
        let mut expected = BytesMut::new();
        h.encode(&mut expected);
        let mut out = BytesMut::new();
        encode_header_block(StreamId(7), true, b"fields", 16_384, &mut out);
        assert_eq!(out, expected);
    }
}

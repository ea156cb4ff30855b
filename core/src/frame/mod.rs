//! HTTP/2 frames (RFC 9113 §4 and §6): typed values for every frame type, checked decoding of
//! untrusted payloads and canonical encoding.
//!
//! The connection reads the 9-byte [`FrameHeader`], checks its length against its own
//! SETTINGS_MAX_FRAME_SIZE (RFC 9113 §4.2), waits for the whole payload, then calls
//! [`Frame::decode`]. Every rule that can be checked on one frame alone is checked here; rules
//! that need state (stream states, CONTINUATION sequencing, flow-control windows, whether push is
//! enabled) belong to the connection. Payload-carrying frames keep slices of the payload
//! (`Bytes`), never copies.

use core::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{ErrorCode, StreamId};
use crate::reader::Reader;

mod data;
mod goaway;
mod headers;
mod ping;
mod priority;
mod rst_stream;
mod settings;
mod window_update;

pub use data::{Data, encode_data_header};
pub use goaway::GoAway;
pub use headers::{Continuation, Headers, PushPromise, encode_header_block};
pub use ping::Ping;
pub use priority::{Priority, PrioritySpec};
pub use rst_stream::RstStream;
pub use settings::{SettingId, Settings};
pub use window_update::WindowUpdate;

/// The largest payload the 24-bit length field can describe (RFC 9113 §4.1), which is also the
/// largest value SETTINGS_MAX_FRAME_SIZE may take (RFC 9113 §6.5.2).
pub const MAX_PAYLOAD_LEN: u32 = (1 << 24) - 1;

/// SETTINGS_MAX_FRAME_SIZE before the peer says otherwise, and the smallest value it may take
/// (RFC 9113 §6.5.2): 16 KiB.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 1 << 14;

/// Clears the reserved top bit of a stream identifier field (RFC 9113 §4.1: ignored on receipt,
/// sent as zero).
const STREAM_ID_MASK: u32 = 0x7fff_ffff;

/// A frame type (RFC 9113 §6, §11.2). Unknown values are kept: such frames are skipped, not
/// rejected (RFC 9113 §4.1, §5.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameType(pub u8);

impl FrameType {
    /// DATA (RFC 9113 §6.1): message bytes of one stream.
    pub const DATA: Self = Self(0x0);
    /// HEADERS (RFC 9113 §6.2): opens a stream or carries trailers; starts a field block.
    pub const HEADERS: Self = Self(0x1);
    /// PRIORITY (RFC 9113 §6.3): deprecated priority signal, parsed and ignored.
    pub const PRIORITY: Self = Self(0x2);
    /// RST_STREAM (RFC 9113 §6.4): ends one stream at once.
    pub const RST_STREAM: Self = Self(0x3);
    /// SETTINGS (RFC 9113 §6.5): connection parameters, or their acknowledgement.
    pub const SETTINGS: Self = Self(0x4);
    /// PUSH_PROMISE (RFC 9113 §6.6): announces a server-pushed stream.
    pub const PUSH_PROMISE: Self = Self(0x5);
    /// PING (RFC 9113 §6.7): liveness check and round-trip measurement.
    pub const PING: Self = Self(0x6);
    /// GOAWAY (RFC 9113 §6.8): the sender stops accepting new streams.
    pub const GOAWAY: Self = Self(0x7);
    /// WINDOW_UPDATE (RFC 9113 §6.9): grants flow-control credit.
    pub const WINDOW_UPDATE: Self = Self(0x8);
    /// CONTINUATION (RFC 9113 §6.10): continues a field block.
    pub const CONTINUATION: Self = Self(0x9);

    /// The registered name of the type, if this crate knows it.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "DATA",
            0x1 => "HEADERS",
            0x2 => "PRIORITY",
            0x3 => "RST_STREAM",
            0x4 => "SETTINGS",
            0x5 => "PUSH_PROMISE",
            0x6 => "PING",
            0x7 => "GOAWAY",
            0x8 => "WINDOW_UPDATE",
            0x9 => "CONTINUATION",
            _ => return None,
        })
    }
}

impl fmt::Debug for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "FrameType({:#x})", self.0),
        }
    }
}

impl fmt::Display for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Frame flag bits (RFC 9113 §6). A bit means something only for the frame types that define
/// it; undefined bits are ignored on receipt and never sent (RFC 9113 §4.1).
pub mod flags {
    /// DATA, HEADERS: the last frame the sender sends on this stream (RFC 9113 §6.1, §6.2).
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: this frame acknowledges the peer's (RFC 9113 §6.5, §6.7).
    pub const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the field block ends here (RFC 9113 §6.2).
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: a Pad Length field and padding are present (RFC 9113 §6.1).
    pub const PADDED: u8 = 0x8;
    /// HEADERS: the deprecated priority fields are present (RFC 9113 §6.2).
    pub const PRIORITY: u8 = 0x20;
}

/// The 9-byte header in front of every frame (RFC 9113 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length in bytes, at most [`MAX_PAYLOAD_LEN`]; the caller checks it against its
    /// SETTINGS_MAX_FRAME_SIZE before buffering the payload (RFC 9113 §4.2).
    pub length: u32,
    /// The frame type, possibly unknown.
    pub kind: FrameType,
    /// The flag bits as received, undefined ones included.
    pub flags: u8,
    /// The stream, reserved bit cleared.
    pub stream: StreamId,
}

impl FrameHeader {
    /// Size of the header on the wire.
    pub const LEN: usize = 9;

    /// Reads a header. Cannot fail: every 9-byte pattern is a header; the reserved bit of the
    /// stream identifier is ignored (RFC 9113 §4.1).
    pub fn decode(bytes: &[u8; 9]) -> FrameHeader {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *bytes;
        FrameHeader {
            length: u32::from_be_bytes([0, l0, l1, l2]),
            kind: FrameType(kind),
            flags,
            stream: StreamId(u32::from_be_bytes([s0, s1, s2, s3]) & STREAM_ID_MASK),
        }
    }

    /// Reads the header at the start of `bytes`, or `None` while fewer than 9 bytes are there.
    pub fn peek(bytes: &[u8]) -> Option<FrameHeader> {
        let head = Reader::new(bytes).array::<9>().ok()?;
        Some(Self::decode(&head))
    }

    /// Writes the header. `length` must fit 24 bits (checked in debug builds); the reserved bit
    /// is sent as zero (RFC 9113 §4.1).
    pub fn encode(&self, dst: &mut BytesMut) {
        debug_assert!(self.length <= MAX_PAYLOAD_LEN, "frame payload over 2^24-1");
        let [_, l0, l1, l2] = self.length.to_be_bytes();
        dst.put_slice(&[l0, l1, l2, self.kind.0, self.flags]);
        dst.put_u32(self.stream.0 & STREAM_ID_MASK);
    }

    /// `true` when every bit of `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag == flag
    }
}

/// Why a frame was rejected, and what the receiver must send (RFC 9113 §5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Connection error: send GOAWAY with this code.
    Connection {
        /// The code for GOAWAY.
        code: ErrorCode,
        /// What was wrong, for logs and GOAWAY debug data.
        reason: &'static str,
    },
    /// Stream error: RST_STREAM this stream with this code; the connection goes on.
    Stream {
        /// The stream to reset.
        stream: StreamId,
        /// The code for RST_STREAM.
        code: ErrorCode,
        /// What was wrong, for logs.
        reason: &'static str,
    },
}

impl FrameError {
    /// A connection error (RFC 9113 §5.4.1).
    pub(crate) const fn connection(code: ErrorCode, reason: &'static str) -> Self {
        Self::Connection { code, reason }
    }

    /// A stream error (RFC 9113 §5.4.2).
    pub(crate) const fn stream(stream: StreamId, code: ErrorCode, reason: &'static str) -> Self {
        Self::Stream {
            stream,
            code,
            reason,
        }
    }

    /// The error code to put on the wire.
    pub fn code(&self) -> ErrorCode {
        match *self {
            Self::Connection { code, .. } | Self::Stream { code, .. } => code,
        }
    }

    /// What was wrong, for logs.
    pub fn reason(&self) -> &'static str {
        match *self {
            Self::Connection { reason, .. } | Self::Stream { reason, .. } => reason,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connection { code, reason } => write!(f, "connection error {code}: {reason}"),
            Self::Stream {
                stream,
                code,
                reason,
            } => write!(f, "stream {stream} error {code}: {reason}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// One decoded frame (RFC 9113 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// DATA (RFC 9113 §6.1).
    Data(Data),
    /// HEADERS (RFC 9113 §6.2).
    Headers(Headers),
    /// PRIORITY (RFC 9113 §6.3).
    Priority(Priority),
    /// RST_STREAM (RFC 9113 §6.4).
    RstStream(RstStream),
    /// SETTINGS (RFC 9113 §6.5).
    Settings(Settings),
    /// PUSH_PROMISE (RFC 9113 §6.6).
    PushPromise(PushPromise),
    /// PING (RFC 9113 §6.7).
    Ping(Ping),
    /// GOAWAY (RFC 9113 §6.8).
    GoAway(GoAway),
    /// WINDOW_UPDATE (RFC 9113 §6.9).
    WindowUpdate(WindowUpdate),
    /// CONTINUATION (RFC 9113 §6.10).
    Continuation(Continuation),
    /// A frame of a type this crate does not know; the receiver ignores it (RFC 9113 §5.5).
    /// Only the header is kept.
    Unknown(FrameHeader),
}

impl Frame {
    /// Decodes one frame whose header was already read and whose payload is exactly
    /// `header.length` bytes.
    /// The caller has already checked header.length against its SETTINGS_MAX_FRAME_SIZE.
    pub fn decode(header: FrameHeader, payload: Bytes) -> Result<Frame, FrameError> {
        if u32::try_from(payload.len()) != Ok(header.length) {
            // A caller bug rather than a peer's, but it must not be trusted either.
            return Err(FrameError::connection(
                ErrorCode::FRAME_SIZE_ERROR,
                "payload length differs from the frame header",
            ));
        }
        Ok(match header.kind {
            FrameType::DATA => Frame::Data(Data::decode(&header, payload)?),
            FrameType::HEADERS => Frame::Headers(Headers::decode(&header, payload)?),
            FrameType::PRIORITY => Frame::Priority(Priority::decode(&header, &payload)?),
            FrameType::RST_STREAM => Frame::RstStream(RstStream::decode(&header, &payload)?),
            FrameType::SETTINGS => Frame::Settings(Settings::decode(&header, &payload)?),
            FrameType::PUSH_PROMISE => Frame::PushPromise(PushPromise::decode(&header, payload)?),
            FrameType::PING => Frame::Ping(Ping::decode(&header, &payload)?),
            FrameType::GOAWAY => Frame::GoAway(GoAway::decode(&header, payload)?),
            FrameType::WINDOW_UPDATE => {
                Frame::WindowUpdate(WindowUpdate::decode(&header, &payload)?)
            }
            FrameType::CONTINUATION => Frame::Continuation(Continuation::decode(&header, payload)?),
            // RFC 9113 §5.5: unknown frame types are ignored and discarded.
            _ => Frame::Unknown(header),
        })
    }

    /// Encodes the frame canonically (header + payload) into dst.
    ///
    /// Undefined flags are not sent. An [`Frame::Unknown`] frame is written with its type,
    /// flags and stream but an empty payload, since its payload was not kept.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Frame::Data(f) => f.encode(dst),
            Frame::Headers(f) => f.encode(dst),
            Frame::Priority(f) => f.encode(dst),
            Frame::RstStream(f) => f.encode(dst),
            Frame::Settings(f) => f.encode(dst),
            Frame::PushPromise(f) => f.encode(dst),
            Frame::Ping(f) => f.encode(dst),
            Frame::GoAway(f) => f.encode(dst),
            Frame::WindowUpdate(f) => f.encode(dst),
            Frame::Continuation(f) => f.encode(dst),
            Frame::Unknown(header) => FrameHeader {
                length: 0,
                ..*header
            }
            .encode(dst),
        }
    }

    /// The frame's type.
    pub fn kind(&self) -> FrameType {
        match self {
            Frame::Data(_) => FrameType::DATA,
            Frame::Headers(_) => FrameType::HEADERS,
            Frame::Priority(_) => FrameType::PRIORITY,
            Frame::RstStream(_) => FrameType::RST_STREAM,
            Frame::Settings(_) => FrameType::SETTINGS,
            Frame::PushPromise(_) => FrameType::PUSH_PROMISE,
            Frame::Ping(_) => FrameType::PING,
            Frame::GoAway(_) => FrameType::GOAWAY,
            Frame::WindowUpdate(_) => FrameType::WINDOW_UPDATE,
            Frame::Continuation(_) => FrameType::CONTINUATION,
            Frame::Unknown(header) => header.kind,
        }
    }

    /// The stream the frame travels on; [`StreamId::CONNECTION`] for connection-level frames.
    pub fn stream(&self) -> StreamId {
        match self {
            Frame::Data(f) => f.stream,
            Frame::Headers(f) => f.stream,
            Frame::Priority(f) => f.stream,
            Frame::RstStream(f) => f.stream,
            Frame::PushPromise(f) => f.stream,
            Frame::WindowUpdate(f) => f.stream,
            Frame::Continuation(f) => f.stream,
            Frame::Settings(_) | Frame::Ping(_) | Frame::GoAway(_) => StreamId::CONNECTION,
            Frame::Unknown(header) => header.stream,
        }
    }
}

/// Writes a frame header for a payload of `len` bytes (our own value, not the peer's).
fn put_header(dst: &mut BytesMut, len: usize, kind: FrameType, flags: u8, stream: StreamId) {
    debug_assert!(
        u32::try_from(len).is_ok_and(|n| n <= MAX_PAYLOAD_LEN),
        "frame payload over 2^24-1"
    );
    let length = u32::try_from(len).map_or(MAX_PAYLOAD_LEN, |n| n.min(MAX_PAYLOAD_LEN));
    FrameHeader {
        length,
        kind,
        flags,
        stream,
    }
    .encode(dst);
}

/// The stream of a frame type that must travel on a stream: stream 0 is a connection
/// PROTOCOL_ERROR (RFC 9113 §6.1, §6.2, §6.3, §6.4, §6.6, §6.10).
fn require_stream(header: &FrameHeader, reason: &'static str) -> Result<StreamId, FrameError> {
    if header.stream.is_connection() {
        return Err(FrameError::connection(ErrorCode::PROTOCOL_ERROR, reason));
    }
    Ok(header.stream)
}

/// A connection-level frame type on a non-zero stream is a connection PROTOCOL_ERROR
/// (RFC 9113 §6.5, §6.7, §6.8).
fn require_connection(header: &FrameHeader, reason: &'static str) -> Result<(), FrameError> {
    if !header.stream.is_connection() {
        return Err(FrameError::connection(ErrorCode::PROTOCOL_ERROR, reason));
    }
    Ok(())
}

/// Reads the Pad Length field when PADDED is set (RFC 9113 §6.1, §6.2, §6.6). A payload too
/// short to hold it is a FRAME_SIZE_ERROR (RFC 9113 §4.2); every padded frame type either
/// carries a field block or counts against connection flow control, so it is a connection error.
fn read_pad_len(header: &FrameHeader, r: &mut Reader<'_>) -> Result<Option<u8>, FrameError> {
    if header.flags & flags::PADDED == 0 {
        return Ok(None);
    }
    r.u8().map(Some).map_err(|_| {
        FrameError::connection(
            ErrorCode::FRAME_SIZE_ERROR,
            "padded frame too short for its Pad Length field",
        )
    })
}

/// The part of `payload` after the fixed fields `r` has consumed and before the padding, as a
/// slice of `payload` (no copy). Padding longer than what is left is a connection
/// PROTOCOL_ERROR (RFC 9113 §6.1: padding at least as long as the payload; §6.2, §6.6: padding
/// beyond the field block fragment).
fn unpadded_rest(
    payload: &Bytes,
    r: &Reader<'_>,
    pad_len: Option<u8>,
) -> Result<Bytes, FrameError> {
    let too_much = || FrameError::connection(ErrorCode::PROTOCOL_ERROR, "padding exceeds payload");
    let pad = usize::from(pad_len.unwrap_or(0));
    let start = payload
        .len()
        .checked_sub(r.remaining())
        .ok_or_else(too_much)?;
    let end = payload.len().checked_sub(pad).ok_or_else(too_much)?;
    if end < start {
        return Err(too_much());
    }
    Ok(payload.slice(start..end))
}

/// Length of a payload made of `body` bytes plus, when padded, the Pad Length field and padding.
fn padded_len(body: usize, pad_len: Option<u8>) -> usize {
    body + pad_len.map_or(0, |pad| 1 + usize::from(pad))
}

/// Writes `pad_len` zero bytes of padding (RFC 9113 §6.1: padding octets are zero when sent).
fn put_padding(dst: &mut BytesMut, pad_len: Option<u8>) {
    if let Some(pad) = pad_len {
        dst.put_bytes(0, usize::from(pad));
    }
}

/// Parses frames from arbitrary bytes and checks that every frame that decodes re-encodes to a
/// frame decoding to the same value, and that encoding is deterministic. Panics only on such a
/// round-trip bug; used by the `frame_roundtrip` fuzz target and by the tests.
#[cfg(any(test, fuzzing))]
pub fn fuzz_roundtrip(data: &[u8]) {
    let mut r = Reader::new(data);
    while let Ok(head) = r.array::<9>() {
        let header = FrameHeader::decode(&head);
        // The 24-bit length is at most 16 MiB - 1, so no payload is too large to look at.
        let Ok(len) = usize::try_from(header.length) else {
            break;
        };
        let Ok(body) = r.take(len) else { break };
        let Ok(frame) = Frame::decode(header, Bytes::copy_from_slice(body)) else {
            continue;
        };
        let mut wire = BytesMut::new();
        frame.encode(&mut wire);
        let Some(again_header) = FrameHeader::peek(&wire) else {
            panic!("{frame:?} encoded to fewer than 9 bytes");
        };
        let again_payload = wire.clone().freeze().slice(FrameHeader::LEN..);
        assert_eq!(
            usize::try_from(again_header.length).ok(),
            Some(again_payload.len()),
            "{frame:?}: header length disagrees with the encoded payload"
        );
        let again = match Frame::decode(again_header, again_payload) {
            Ok(again) => again,
            Err(e) => panic!("{frame:?} re-encoded to a frame that fails to decode: {e}"),
        };
        let expected = match frame {
            Frame::Unknown(h) => Frame::Unknown(FrameHeader { length: 0, ..h }),
            other => other,
        };
        assert_eq!(again, expected, "encode → decode changed the frame");
        let mut rewire = BytesMut::new();
        again.encode(&mut rewire);
        assert_eq!(rewire, wire, "encoding is not deterministic");
    }
}

/// Helpers shared by the frame tests: hand-built frames and error checks.
#[cfg(test)]
mod test_util {
    use super::*;

    /// A whole frame on the wire: header with `payload.len()` as its length, then `payload`.
    pub(super) fn wire(kind: FrameType, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        FrameHeader {
            length: u32::try_from(payload.len()).unwrap(),
            kind,
            flags,
            stream: StreamId(stream),
        }
        .encode(&mut out);
        out.extend_from_slice(payload);
        out.to_vec()
    }

    /// Decodes one whole frame from `bytes`, which must hold exactly one frame.
    pub(super) fn decode_wire(bytes: &[u8]) -> Result<Frame, FrameError> {
        let header = FrameHeader::peek(bytes).expect("9 header bytes");
        let payload = Bytes::copy_from_slice(&bytes[FrameHeader::LEN..]);
        Frame::decode(header, payload)
    }

    /// Decodes a hand-built frame.
    pub(super) fn decode_raw(
        kind: FrameType,
        flags: u8,
        stream: u32,
        payload: &[u8],
    ) -> Result<Frame, FrameError> {
        decode_wire(&wire(kind, flags, stream, payload))
    }

    /// Encodes `frame`.
    pub(super) fn encode(frame: &Frame) -> Vec<u8> {
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        out.to_vec()
    }

    /// Encodes then decodes `frame`, checking the encoding is one whole frame.
    pub(super) fn roundtrip(frame: &Frame) -> Frame {
        let bytes = encode(frame);
        let header = FrameHeader::peek(&bytes).unwrap();
        assert_eq!(header.length as usize + FrameHeader::LEN, bytes.len());
        decode_wire(&bytes).expect("re-encoded frame decodes")
    }

    /// Asserts `decode_raw` of a canonical frame re-encodes to the same bytes.
    pub(super) fn assert_canonical(bytes: &[u8]) {
        let frame = decode_wire(bytes).expect("canonical frame decodes");
        assert_eq!(encode(&frame), bytes, "{frame:?}");
    }

    /// Asserts a connection error with `code`.
    #[track_caller]
    pub(super) fn assert_conn(result: Result<Frame, FrameError>, code: ErrorCode) {
        match result {
            Err(FrameError::Connection { code: got, .. }) => assert_eq!(got, code),
            other => panic!("expected connection error {code}, got {other:?}"),
        }
    }

    /// Asserts a stream error on `stream` with `code`.
    #[track_caller]
    pub(super) fn assert_stream(result: Result<Frame, FrameError>, stream: u32, code: ErrorCode) {
        match result {
            Err(FrameError::Stream {
                stream: got_stream,
                code: got,
                ..
            }) => {
                assert_eq!(got, code);
                assert_eq!(got_stream, StreamId(stream));
            }
            other => panic!("expected stream {stream} error {code}, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn header_decode_encode() {
        let bytes = [0x01, 0x02, 0x03, 0x09, 0x25, 0x00, 0x00, 0x01, 0x05];
        let h = FrameHeader::decode(&bytes);
        assert_eq!(h.length, 0x010203);
        assert_eq!(h.kind, FrameType::CONTINUATION);
        assert_eq!(h.flags, 0x25);
        assert_eq!(h.stream, StreamId(0x105));
        assert!(h.has(flags::END_STREAM | flags::END_HEADERS));
        assert!(!h.has(flags::PADDED));
        let mut out = BytesMut::new();
        h.encode(&mut out);
        assert_eq!(&out[..], &bytes[..]);
    }

    #[test]
    fn header_reserved_bit_masked_on_decode_and_cleared_on_encode() {
        let h = FrameHeader::decode(&[0, 0, 0, 0, 0, 0x80, 0, 0, 3]);
        assert_eq!(h.stream, StreamId(3));
        let mut out = BytesMut::new();
        FrameHeader {
            stream: StreamId(0x8000_0007),
            ..h
        }
        .encode(&mut out);
        assert_eq!(&out[5..], &[0, 0, 0, 7]);
    }

    #[test]
    fn header_peek_needs_nine_bytes() {
        assert_eq!(FrameHeader::peek(&[0; 8]), None);
        let h = FrameHeader::peek(&[0, 0, 4, 8, 0, 0, 0, 0, 0, 0xff]).unwrap();
        assert_eq!((h.length, h.kind), (4, FrameType::WINDOW_UPDATE));
    }

    #[test]
    fn frame_type_debug_names_known_and_hex_for_unknown() {
        assert_eq!(format!("{:?}", FrameType::GOAWAY), "GOAWAY");
        assert_eq!(format!("{}", FrameType::CONTINUATION), "CONTINUATION");
        assert_eq!(format!("{:?}", FrameType(0xa)), "FrameType(0xa)");
        for kind in 0..=9 {
            assert!(FrameType(kind).name().is_some());
        }
    }

    #[test]
    fn unknown_frame_type_is_kept_and_ignored() {
        let bytes = wire(FrameType(0xfa), 0xff, 7, b"whatever");
        let frame = decode_wire(&bytes).unwrap();
        let Frame::Unknown(h) = frame else {
            panic!("{frame:?}")
        };
        assert_eq!(
            (h.kind, h.flags, h.stream, h.length),
            (FrameType(0xfa), 0xff, StreamId(7), 8)
        );
        assert_eq!(frame.kind(), FrameType(0xfa));
        assert_eq!(frame.stream(), StreamId(7));
        // Re-encoded without the payload it did not keep.
        assert_eq!(encode(&frame), wire(FrameType(0xfa), 0xff, 7, b""));
        // Unknown types are fine on stream 0 too.
        assert!(matches!(
            decode_raw(FrameType(0x10), 0, 0, b""),
            Ok(Frame::Unknown(_))
        ));
    }

    #[test]
    fn payload_not_matching_header_length_is_rejected() {
        let header = FrameHeader {
            length: 8,
            kind: FrameType::PING,
            flags: 0,
            stream: StreamId(0),
        };
        let result = Frame::decode(header, Bytes::from_static(&[0; 7]));
        assert_conn(result, ErrorCode::FRAME_SIZE_ERROR);
    }

    #[test]
    fn frame_error_accessors_and_display() {
        let e = FrameError::stream(StreamId(3), ErrorCode::PROTOCOL_ERROR, "bad");
        assert_eq!(e.code(), ErrorCode::PROTOCOL_ERROR);
        assert_eq!(e.reason(), "bad");
        assert_eq!(e.to_string(), "stream 3 error PROTOCOL_ERROR: bad");
        let e = FrameError::connection(ErrorCode::FRAME_SIZE_ERROR, "short");
        assert_eq!(e.to_string(), "connection error FRAME_SIZE_ERROR: short");
    }

    #[test]
    fn frame_stream_and_kind() {
        let frame = decode_raw(FrameType::RST_STREAM, 0, 5, &[0, 0, 0, 8]).unwrap();
        assert_eq!(frame.kind(), FrameType::RST_STREAM);
        assert_eq!(frame.stream(), StreamId(5));
        let frame = decode_raw(FrameType::PING, 0, 0, &[0; 8]).unwrap();
        assert_eq!(frame.stream(), StreamId::CONNECTION);
    }

    /// A tiny xorshift64 generator: deterministic pseudo-random bytes without the rand crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn fuzz_roundtrip_over_pseudo_random_frames() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut decoded_ok = [0usize; 11];
        for _ in 0..4000 {
            let mut input = Vec::new();
            for _ in 0..rng.below(4) + 1 {
                // Mostly known types, with plausible lengths, so that many frames decode.
                let kind = if rng.below(8) == 0 {
                    rng.next() as u8
                } else {
                    rng.below(10) as u8
                };
                let len = match rng.below(4) {
                    0 => rng.below(4),
                    1 => [4, 5, 6, 8, 12][rng.below(5) as usize],
                    _ => rng.below(64),
                } as usize;
                let stream = match rng.below(4) {
                    0 => 0,
                    1 => rng.next() as u32,
                    _ => rng.below(8) as u32,
                };
                let mut payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                // Small pad lengths and values so padded and SETTINGS frames often pass.
                if !payload.is_empty() && rng.below(2) == 0 {
                    payload[0] %= 8;
                }
                let bytes = wire(FrameType(kind), rng.next() as u8, stream, &payload);
                if let Ok(frame) = decode_wire(&bytes) {
                    decoded_ok[usize::from(frame.kind().0).min(10)] += 1;
                }
                input.extend_from_slice(&bytes);
            }
            // Sometimes cut the last frame short.
            if rng.below(4) == 0 {
                input.truncate(input.len().saturating_sub(rng.below(12) as usize));
            }
            fuzz_roundtrip(&input);
        }
        // Also raw noise.
        for _ in 0..1000 {
            let noise: Vec<u8> = (0..rng.below(100)).map(|_| rng.next() as u8).collect();
            fuzz_roundtrip(&noise);
        }
        // Every frame type, and unknown ones, went through the round trip many times.
        assert!(decoded_ok.iter().all(|&n| n > 20), "{decoded_ok:?}");
    }
}

//! Length-prefixed message framing (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"):
//! a 1-byte compressed flag, a 4-byte big-endian length, then the message.

use core::fmt;

use bytes::{Buf, Bytes, BytesMut};

use super::status::Status;
use crate::reader::Reader;

/// Length of the prefix before every message.
pub const PREFIX_LEN: usize = 5;

/// The 5-byte prefix for a message of `len` bytes.
pub fn encode_prefix(compressed: bool, len: u32) -> [u8; PREFIX_LEN] {
    let [a, b, c, d] = len.to_be_bytes();
    [u8::from(compressed), a, b, c, d]
}

/// One received message, still compressed when `compressed` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The Compressed-Flag was 1: `data` is encoded with the stream's `grpc-encoding`.
    pub compressed: bool,
    /// The message bytes (a view into the received DATA when it lay in one chunk).
    pub data: Bytes,
}

/// A received message could not be framed; the call fails with [`MessageError::to_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// The prefix declared `size` bytes, more than the receive limit.
    TooLarge {
        /// The declared length.
        size: u64,
        /// The configured maximum receive message size.
        limit: usize,
    },
    /// The Compressed-Flag was neither 0 nor 1.
    BadFlag(u8),
    /// The call ended: what it still receives is dropped.
    Discarded,
}

impl MessageError {
    /// The status the call ends with: RESOURCE_EXHAUSTED for an oversize message (as grpc-go
    /// and C-core), INTERNAL for a bad flag.
    pub fn to_status(&self) -> Status {
        match *self {
            Self::TooLarge { size, limit } => Status::resource_exhausted(format!(
                "received message larger than max ({size} vs. {limit})"
            )),
            Self::BadFlag(flag) => {
                Status::internal(format!("invalid message compressed flag {flag:#04x}"))
            }
            Self::Discarded => Status::cancelled("the call already ended"),
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size, limit } => {
                write!(f, "message of {size} bytes exceeds the limit of {limit}")
            }
            Self::BadFlag(flag) => write!(f, "invalid compressed flag {flag:#04x}"),
            Self::Discarded => f.write_str("the call already ended"),
        }
    }
}

impl std::error::Error for MessageError {}

/// Reassembles length-prefixed messages from DATA payloads split anywhere.
///
/// Nothing received is kept as a chain of per-frame pieces: a message that spans payloads is
/// copied, as it arrives, into one buffer of its own (grown by doubling up to its declared
/// length, never more than four times ahead of the bytes that fill it), so a peer sending 1-byte DATA
/// frames makes it hold about what it sent, not a frame's bookkeeping per byte. A message
/// lying inside one payload is copied out into exactly its size (the small messages of a
/// streaming call after its first into a 4 KiB slab of the stream's, reused in place), or,
/// when the payload says its allocation may be kept ([`push_shared`](Self::push_shared)) and
/// the message fills at least half of it, handed on as a view without a copy. [`held_capacity`](Self::held_capacity) is
/// what the decoder holds, for the connection's receive budget. Errors are sticky: once
/// framing failed, the stream is dead and every later call returns the same error.
#[derive(Debug)]
pub struct MessageDecoder {
    /// The pushed payload not yet consumed.
    input: Bytes,
    /// `input` sits in an allocation of this many bytes that messages may keep alive.
    input_backing: Option<usize>,
    /// Prefix bytes read so far, while no message is pending.
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    /// The message being reassembled.
    partial: Option<Partial>,
    max_message_size: usize,
    failed: Option<MessageError>,
    /// A small message was copied out already: the next go through `slab`.
    copied_small: bool,
    /// Where the small messages of a streaming call are copied (see `copy_into_slab`).
    slab: BytesMut,
}

/// A message whose prefix was read and whose bytes are still arriving.
#[derive(Debug)]
struct Partial {
    compressed: bool,
    len: usize,
    /// The bytes so far; its capacity grows by doubling, never past `len`.
    buf: BytesMut,
}

/// Capacity the first reassembly buffer of a message starts with at least (then doubled).
const MIN_REASSEMBLY: usize = 4 << 10;

/// Size of the slab that the small messages (up to a quarter of it) of a streaming call are
/// copied into. A stream holding one is charged twice this (the slab being filled and, at
/// most, one older slab still kept alive by an unconsumed message).
pub const SLAB: usize = 4 << 10;

impl MessageDecoder {
    /// A decoder refusing messages longer than `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        Self {
            input: Bytes::new(),
            input_backing: None,
            prefix: [0; PREFIX_LEN],
            prefix_len: 0,
            partial: None,
            max_message_size,
            failed: None,
            copied_small: false,
            slab: BytesMut::new(),
        }
    }

    /// Adds the next DATA payload of the stream, in arrival order. Empty chunks are ignored.
    /// Messages are copied out of it: nothing keeps its allocation alive.
    pub fn push(&mut self, chunk: Bytes) {
        self.push_chunk(chunk, None);
    }

    /// Like [`push`](Self::push), for a payload that sits alone in an allocation of
    /// `backing` bytes: a message filling at least half of it is handed on as a view of it.
    pub fn push_shared(&mut self, chunk: Bytes, backing: usize) {
        self.push_chunk(chunk, Some(backing));
    }

    fn push_chunk(&mut self, chunk: Bytes, backing: Option<usize>) {
        if chunk.is_empty() || self.failed.is_some() {
            return;
        }
        if self.input.is_empty() {
            self.input = chunk;
            self.input_backing = backing;
        } else {
            // Pushed again before the last payload was drained: join them (a copy).
            let mut joined = BytesMut::with_capacity(self.input.len() + chunk.len());
            joined.extend_from_slice(&self.input);
            joined.extend_from_slice(&chunk);
            self.input = joined.freeze();
            self.input_backing = None;
        }
    }

    /// Bytes received and not yet handed on as messages (prefix bytes included).
    pub fn buffered_len(&self) -> usize {
        self.input.len()
            + self.prefix_len
            + self
                .partial
                .as_ref()
                .map_or(0, |p| PREFIX_LEN + p.buf.len())
    }

    /// Bytes of memory the decoder holds for the peer: the reassembly buffer's capacity, any
    /// payload not yet drained, and twice [`SLAB`] once it has a slab.
    pub fn held_capacity(&self) -> usize {
        let slabs = if self.slab.capacity() > 0 {
            2 * SLAB
        } else {
            0
        };
        self.partial_capacity() + slabs
    }

    /// The part of [`held_capacity`](Self::held_capacity) that is a message still arriving:
    /// the reassembly buffer and any payload not yet drained.
    pub fn partial_capacity(&self) -> usize {
        self.input.len() + self.partial.as_ref().map_or(0, |p| p.buf.capacity())
    }

    /// `true` while a partial message is held: END_STREAM now would truncate a message.
    pub fn is_mid_message(&self) -> bool {
        self.partial.is_some() || self.prefix_len > 0 || !self.input.is_empty()
    }

    /// Drops everything held (the call ended): later payloads are ignored.
    pub fn discard(&mut self) {
        self.input = Bytes::new();
        self.slab = BytesMut::new();
        self.partial = None;
        self.prefix_len = 0;
        self.failed.get_or_insert(MessageError::Discarded);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<RawMessage>, MessageError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.partial.is_none() {
            let want = PREFIX_LEN - self.prefix_len;
            let n = want.min(self.input.len());
            if let (Some(to), Some(from)) = (
                self.prefix.get_mut(self.prefix_len..self.prefix_len + n),
                self.input.get(..n),
            ) {
                to.copy_from_slice(from);
            }
            self.input.advance(n);
            self.prefix_len += n;
            if self.prefix_len < PREFIX_LEN {
                return Ok(None);
            }
            self.prefix_len = 0;
            let (compressed, len) = match self.check_prefix(self.prefix) {
                Ok(p) => p,
                Err(e) => {
                    self.fail(e);
                    return Err(e);
                }
            };
            if self.input.len() >= len {
                let data = self.take_whole(len);
                return Ok(Some(RawMessage { compressed, data }));
            }
            // The whole message at once when a quarter of it already arrived (one allocation,
            // no growth copies for a message split over a few frames); else room for twice
            // what arrived, doubled as more comes.
            let arrived = self.input.len();
            let first = if len <= arrived.saturating_mul(4) {
                len
            } else {
                MIN_REASSEMBLY.max(arrived.saturating_mul(2)).min(len)
            };
            self.partial = Some(Partial {
                compressed,
                len,
                buf: BytesMut::with_capacity(first),
            });
        }
        let Some(partial) = self.partial.as_mut() else {
            return Ok(None);
        };
        let n = (partial.len - partial.buf.len()).min(self.input.len());
        let needed = partial.buf.len() + n;
        if needed > partial.buf.capacity() {
            // Grown by hand: `BytesMut::reserve` may round past the declared length.
            let grown = partial.buf.capacity().saturating_mul(2).max(needed);
            let mut buf = BytesMut::with_capacity(grown.min(partial.len));
            buf.extend_from_slice(&partial.buf);
            partial.buf = buf;
        }
        partial
            .buf
            .extend_from_slice(self.input.get(..n).unwrap_or_default());
        self.input.advance(n);
        if self.input.is_empty() {
            self.input = Bytes::new();
        }
        if partial.buf.len() < partial.len {
            return Ok(None);
        }
        let compressed = partial.compressed;
        let data = self
            .partial
            .take()
            .map(|p| p.buf.freeze())
            .unwrap_or_default();
        Ok(Some(RawMessage { compressed, data }))
    }

    fn check_prefix(&self, prefix: [u8; PREFIX_LEN]) -> Result<(bool, usize), MessageError> {
        let mut r = Reader::new(&prefix);
        let (flag, len) = match (r.u8(), r.u32()) {
            (Ok(flag), Ok(len)) => (flag, len),
            // Unreachable: the prefix array holds exactly 5 bytes.
            _ => return Err(MessageError::BadFlag(0xff)),
        };
        let compressed = match flag {
            0 => false,
            1 => true,
            other => return Err(MessageError::BadFlag(other)),
        };
        let too_large = MessageError::TooLarge {
            size: u64::from(len),
            limit: self.max_message_size,
        };
        let len = usize::try_from(len).map_err(|_| too_large)?;
        if len > self.max_message_size {
            return Err(too_large);
        }
        Ok((compressed, len))
    }

    fn fail(&mut self, e: MessageError) {
        self.failed = Some(e);
        self.input = Bytes::new();
        self.partial = None;
        self.prefix_len = 0;
    }

    /// A message of `len` bytes lying whole in `input`: a view when its allocation may be
    /// kept and the message fills at least half of it, else a copy of exactly `len` bytes.
    fn take_whole(&mut self, len: usize) -> Bytes {
        if len == 0 {
            return Bytes::new();
        }
        let view = self.input.split_to(len);
        if self.input.is_empty() {
            self.input = Bytes::new();
        }
        match self.input_backing {
            Some(backing) if len.saturating_mul(2) >= backing => view,
            _ if len <= SLAB / 4 && self.copied_small => self.copy_into_slab(&view),
            _ => {
                self.copied_small |= len <= SLAB / 4;
                Bytes::copy_from_slice(&view)
            }
        }
    }

    /// Copies a small message of a streaming call into the stream's slab and hands it on as
    /// a view of it: one allocation per slab, not per message, and the slab is reused in
    /// place once its messages are dropped. A slab is kept alive by any of its messages, so a
    /// stream pins at most the slab being filled and the one before it.
    fn copy_into_slab(&mut self, bytes: &[u8]) -> Bytes {
        if self.slab.capacity() - self.slab.len() < bytes.len() {
            // In place when nothing uses the slab any more, else a new one.
            self.slab.reserve(SLAB);
        }
        self.slab.extend_from_slice(bytes);
        self.slab.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(compressed: bool, body: &[u8]) -> Vec<u8> {
        let mut v = encode_prefix(compressed, u32::try_from(body.len()).unwrap()).to_vec();
        v.extend_from_slice(body);
        v
    }

    fn drain(d: &mut MessageDecoder) -> Vec<RawMessage> {
        let mut out = Vec::new();
        while let Some(m) = d.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    fn two_messages() -> (Vec<u8>, Vec<RawMessage>) {
        let a = b"hello".to_vec();
        let b: Vec<u8> = (0..40).collect();
        let mut wire = frame(false, &a);
        wire.extend(frame(true, &b));
        let expect = vec![
            RawMessage {
                compressed: false,
                data: Bytes::from(a),
            },
            RawMessage {
                compressed: true,
                data: Bytes::from(b),
            },
        ];
        (wire, expect)
    }

    #[test]
    fn prefix_round_trip() {
        assert_eq!(encode_prefix(true, 0x0102_0304), [1, 1, 2, 3, 4]);
        assert_eq!(encode_prefix(false, 0), [0; 5]);
    }

    #[test]
    fn split_at_every_position() {
        let (wire, expect) = two_messages();
        for i in 0..=wire.len() {
            let mut d = MessageDecoder::new(1024);
            let mut got = Vec::new();
            d.push(Bytes::copy_from_slice(&wire[..i]));
            got.extend(drain(&mut d));
            d.push(Bytes::copy_from_slice(&wire[i..]));
            got.extend(drain(&mut d));
            assert_eq!(got, expect, "split at {i}");
            assert!(!d.is_mid_message());
            assert_eq!(d.buffered_len(), 0);
        }
        for i in 0..=wire.len() {
            for j in i..=wire.len() {
                let mut d = MessageDecoder::new(1024);
                for part in [&wire[..i], &wire[i..j], &wire[j..]] {
                    d.push(Bytes::copy_from_slice(part));
                }
                assert_eq!(drain(&mut d), expect, "split at {i}, {j}");
            }
        }
    }

    #[test]
    fn byte_by_byte_tracks_partial_state() {
        let (wire, expect) = two_messages();
        let mut d = MessageDecoder::new(1024);
        let mut got = Vec::new();
        for (i, &b) in wire.iter().enumerate() {
            d.push(Bytes::copy_from_slice(&[b]));
            got.extend(drain(&mut d));
            let at_boundary = i + 1 == 10 || i + 1 == wire.len();
            assert_eq!(d.is_mid_message(), !at_boundary, "after byte {i}");
        }
        assert_eq!(got, expect);
    }

    fn within(outer: &Bytes, inner: &Bytes) -> bool {
        let (o, i) = (outer.as_ptr_range(), inner.as_ptr_range());
        o.start <= i.start && i.end <= o.end
    }

    #[test]
    fn a_message_filling_a_shared_payload_is_a_view() {
        let (wire, expect) = two_messages();
        let chunk = Bytes::from(wire);
        let mut d = MessageDecoder::new(1024);
        d.push_shared(chunk.clone(), chunk.len());
        assert_eq!(d.buffered_len(), chunk.len());
        let got = drain(&mut d);
        assert_eq!(got, expect);
        // 40 of 55 bytes: a view; 5 of 55: a copy, so it does not keep the payload alive.
        assert!(!within(&chunk, &got[0].data), "small message copied");
        assert!(within(&chunk, &got[1].data), "large message is a view");
    }

    #[test]
    fn messages_of_an_unshared_payload_are_copies() {
        let (wire, expect) = two_messages();
        let chunk = Bytes::from(wire);
        let mut d = MessageDecoder::new(1024);
        d.push(chunk.clone());
        let got = drain(&mut d);
        assert_eq!(got, expect);
        assert!(got.iter().all(|m| !within(&chunk, &m.data)));
    }

    #[test]
    fn one_byte_payloads_hold_about_what_arrived() {
        let body = vec![7u8; 1 << 20];
        let wire = frame(false, &body);
        let mut d = MessageDecoder::new(4 << 20);
        let mut received = 0;
        for (i, b) in wire.iter().enumerate() {
            d.push(Bytes::copy_from_slice(&[*b]));
            received += 1;
            if let Some(m) = d.next_message().unwrap() {
                assert_eq!(i + 1, wire.len());
                assert_eq!(m.data.len(), body.len());
                assert_eq!(d.held_capacity(), 0);
                return;
            }
            // Never more than twice what arrived (plus the first 4 KiB), never past the
            // declared length.
            assert!(d.held_capacity() <= (2 * received).max(MIN_REASSEMBLY));
            assert!(d.held_capacity() <= body.len());
        }
        panic!("the message never completed");
    }

    #[test]
    fn a_declared_length_is_not_allocated_ahead() {
        let mut d = MessageDecoder::new(4 << 20);
        d.push(Bytes::copy_from_slice(&encode_prefix(false, 4 << 20)));
        d.push(Bytes::copy_from_slice(&[1, 2, 3]));
        assert_eq!(d.next_message(), Ok(None));
        assert!(d.held_capacity() <= MIN_REASSEMBLY);
        assert!(d.is_mid_message());
        d.discard();
        assert_eq!(d.held_capacity(), 0);
        d.push(Bytes::copy_from_slice(&[4]));
        assert_eq!(d.held_capacity(), 0, "a discarded decoder keeps nothing");
    }

    #[test]
    fn empty_message() {
        let mut d = MessageDecoder::new(0);
        d.push(Bytes::from(frame(false, b"")));
        let m = d.next_message().unwrap().unwrap();
        assert!(m.data.is_empty());
        assert_eq!(d.next_message(), Ok(None));
    }

    #[test]
    fn limit_and_one_byte_over() {
        let body = vec![9u8; 100];
        let mut d = MessageDecoder::new(100);
        d.push(Bytes::from(frame(false, &body)));
        assert_eq!(d.next_message().unwrap().unwrap().data, body);

        let mut d = MessageDecoder::new(99);
        d.push(Bytes::copy_from_slice(&encode_prefix(false, 100)));
        let e = d.next_message().unwrap_err();
        assert_eq!(
            e,
            MessageError::TooLarge {
                size: 100,
                limit: 99
            }
        );
        assert_eq!(e.to_status().code(), super::super::Code::ResourceExhausted);
        d.push(Bytes::from(body));
        assert_eq!(d.next_message(), Err(e), "errors are sticky");
        assert_eq!(d.buffered_len(), 0, "nothing kept after failure");
    }

    #[test]
    fn four_gib_prefix_fails_immediately() {
        let mut d = MessageDecoder::new(4 << 20);
        d.push(Bytes::copy_from_slice(&[0, 0xff, 0xff]));
        assert_eq!(d.next_message(), Ok(None));
        d.push(Bytes::copy_from_slice(&[0xff, 0xff]));
        assert_eq!(
            d.next_message(),
            Err(MessageError::TooLarge {
                size: u64::from(u32::MAX),
                limit: 4 << 20
            })
        );
    }

    #[test]
    fn bad_flag() {
        for flag in [2u8, 0x80, 0xff] {
            let mut d = MessageDecoder::new(10);
            d.push(Bytes::copy_from_slice(&[flag, 0, 0, 0, 1, 7]));
            let e = d.next_message().unwrap_err();
            assert_eq!(e, MessageError::BadFlag(flag));
            assert_eq!(e.to_status().code(), super::super::Code::Internal);
        }
    }

    #[test]
    fn gathered_message_is_exactly_sized() {
        let body: Vec<u8> = (0..=255).collect();
        let wire = frame(false, &body);
        let mut d = MessageDecoder::new(1024);
        for piece in wire.chunks(7) {
            d.push(Bytes::copy_from_slice(piece));
        }
        let m = d.next_message().unwrap().unwrap();
        assert_eq!(m.data, body);
        assert_eq!(d.buffered_len(), 0);
        assert!(!d.is_mid_message());
    }
}

//! Length-prefixed message framing (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"):
//! a 1-byte compressed flag, a 4-byte big-endian length, then the message.

use crate::queue::InlineQueue;
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
        }
    }
}

impl std::error::Error for MessageError {}

/// Reassembles length-prefixed messages from DATA payloads split anywhere.
///
/// A message lying inside one pushed chunk is returned as a slice of that chunk (no copy).
/// A message spanning chunks is gathered into one buffer, allocated only once its prefix
/// was read and its length checked against the limit. Errors are sticky: once framing
/// failed, the stream is dead and every later call returns the same error.
#[derive(Debug)]
pub struct MessageDecoder {
    chunks: InlineQueue<Bytes>,
    buffered: usize,
    max_message_size: usize,
    /// The prefix of the message being received, once all 5 bytes were read.
    pending: Option<(bool, usize)>,
    failed: Option<MessageError>,
}

impl MessageDecoder {
    /// A decoder refusing messages longer than `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        Self {
            chunks: InlineQueue::default(),
            buffered: 0,
            max_message_size,
            pending: None,
            failed: None,
        }
    }

    /// Adds the next DATA payload of the stream, in arrival order. Empty chunks are ignored.
    /// Bounded by HTTP/2 flow control: the caller never pushes more than it advertised.
    pub fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() || self.failed.is_some() {
            return;
        }
        self.buffered = self.buffered.saturating_add(chunk.len());
        self.chunks.push_back(chunk);
    }

    /// Bytes held (message bodies and unread prefix bytes), for flow-control accounting.
    pub fn buffered_len(&self) -> usize {
        self.buffered
    }

    /// `true` while a partial message is held: END_STREAM now would truncate a message.
    pub fn is_mid_message(&self) -> bool {
        self.pending.is_some() || self.buffered > 0
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<RawMessage>, MessageError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let (compressed, len) = match self.pending {
            Some(p) => p,
            None => {
                if self.buffered < PREFIX_LEN {
                    return Ok(None);
                }
                let mut prefix = [0u8; PREFIX_LEN];
                self.copy_out(&mut prefix);
                match self.check_prefix(prefix) {
                    Ok(p) => {
                        self.pending = Some(p);
                        p
                    }
                    Err(e) => {
                        self.fail(e);
                        return Err(e);
                    }
                }
            }
        };
        if self.buffered < len {
            return Ok(None);
        }
        self.pending = None;
        let data = self.take_message(len);
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
        self.chunks.clear();
        self.buffered = 0;
        self.pending = None;
    }

    /// Copies the next `dst.len()` buffered bytes into `dst`; the caller checked they are held.
    fn copy_out(&mut self, dst: &mut [u8]) {
        let mut filled = 0;
        while filled < dst.len() {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let n = front.len().min(dst.len() - filled);
            if let (Some(to), Some(from)) = (dst.get_mut(filled..filled + n), front.get(..n)) {
                to.copy_from_slice(from);
            }
            front.advance(n);
            filled += n;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        self.buffered = self.buffered.saturating_sub(filled);
    }

    /// Removes the next `len` buffered bytes (`len <= self.buffered`), as a view of the front
    /// chunk when it holds them all, else gathered into one buffer of exactly `len` bytes.
    fn take_message(&mut self, len: usize) -> Bytes {
        if len == 0 {
            return Bytes::new();
        }
        if let Some(front) = self.chunks.front_mut() {
            if front.len() >= len {
                let data = front.split_to(len);
                if front.is_empty() {
                    self.chunks.pop_front();
                }
                self.buffered = self.buffered.saturating_sub(len);
                return data;
            }
        }
        let mut gathered = BytesMut::with_capacity(len);
        while gathered.len() < len {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let n = front.len().min(len - gathered.len());
            gathered.extend_from_slice(front.get(..n).unwrap_or(&[]));
            front.advance(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        self.buffered = self.buffered.saturating_sub(gathered.len());
        gathered.freeze()
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

    #[test]
    fn single_chunk_is_zero_copy() {
        let (wire, expect) = two_messages();
        let chunk = Bytes::from(wire);
        let range = chunk.as_ptr_range();
        let mut d = MessageDecoder::new(1024);
        d.push(chunk.clone());
        assert_eq!(d.buffered_len(), chunk.len());
        let got = drain(&mut d);
        assert_eq!(got, expect);
        for m in &got {
            let r = m.data.as_ptr_range();
            assert!(
                range.start <= r.start && r.end <= range.end,
                "message is a view"
            );
        }
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

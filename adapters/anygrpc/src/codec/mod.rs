//! Message encoding for calls: a [`Codec`] (prost by default) plus per-message compression,
//! done in the calls' own tasks, never in the connection driver.

mod interface;
mod recycled;

use std::sync::Arc;

use anygrpc_core::{Compression, Message, Status};
use bytes::{Bytes, BytesMut};

pub use interface::{Codec, ProstCodec, RawCodec};
use recycled::Recycler;

/// One message ready for the connection.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    /// What goes on the wire: the encoding, compressed when `compressed`.
    pub(crate) bytes: Bytes,
    pub(crate) compressed: bool,
    /// The size before compression.
    pub(crate) size: usize,
}

impl Encoded {
    /// The bytes and the compressed flag, as the connection takes them.
    pub(crate) fn wire(self) -> (Bytes, bool) {
        (self.bytes, self.compressed)
    }
}

/// Encodes `message` with `codec`, compressing it as `compression` says when given.
pub(crate) fn encode<T, C: Codec<T>>(
    codec: &C,
    message: &T,
    compression: Option<Compression>,
    limit: usize,
) -> Result<Encoded, Status> {
    if let Some(bytes) = codec.encoded_bytes(message) {
        within_limit(bytes.len(), limit)?;
        return compress(bytes, compression);
    }
    // Exactly the message's size: a one-off buffer is not shared with later messages.
    let len = codec.encoded_len(message);
    if let Some(len) = len {
        within_limit(len, limit)?;
    }
    let mut buffer = BytesMut::with_capacity(len.unwrap_or(0));
    codec.encode(message, &mut buffer)?;
    within_limit(buffer.len(), limit)?;
    compress(buffer.freeze(), compression)
}

/// Where a call that sends many messages encodes them. Small consecutive messages share one
/// allocation (each is a `Bytes` slice of it), reused once the connection has let go of them;
/// a large one gets a buffer of its own from the call's [`Recycler`], which takes it back once
/// the connection has written it. Either way a steady stream allocates nothing per message.
#[derive(Debug, Default)]
pub(crate) struct EncodeBuffer {
    small: BytesMut,
    /// Made at the first large message.
    large: Option<Arc<Recycler>>,
}

/// Smallest allocation an [`EncodeBuffer`] makes for small messages; a message this large or
/// larger is encoded into a recycled buffer of its own.
const ENCODE_CHUNK: usize = 16 << 10;

impl EncodeBuffer {
    /// Encodes `message` as [`encode`] does.
    pub(crate) fn encode<T, C: Codec<T>>(
        &mut self,
        codec: &C,
        message: &T,
        compression: Option<Compression>,
        limit: usize,
    ) -> Result<Encoded, Status> {
        if let Some(bytes) = codec.encoded_bytes(message) {
            within_limit(bytes.len(), limit)?;
            return compress(bytes, compression);
        }
        let len = codec.encoded_len(message);
        let bytes = match len {
            Some(len) if len >= ENCODE_CHUNK => {
                within_limit(len, limit)?;
                let large = self.large.get_or_insert_with(Arc::default);
                let mut buffer = large.take(len);
                codec.encode(message, &mut buffer)?;
                large.share(buffer)
            }
            len => {
                if let Some(len) = len {
                    within_limit(len, limit)?;
                }
                if self.small.capacity() < len.unwrap_or(ENCODE_CHUNK) {
                    // Reclaims the current allocation when every earlier message was dropped.
                    self.small.reserve(ENCODE_CHUNK);
                }
                let encoded = codec.encode(message, &mut self.small);
                let bytes = self.small.split().freeze();
                encoded?;
                bytes
            }
        };
        within_limit(bytes.len(), limit)?;
        compress(bytes, compression)
    }
}

/// Refuses a message of `len` bytes over `limit`.
fn within_limit(len: usize, limit: usize) -> Result<(), Status> {
    if len > limit {
        return Err(Status::resource_exhausted(format!(
            "message of {len} bytes exceeds the send limit of {limit}"
        )));
    }
    Ok(())
}

/// Compresses already-encoded bytes when an encoding other than identity is chosen.
pub(crate) fn compress(bytes: Bytes, compression: Option<Compression>) -> Result<Encoded, Status> {
    let size = bytes.len();
    match compression.and_then(Compression::non_identity) {
        None => Ok(Encoded {
            bytes,
            compressed: false,
            size,
        }),
        Some(compression) => {
            let mut out = BytesMut::new();
            anygrpc_core::grpc::compress(compression, &bytes, &mut out)
                .map_err(|e| e.to_status())?;
            Ok(Encoded {
                bytes: out.freeze(),
                compressed: true,
                size,
            })
        }
    }
}

/// Decompresses and decodes a received message with `codec`, refusing more than `limit`
/// bytes.
pub(crate) fn decode<T, C: Codec<T>>(
    codec: &C,
    message: Message,
    limit: usize,
) -> Result<T, Status> {
    codec.decode(message.into_payload(limit)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anygrpc_core::Encoding;

    /// A codec that does not know its sizes: text, and a failure for "fail" after half of it.
    #[derive(Debug, Clone, Default)]
    struct Text;

    impl Codec<String> for Text {
        fn encode(&self, item: &String, dst: &mut BytesMut) -> Result<(), Status> {
            if item == "fail" {
                dst.extend_from_slice(b"fa");
                return Err(Status::internal("no"));
            }
            dst.extend_from_slice(item.as_bytes());
            Ok(())
        }
        fn decode(&self, src: Bytes) -> Result<String, Status> {
            String::from_utf8(src.to_vec()).map_err(|e| Status::internal(e.to_string()))
        }
    }

    #[test]
    fn raw_bytes_are_shared_not_copied() {
        let raw = Bytes::from(vec![1u8; 100_000]);
        let mut buf = EncodeBuffer::default();
        let sent = buf.encode(&RawCodec, &raw, None, usize::MAX).unwrap();
        assert_eq!(sent.bytes.as_ptr(), raw.as_ptr(), "the same bytes");
        assert_eq!(sent.size, 100_000);
        let one_off = encode(&RawCodec, &raw, None, usize::MAX).unwrap();
        assert_eq!(one_off.bytes.as_ptr(), raw.as_ptr());
        let over = buf.encode(&RawCodec, &raw, None, 99_999).unwrap_err();
        assert_eq!(over.code(), anygrpc_core::Code::ResourceExhausted);
        let message = Message {
            data: raw.clone(),
            encoding: None,
        };
        let got = decode(&RawCodec, message, usize::MAX).unwrap();
        assert_eq!(
            got.as_ptr(),
            raw.as_ptr(),
            "received bytes handed over as they are"
        );
    }

    #[test]
    fn a_codec_without_sizes_is_checked_after_encoding_and_fails_cleanly() {
        let mut buf = EncodeBuffer::default();
        let text = String::from("0123456789");
        assert_eq!(
            &buf.encode(&Text, &text, None, 10).unwrap().bytes[..],
            b"0123456789"
        );
        let over = buf.encode(&Text, &text, None, 9).unwrap_err();
        assert_eq!(over.code(), anygrpc_core::Code::ResourceExhausted);
        let failed = buf
            .encode(&Text, &"fail".to_string(), None, 100)
            .unwrap_err();
        assert_eq!(failed.message(), "no");
        // What the failed encode wrote is not part of the next message.
        assert_eq!(
            &buf.encode(&Text, &text, None, 100).unwrap().bytes[..],
            b"0123456789"
        );
        let big = "x".repeat(ENCODE_CHUNK * 2);
        assert_eq!(
            buf.encode(&Text, &big, None, usize::MAX).unwrap().size,
            big.len()
        );
        assert!(encode(&Text, &big, None, 100).is_err());
        let compressed = encode(
            &Text,
            &big,
            Some(Compression::new(Encoding::Identity)),
            1 << 20,
        )
        .unwrap();
        assert!(!compressed.compressed, "identity is no compression");
    }

    #[test]
    fn an_encode_buffer_shares_and_reuses_its_allocation() {
        let mut buf = EncodeBuffer::default();
        let message = String::from("0123456789");
        let (a, _) = buf
            .encode(&ProstCodec, &message, None, usize::MAX)
            .expect("encodes")
            .wire();
        let (b, _) = buf
            .encode(&ProstCodec, &message, None, usize::MAX)
            .expect("encodes")
            .wire();
        assert_eq!(a, b);
        assert_eq!(
            a,
            encode(&ProstCodec, &message, None, usize::MAX)
                .expect("encodes")
                .bytes
        );
        // The second message follows the first in the same allocation.
        assert_eq!(a.as_ptr().wrapping_add(a.len()), b.as_ptr());
        let first = a.as_ptr();
        drop((a, b));
        // Fill the chunk, dropping each message (as the driver does once it has copied it):
        // the message after the chunk is full goes to the start of the same allocation.
        let per_chunk = ENCODE_CHUNK / 12;
        let mut pointers = Vec::new();
        for _ in 0..per_chunk + 1 {
            let (m, _) = buf
                .encode(&ProstCodec, &message, None, usize::MAX)
                .expect("encodes")
                .wire();
            pointers.push(m.as_ptr());
        }
        assert!(pointers.contains(&first), "reclaimed: {first:?}");
        assert!(
            buf.encode(&ProstCodec, &message, None, 5).is_err(),
            "limit kept"
        );
    }

    #[test]
    fn a_large_message_is_encoded_into_the_buffer_an_earlier_one_gave_back() {
        let mut buf = EncodeBuffer::default();
        let message = "x".repeat(ENCODE_CHUNK);
        let (a, _) = buf
            .encode(&ProstCodec, &message, None, usize::MAX)
            .expect("encodes")
            .wire();
        let (b, _) = buf
            .encode(&ProstCodec, &message, None, usize::MAX)
            .expect("encodes")
            .wire();
        assert_ne!(a.as_ptr(), b.as_ptr(), "each in flight has its own");
        assert_eq!(
            a,
            encode(&ProstCodec, &message, None, usize::MAX)
                .expect("encodes")
                .bytes
        );
        let first = a.as_ptr();
        drop(a);
        let (c, _) = buf
            .encode(&ProstCodec, &message, None, usize::MAX)
            .expect("encodes")
            .wire();
        assert_eq!(c.as_ptr(), first, "written messages give their buffer back");
        assert_eq!(c, b);
        let err = buf
            .encode(&ProstCodec, &message, None, 100)
            .expect_err("over the limit");
        assert_eq!(err.code(), anygrpc_core::Code::ResourceExhausted);
    }

    #[test]
    fn round_trip_plain_and_compressed() {
        let value = String::from("hello hello hello hello");
        for encoding in [
            None,
            Some(Encoding::Identity),
            Some(Encoding::Gzip),
            Some(Encoding::Deflate),
        ] {
            let (bytes, compressed) = encode(
                &ProstCodec,
                &value,
                encoding.map(Compression::new),
                usize::MAX,
            )
            .unwrap()
            .wire();
            let expect_compressed = matches!(encoding, Some(Encoding::Gzip | Encoding::Deflate));
            assert_eq!(compressed, expect_compressed);
            let message = Message {
                data: bytes,
                encoding: if compressed { encoding } else { None },
            };
            assert_eq!(
                decode::<String, _>(&ProstCodec, message.clone(), 1 << 20).unwrap(),
                value
            );
        }
    }

    #[test]
    fn limits_are_resource_exhausted() {
        let value = String::from("0123456789");
        assert_eq!(
            encode(&ProstCodec, &value, None, 5).unwrap_err().code(),
            anygrpc_core::Code::ResourceExhausted
        );
        let bytes = encode(&ProstCodec, &value, None, 100).unwrap().bytes;
        let message = Message {
            data: bytes,
            encoding: None,
        };
        assert_eq!(
            decode::<String, _>(&ProstCodec, message, 5)
                .unwrap_err()
                .code(),
            anygrpc_core::Code::ResourceExhausted
        );
    }

    #[test]
    fn garbage_is_internal() {
        let message = Message {
            data: Bytes::from_static(&[0xff, 0xff]),
            encoding: None,
        };
        assert_eq!(
            decode::<String, _>(&ProstCodec, message, 100)
                .unwrap_err()
                .code(),
            anygrpc_core::Code::Internal
        );
    }
}

//! Message encoding for calls: prost encode/decode plus per-message compression, done in the
//! calls' own tasks, never in the connection driver.

mod recycled;

use std::sync::Arc;

use anygrpc_core::{Encoding, Message, Status};
use bytes::{Bytes, BytesMut};

use recycled::Recycler;

/// Encodes `message`, compressing it with `encoding` when given. Returns the bytes and whether
/// they are compressed.
pub(crate) fn encode<M: prost::Message>(
    message: &M,
    encoding: Option<Encoding>,
    limit: usize,
) -> Result<(Bytes, bool), Status> {
    // Exactly the message's size: a one-off buffer is not shared with later messages.
    let len = within_limit(message, limit)?;
    let mut buffer = BytesMut::with_capacity(len);
    encode_into(&mut buffer, message)?;
    compress(buffer.freeze(), encoding)
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
    pub(crate) fn encode<M: prost::Message>(
        &mut self,
        message: &M,
        encoding: Option<Encoding>,
        limit: usize,
    ) -> Result<(Bytes, bool), Status> {
        let len = within_limit(message, limit)?;
        let bytes = if len >= ENCODE_CHUNK {
            let large = self.large.get_or_insert_with(Arc::default);
            let mut buffer = large.take(len);
            encode_into(&mut buffer, message)?;
            large.share(buffer)
        } else {
            if self.small.capacity() < len {
                // Reclaims the current allocation when every earlier message was dropped.
                self.small.reserve(ENCODE_CHUNK);
            }
            encode_into(&mut self.small, message)?;
            self.small.split().freeze()
        };
        compress(bytes, encoding)
    }
}

/// A request a call sends: a typed message, or an interceptor's `AnyMsg`.
pub(crate) trait Outgoing {
    /// Its wire form, compressed with `compression` when given; refused over `limit` bytes.
    fn encode(&self, compression: Option<Encoding>, limit: usize) -> Result<(Bytes, bool), Status>;
    /// As [`encode`](Self::encode), into a call's `buffer` when that saves an allocation.
    fn encode_in(
        &self,
        buffer: &mut EncodeBuffer,
        compression: Option<Encoding>,
        limit: usize,
    ) -> Result<(Bytes, bool), Status> {
        let _ = buffer;
        self.encode(compression, limit)
    }
    /// Its size before compression.
    fn encoded_len(&self) -> usize;
}

impl<M: prost::Message> Outgoing for M {
    fn encode(&self, compression: Option<Encoding>, limit: usize) -> Result<(Bytes, bool), Status> {
        encode(self, compression, limit)
    }
    fn encode_in(
        &self,
        buffer: &mut EncodeBuffer,
        compression: Option<Encoding>,
        limit: usize,
    ) -> Result<(Bytes, bool), Status> {
        buffer.encode(self, compression, limit)
    }
    fn encoded_len(&self) -> usize {
        prost::Message::encoded_len(self)
    }
}

/// The encoded size of `message`, refused when over `limit` bytes.
fn within_limit<M: prost::Message>(message: &M, limit: usize) -> Result<usize, Status> {
    let len = message.encoded_len();
    if len > limit {
        return Err(Status::resource_exhausted(format!(
            "message of {len} bytes exceeds the send limit of {limit}"
        )));
    }
    Ok(len)
}

/// Encodes `message` at the end of `buffer`.
fn encode_into<M: prost::Message>(
    buffer: &mut impl bytes::BufMut,
    message: &M,
) -> Result<(), Status> {
    message
        .encode(buffer)
        .map_err(|e| Status::internal(format!("failed to encode message: {e}")))
}

/// Compresses already-encoded bytes when an encoding other than identity is chosen.
pub(crate) fn compress(bytes: Bytes, encoding: Option<Encoding>) -> Result<(Bytes, bool), Status> {
    match encoding {
        None | Some(Encoding::Identity) => Ok((bytes, false)),
        Some(encoding) => {
            let mut out = BytesMut::new();
            anygrpc_core::grpc::compress(encoding, &bytes, &mut out).map_err(|e| e.to_status())?;
            Ok((out.freeze(), true))
        }
    }
}

/// Decompresses and decodes a received message, refusing more than `limit` bytes.
pub(crate) fn decode<M: prost::Message + Default>(
    message: &Message,
    limit: usize,
) -> Result<M, Status> {
    let bytes = message.decode(limit)?;
    M::decode(bytes).map_err(|e| Status::internal(format!("failed to decode message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encode_buffer_shares_and_reuses_its_allocation() {
        let mut buf = EncodeBuffer::default();
        let message = String::from("0123456789");
        let (a, _) = buf.encode(&message, None, usize::MAX).expect("encodes");
        let (b, _) = buf.encode(&message, None, usize::MAX).expect("encodes");
        assert_eq!(a, b);
        assert_eq!(a, encode(&message, None, usize::MAX).expect("encodes").0);
        // The second message follows the first in the same allocation.
        assert_eq!(a.as_ptr().wrapping_add(a.len()), b.as_ptr());
        let first = a.as_ptr();
        drop((a, b));
        // Fill the chunk, dropping each message (as the driver does once it has copied it):
        // the message after the chunk is full goes to the start of the same allocation.
        let per_chunk = ENCODE_CHUNK / 12;
        let mut pointers = Vec::new();
        for _ in 0..per_chunk + 1 {
            let (m, _) = buf.encode(&message, None, usize::MAX).expect("encodes");
            pointers.push(m.as_ptr());
        }
        assert!(pointers.contains(&first), "reclaimed: {first:?}");
        assert!(buf.encode(&message, None, 5).is_err(), "limit kept");
    }

    #[test]
    fn a_large_message_is_encoded_into_the_buffer_an_earlier_one_gave_back() {
        let mut buf = EncodeBuffer::default();
        let message = "x".repeat(ENCODE_CHUNK);
        let (a, _) = buf.encode(&message, None, usize::MAX).expect("encodes");
        let (b, _) = buf.encode(&message, None, usize::MAX).expect("encodes");
        assert_ne!(a.as_ptr(), b.as_ptr(), "each in flight has its own");
        assert_eq!(a, encode(&message, None, usize::MAX).expect("encodes").0);
        let first = a.as_ptr();
        drop(a);
        let (c, _) = buf.encode(&message, None, usize::MAX).expect("encodes");
        assert_eq!(c.as_ptr(), first, "written messages give their buffer back");
        assert_eq!(c, b);
        let err = buf.encode(&message, None, 100).expect_err("over the limit");
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
            let (bytes, compressed) = encode(&value, encoding, usize::MAX).unwrap();
            let expect_compressed = matches!(encoding, Some(Encoding::Gzip | Encoding::Deflate));
            assert_eq!(compressed, expect_compressed);
            let message = Message {
                data: bytes,
                encoding: if compressed { encoding } else { None },
            };
            assert_eq!(decode::<String>(&message, 1 << 20).unwrap(), value);
        }
    }

    #[test]
    fn limits_are_resource_exhausted() {
        let value = String::from("0123456789");
        assert_eq!(
            encode(&value, None, 5).unwrap_err().code(),
            anygrpc_core::Code::ResourceExhausted
        );
        let (bytes, _) = encode(&value, None, 100).unwrap();
        let message = Message {
            data: bytes,
            encoding: None,
        };
        assert_eq!(
            decode::<String>(&message, 5).unwrap_err().code(),
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
            decode::<String>(&message, 100).unwrap_err().code(),
            anygrpc_core::Code::Internal
        );
    }
}

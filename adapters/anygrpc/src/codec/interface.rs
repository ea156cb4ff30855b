//! The codec seam: how a call's messages become bytes and back. Prost is the default
//! ([`ProstCodec`]); [`RawCodec`] passes bytes through untouched (proxies); users plug their own
//! (JSON, flatbuffers, ...) by implementing [`Codec`].

use anygrpc_core::Status;
use bytes::{Bytes, BytesMut};

/// How messages of type `T` are encoded into a call's buffers and decoded from received
/// bytes. A codec is a small value (usually a unit struct) cloned into every call of a
/// method; it runs in the call's own task, never in the connection driver.
///
/// Size limits are kept around it: a message whose [`encoded_len`](Codec::encoded_len) (or,
/// when that is unknown, whose encoding) is over the send limit fails with
/// RESOURCE_EXHAUSTED; [`decode`](Codec::decode) only ever sees a message already
/// decompressed and within the receive limit. An error a codec returns ends the call with
/// that status (use INTERNAL for bytes that do not decode, as gRPC does).
///
/// A JSON codec over serde, for example:
///
/// ```
/// use anygrpc::{Codec, Status};
/// use bytes::{BufMut, Bytes, BytesMut};
///
/// #[derive(Debug, Clone, Copy, Default)]
/// struct Json;
///
/// impl Codec<serde_json::Value> for Json {
///     fn encode(&self, item: &serde_json::Value, dst: &mut BytesMut) -> Result<(), Status> {
///         serde_json::to_writer(dst.writer(), item).map_err(|e| Status::internal(e.to_string()))
///     }
///     fn decode(&self, src: Bytes) -> Result<serde_json::Value, Status> {
///         serde_json::from_slice(&src).map_err(|e| Status::internal(e.to_string()))
///     }
/// }
///
/// let mut buffer = BytesMut::new();
/// Json.encode(&serde_json::json!({"a": 1}), &mut buffer).unwrap();
/// assert_eq!(&buffer[..], br#"{"a":1}"#);
/// assert_eq!(Json.decode(buffer.freeze()).unwrap()["a"], 1);
/// ```
///
/// and its use: `channel.unary_unary::<Value, Value>("/pkg.S/M").with_codec(Json)`.
pub trait Codec<T>: Clone + Send + Sync + 'static {
    /// The exact size `encode` will append for `item`, when known without encoding it.
    /// With it, a message over the send limit is refused before it is encoded, and a large
    /// one is encoded straight into a buffer of its size (prost knows it; the default,
    /// `None`, encodes first and checks after).
    fn encoded_len(&self, item: &T) -> Option<usize> {
        let _ = item;
        None
    }

    /// Appends the encoding of `item` to `dst` (which may already hold earlier messages:
    /// append, never clear).
    fn encode(&self, item: &T, dst: &mut BytesMut) -> Result<(), Status>;

    /// `item`'s encoding when it already is one `Bytes` (a raw message), shared without a
    /// copy; `None` (the default) encodes through [`encode`](Codec::encode).
    fn encoded_bytes(&self, item: &T) -> Option<Bytes> {
        let _ = item;
        None
    }

    /// Decodes one message from its bytes (decompressed, within the receive limit).
    fn decode(&self, src: Bytes) -> Result<T, Status>;
}

/// The default codec: protobuf through prost, for every [`Msg`](crate::Msg) (a prost message
/// that is `Default + Send + 'static`). Encodes with one size computation and no allocation
/// per message in a steady stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProstCodec;

impl<T: prost::Message + Default + Send + 'static> Codec<T> for ProstCodec {
    fn encoded_len(&self, item: &T) -> Option<usize> {
        Some(item.encoded_len())
    }

    fn encode(&self, item: &T, dst: &mut BytesMut) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("failed to encode message: {e}")))
    }

    fn decode(&self, src: Bytes) -> Result<T, Status> {
        T::decode(src).map_err(|e| Status::internal(format!("failed to decode message: {e}")))
    }
}

/// Messages as raw `Bytes`, neither encoded nor decoded: what a proxy forwards. Sending
/// shares the bytes (no copy); received messages are handed over as they arrived
/// (decompressed).
///
/// ```no_run
/// # async fn run(channel: anygrpc::Channel) -> Result<(), anygrpc::RpcError> {
/// use anygrpc::RawCodec;
/// use bytes::Bytes;
/// // Any method, its messages already encoded by someone else.
/// let method = channel.unary_unary::<Bytes, Bytes>("/pkg.Service/Method").with_codec(RawCodec);
/// let reply: Bytes = method.call(Bytes::from_static(b"\x0a\x03abc")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawCodec;

impl Codec<Bytes> for RawCodec {
    fn encoded_len(&self, item: &Bytes) -> Option<usize> {
        Some(item.len())
    }

    fn encode(&self, item: &Bytes, dst: &mut BytesMut) -> Result<(), Status> {
        dst.extend_from_slice(item);
        Ok(())
    }

    fn encoded_bytes(&self, item: &Bytes) -> Option<Bytes> {
        Some(item.clone())
    }

    fn decode(&self, src: Bytes) -> Result<Bytes, Status> {
        Ok(src)
    }
}

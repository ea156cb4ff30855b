//! A request or response of any message type, as client interceptors handle them.

use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use anygrpc_core::Status;
use bytes::{Bytes, BytesMut};

use crate::codec::{Codec, ProstCodec};

/// A message value, type-erased.
type Value = Box<dyn Any + Send + Sync>;

/// A message type and the codec its calls use, type-erased: what an [`AnyMsg`] needs to
/// decode its wire form and encode its value.
pub(crate) trait ErasedCodec: Send + Sync + 'static {
    fn message_type(&self) -> TypeId;
    fn type_name(&self) -> &'static str;
    fn decode(&self, bytes: &Bytes) -> Option<Value>;
    fn encode(&self, value: &(dyn Any + Send + Sync)) -> Result<Bytes, Status>;
}

/// Messages of type `T` with the codec `C`.
pub(crate) struct Erased<T, C> {
    codec: C,
    _type: PhantomData<fn() -> T>,
}

impl<T: Send + Sync + 'static, C: Codec<T>> Erased<T, C> {
    /// `T` with `codec`, shared.
    pub(crate) fn shared(codec: C) -> Arc<dyn ErasedCodec> {
        Arc::new(Self {
            codec,
            _type: PhantomData,
        })
    }
}

impl<T: Send + Sync + 'static, C: Codec<T>> ErasedCodec for Erased<T, C> {
    fn message_type(&self) -> TypeId {
        TypeId::of::<T>()
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
    fn decode(&self, bytes: &Bytes) -> Option<Value> {
        self.codec
            .decode(bytes.clone())
            .ok()
            .map(|value| Box::new(value) as Value)
    }
    fn encode(&self, value: &(dyn Any + Send + Sync)) -> Result<Bytes, Status> {
        let Some(value) = value.downcast_ref::<T>() else {
            return Err(Status::internal(
                "a message of another type than its codec's",
            ));
        };
        if let Some(bytes) = self.codec.encoded_bytes(value) {
            return Ok(bytes);
        }
        let mut buffer = BytesMut::new();
        self.codec.encode(value, &mut buffer)?;
        Ok(buffer.freeze())
    }
}

enum Repr {
    Value(Value),
    /// The wire form, decoded the first time it is looked at: an interceptor that only
    /// passes a message on never decodes or re-encodes it.
    Encoded {
        bytes: Bytes,
        decoded: OnceLock<Option<Value>>,
    },
    /// The clone of a value its codec could not encode: sending it fails the same way.
    Unencodable(Status),
}

/// A request or response message of the intercepted method's type, which interceptors of
/// every method share: [`downcast_ref`](Self::downcast_ref) reads it as the type it is,
/// [`AnyMsg::new`] (or [`with_codec`](Self::with_codec) for a method with a codec of its own)
/// makes a replacement, [`to_bytes`](Self::to_bytes) gives its wire form.
///
/// A message the call received (or was given) stays in its wire form until an interceptor
/// looks inside, so passing it on costs nothing. A clone shares that wire form (a value is
/// encoded for it), so an interceptor can send a request again without knowing its type.
///
/// ```
/// use anygrpc::AnyMsg;
///
/// let message = AnyMsg::new(String::from("hello"));
/// assert_eq!(message.downcast_ref::<String>().map(String::as_str), Some("hello"));
/// assert!(message.downcast_ref::<u32>().is_none());
/// let again = message.clone();
/// assert_eq!(message.downcast::<String>().ok().as_deref(), Some("hello"));
/// assert_eq!(again.downcast::<String>().ok().as_deref(), Some("hello"));
/// ```
pub struct AnyMsg {
    repr: Repr,
    codec: Arc<dyn ErasedCodec>,
}

impl AnyMsg {
    /// Wraps a protobuf `message` (the default codec).
    pub fn new<M: prost::Message + Default + Send + Sync + 'static>(message: M) -> Self {
        Self::with_codec(message, ProstCodec)
    }

    /// Wraps `message` of a method whose messages travel with `codec`.
    pub fn with_codec<T: Send + Sync + 'static, C: Codec<T>>(message: T, codec: C) -> Self {
        Self {
            repr: Repr::Value(Box::new(message)),
            codec: Erased::<T, C>::shared(codec),
        }
    }

    /// The wire form `bytes` of a message of `codec`'s type, decoded when first looked at.
    pub(crate) fn from_wire(bytes: Bytes, codec: Arc<dyn ErasedCodec>) -> Self {
        Self {
            repr: Repr::Encoded {
                bytes,
                decoded: OnceLock::new(),
            },
            codec,
        }
    }

    fn value(&self) -> Option<&(dyn Any + Send + Sync)> {
        match &self.repr {
            Repr::Value(value) => Some(value.as_ref()),
            Repr::Encoded { bytes, decoded } => {
                decoded.get_or_init(|| self.codec.decode(bytes)).as_deref()
            }
            Repr::Unencodable(_) => None,
        }
    }

    /// `true` when the message is a `T`.
    pub fn is<T: 'static>(&self) -> bool {
        self.codec.message_type() == TypeId::of::<T>()
    }

    /// The message's type name, for logs.
    pub fn type_name(&self) -> &'static str {
        self.codec.type_name()
    }

    /// The message as a `T`; `None` when it is of another type (or its wire form does not
    /// decode).
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        if !self.is::<T>() {
            return None;
        }
        self.value()?.downcast_ref()
    }

    /// The message as a `T`, to change in place; `None` when it is of another type.
    pub fn downcast_mut<T: 'static>(&mut self) -> Option<&mut T> {
        if !self.is::<T>() {
            return None;
        }
        if let Repr::Encoded { bytes, decoded } = &mut self.repr {
            let value = match decoded.take() {
                Some(Some(value)) => Some(value),
                _ => self.codec.decode(bytes),
            }?;
            self.repr = Repr::Value(value);
        }
        match &mut self.repr {
            Repr::Value(value) => value.downcast_mut(),
            Repr::Encoded { .. } | Repr::Unencodable(_) => None,
        }
    }

    /// The message as a `T`, or itself back when it is of another type (or does not decode).
    pub fn downcast<T: 'static>(self) -> Result<T, Self> {
        if !self.is::<T>() {
            return Err(self);
        }
        let Self { repr, codec } = self;
        let value = match repr {
            Repr::Value(value) => value,
            Repr::Encoded { bytes, decoded } => {
                let decoded = decoded
                    .into_inner()
                    .flatten()
                    .or_else(|| codec.decode(&bytes));
                match decoded {
                    Some(value) => value,
                    None => {
                        return Err(Self::from_wire(bytes, codec));
                    }
                }
            }
            Repr::Unencodable(status) => {
                return Err(Self {
                    repr: Repr::Unencodable(status),
                    codec,
                });
            }
        };
        value
            .downcast::<T>()
            .map(|value| *value)
            .map_err(|value| Self {
                repr: Repr::Value(value),
                codec,
            })
    }

    /// The message as the method's type `T`, or the status a call whose interceptor gave it
    /// another type ends with.
    pub(crate) fn into_typed<T: 'static>(self) -> Result<T, Status> {
        self.downcast::<T>().map_err(|other| {
            Status::internal(format!(
                "an interceptor gave a {} where a {} was expected (or it does not decode)",
                other.type_name(),
                std::any::type_name::<T>()
            ))
        })
    }

    /// The message's wire form: the bytes it arrived as, or its encoding by its codec (an
    /// `Err` when the codec cannot encode the value).
    pub fn to_bytes(&self) -> Result<Bytes, Status> {
        match &self.repr {
            Repr::Value(value) => self.codec.encode(value.as_ref()),
            Repr::Encoded { bytes, .. } => Ok(bytes.clone()),
            Repr::Unencodable(status) => Err(status.clone()),
        }
    }
}

impl Clone for AnyMsg {
    fn clone(&self) -> Self {
        match self.to_bytes() {
            Ok(bytes) => Self::from_wire(bytes, self.codec.clone()),
            Err(status) => Self {
                repr: Repr::Unencodable(status),
                codec: self.codec.clone(),
            },
        }
    }
}

impl fmt::Debug for AnyMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("AnyMsg");
        debug.field("type", &self.type_name());
        if let Repr::Encoded { bytes, .. } = &self.repr {
            debug.field("encoded_len", &bytes.len());
        }
        debug.finish()
    }
}

/// The codec of a call whose messages are [`AnyMsg`]s (the call a continuation starts): they
/// go out in their own wire form, and responses come back in theirs, typed by `responses`.
#[derive(Clone)]
pub(crate) struct AnyCodec {
    pub(crate) responses: Arc<dyn ErasedCodec>,
}

impl Codec<AnyMsg> for AnyCodec {
    fn encode(&self, item: &AnyMsg, dst: &mut BytesMut) -> Result<(), Status> {
        dst.extend_from_slice(&item.to_bytes()?);
        Ok(())
    }
    fn encoded_bytes(&self, item: &AnyMsg) -> Option<Bytes> {
        item.to_bytes().ok()
    }
    fn decode(&self, src: Bytes) -> Result<AnyMsg, Status> {
        Ok(AnyMsg::from_wire(src, self.responses.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(text: &str) -> Bytes {
        Bytes::from(prost::Message::encode_to_vec(&String::from(text)))
    }

    fn strings() -> Arc<dyn ErasedCodec> {
        Erased::<String, ProstCodec>::shared(ProstCodec)
    }

    #[test]
    fn a_received_message_is_decoded_only_when_looked_at() {
        let message = AnyMsg::from_wire(wire("hi"), strings());
        assert!(message.is::<String>());
        assert!(!message.is::<u64>());
        assert_eq!(
            message.to_bytes().expect("encodes"),
            wire("hi"),
            "passed on as it came"
        );
        assert_eq!(
            message.downcast_ref::<String>().map(String::as_str),
            Some("hi")
        );
        assert!(message.type_name().contains("String"));

        let mut message = AnyMsg::from_wire(wire("hi"), strings());
        message
            .downcast_mut::<String>()
            .expect("a String")
            .push('!');
        assert_eq!(
            message.to_bytes().expect("encodes"),
            wire("hi!"),
            "changed: encoded anew"
        );
        assert_eq!(message.into_typed::<String>().as_deref(), Ok("hi!"));
    }

    #[test]
    fn a_clone_is_the_same_message_of_the_same_type() {
        let value = AnyMsg::new(String::from("again"));
        let copy = value.clone();
        assert!(copy.is::<String>());
        assert_eq!(
            copy.to_bytes().expect("encodes"),
            value.to_bytes().expect("encodes")
        );
        assert_eq!(copy.downcast::<String>().ok().as_deref(), Some("again"));
        let received = AnyMsg::from_wire(wire("again"), strings());
        let copy = received.clone();
        assert_eq!(
            copy.to_bytes().expect("encodes").as_ptr(),
            received.to_bytes().expect("encodes").as_ptr(),
            "shared"
        );
    }

    #[test]
    fn a_message_of_another_type_is_internal() {
        let status = AnyMsg::new(7u32).into_typed::<String>().unwrap_err();
        assert_eq!(status.code(), anygrpc_core::Code::Internal);
        assert!(AnyMsg::new(7u32).downcast::<String>().is_err());
        assert_eq!(AnyMsg::new(7u32).downcast::<u32>().ok(), Some(7));
        let garbage = AnyMsg::from_wire(Bytes::from_static(&[0xff, 0xff]), strings());
        assert!(garbage.downcast_ref::<String>().is_none());
        assert!(garbage.into_typed::<String>().is_err());
    }

    #[test]
    fn a_message_of_a_codec_of_its_own_keeps_it() {
        let raw = AnyMsg::with_codec(Bytes::from_static(b"\x01\x02"), crate::codec::RawCodec);
        assert_eq!(
            raw.to_bytes().expect("encodes"),
            Bytes::from_static(b"\x01\x02")
        );
        assert!(raw.is::<Bytes>());
    }
}

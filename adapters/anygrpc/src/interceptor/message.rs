//! A request or response of any message type, as client interceptors handle them.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::OnceLock;

use anygrpc_core::Status;
use bytes::Bytes;

use crate::client::Msg;

/// What `AnyMsg` needs of a message, object-safe.
trait ErasedMsg: Any + Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    fn encode(&self) -> Bytes;
    /// Decodes the wire form of a message of this type.
    fn decoder(&self) -> fn(&Bytes) -> Option<Box<dyn ErasedMsg>>;
}

impl<M: Msg> ErasedMsg for M {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn encode(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }
    fn decoder(&self) -> fn(&Bytes) -> Option<Box<dyn ErasedMsg>> {
        decode_as::<M>
    }
}

/// Decodes the bytes of an `M` into a boxed `M`.
fn decode_as<M: Msg>(bytes: &Bytes) -> Option<Box<dyn ErasedMsg>> {
    M::decode(bytes.clone())
        .ok()
        .map(|m| Box::new(m) as Box<dyn ErasedMsg>)
}

enum Repr {
    Value(Box<dyn ErasedMsg>, &'static str),
    /// The wire form of a message of type `type_id`, decoded the first time it is looked
    /// at: an interceptor that only passes a message on never decodes or re-encodes it.
    Encoded {
        bytes: Bytes,
        type_id: TypeId,
        type_name: &'static str,
        decode: fn(&Bytes) -> Option<Box<dyn ErasedMsg>>,
        decoded: OnceLock<Option<Box<dyn ErasedMsg>>>,
    },
}

/// A request or response message of the intercepted method's type, which interceptors of
/// every method share: [`downcast_ref`](Self::downcast_ref) reads it as the type it is,
/// [`AnyMsg::new`] makes a replacement, [`to_bytes`](Self::to_bytes) gives its wire form.
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
/// assert_eq!(message.downcast::<String>().ok().as_deref(), Some("hello"));
/// ```
pub struct AnyMsg(Repr);

impl AnyMsg {
    /// Wraps `message`.
    pub fn new<M: Msg>(message: M) -> Self {
        Self(Repr::Value(Box::new(message), std::any::type_name::<M>()))
    }

    /// The wire form `bytes` of an `M`, decoded when first looked at.
    pub(crate) fn encoded<M: Msg>(bytes: Bytes) -> Self {
        Self(Repr::Encoded {
            bytes,
            type_id: TypeId::of::<M>(),
            type_name: std::any::type_name::<M>(),
            decode: decode_as::<M>,
            decoded: OnceLock::new(),
        })
    }

    fn decoded(&self) -> Option<&dyn ErasedMsg> {
        match &self.0 {
            Repr::Value(value, _) => Some(value.as_ref()),
            Repr::Encoded {
                bytes,
                decode,
                decoded,
                ..
            } => decoded.get_or_init(|| decode(bytes)).as_deref(),
        }
    }

    /// `true` when the message is an `M`.
    pub fn is<M: Msg>(&self) -> bool {
        match &self.0 {
            Repr::Value(value, _) => value.as_any().is::<M>(),
            Repr::Encoded { type_id, .. } => *type_id == TypeId::of::<M>(),
        }
    }

    /// The message's type name, for logs.
    pub fn type_name(&self) -> &'static str {
        match &self.0 {
            Repr::Value(_, type_name) | Repr::Encoded { type_name, .. } => type_name,
        }
    }

    /// The message as an `M`; `None` when it is of another type (or its wire form does not
    /// decode).
    pub fn downcast_ref<M: Msg>(&self) -> Option<&M> {
        if !self.is::<M>() {
            return None;
        }
        self.decoded()?.as_any().downcast_ref()
    }

    /// The message as an `M`, to change in place; `None` when it is of another type.
    pub fn downcast_mut<M: Msg>(&mut self) -> Option<&mut M> {
        if !self.is::<M>() {
            return None;
        }
        if let Repr::Encoded { bytes, decoded, .. } = &mut self.0 {
            let value = match decoded.take() {
                Some(Some(value)) => Some(value),
                _ => decode_as::<M>(bytes),
            }?;
            self.0 = Repr::Value(value, std::any::type_name::<M>());
        }
        match &mut self.0 {
            Repr::Value(value, _) => value.as_any_mut().downcast_mut(),
            Repr::Encoded { .. } => None,
        }
    }

    /// The message as an `M`, or itself back when it is of another type.
    pub fn downcast<M: Msg>(self) -> Result<M, Self> {
        if !self.is::<M>() {
            return Err(self);
        }
        /// `value` is an `M`: `is::<M>` said so.
        fn unbox<M: Msg>(value: Box<dyn ErasedMsg>) -> M {
            match value.into_any().downcast::<M>() {
                Ok(m) => *m,
                Err(_) => unreachable!("checked by `is::<M>`"),
            }
        }
        match self.0 {
            Repr::Value(value, _) => Ok(unbox(value)),
            Repr::Encoded {
                bytes,
                type_id,
                type_name,
                decode,
                mut decoded,
            } => match decoded.take() {
                Some(Some(value)) => Ok(unbox(value)),
                _ => M::decode(bytes.clone()).map_err(|_| {
                    Self(Repr::Encoded {
                        bytes,
                        type_id,
                        type_name,
                        decode,
                        decoded: OnceLock::new(),
                    })
                }),
            },
        }
    }

    /// The message as the method's type `M`, or the status a call whose interceptor gave it
    /// another type ends with.
    pub(crate) fn into_typed<M: Msg>(self) -> Result<M, Status> {
        self.downcast::<M>().map_err(|other| {
            Status::internal(format!(
                "an interceptor gave a {} where a {} was expected (or it does not decode)",
                other.type_name(),
                std::any::type_name::<M>()
            ))
        })
    }

    /// The message's wire form (protobuf): the bytes it arrived as, or its encoding.
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Value(value, _) => value.encode(),
            Repr::Encoded { bytes, .. } => bytes.clone(),
        }
    }
}

impl Clone for AnyMsg {
    fn clone(&self) -> Self {
        match &self.0 {
            Repr::Value(value, type_name) => Self(Repr::Encoded {
                bytes: value.encode(),
                type_id: value.as_any().type_id(),
                type_name,
                decode: value.decoder(),
                decoded: OnceLock::new(),
            }),
            Repr::Encoded {
                bytes,
                type_id,
                type_name,
                decode,
                ..
            } => Self(Repr::Encoded {
                bytes: bytes.clone(),
                type_id: *type_id,
                type_name,
                decode: *decode,
                decoded: OnceLock::new(),
            }),
        }
    }
}

impl fmt::Debug for AnyMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Value(_, type_name) => f.debug_struct("AnyMsg").field("type", type_name).finish(),
            Repr::Encoded {
                bytes, type_name, ..
            } => f
                .debug_struct("AnyMsg")
                .field("type", type_name)
                .field("encoded_len", &bytes.len())
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_message_is_decoded_only_when_looked_at() {
        let wire = Bytes::from(prost::Message::encode_to_vec(&String::from("hi")));
        let message = AnyMsg::encoded::<String>(wire.clone());
        assert!(message.is::<String>());
        assert!(!message.is::<u64>());
        assert_eq!(message.to_bytes(), wire, "passed on as it came");
        assert_eq!(
            message.downcast_ref::<String>().map(String::as_str),
            Some("hi")
        );
        assert!(message.type_name().contains("String"));

        let mut message = AnyMsg::encoded::<String>(wire);
        message
            .downcast_mut::<String>()
            .expect("a String")
            .push('!');
        assert_eq!(
            message.to_bytes(),
            Bytes::from(prost::Message::encode_to_vec(&String::from("hi!"))),
            "changed: encoded anew"
        );
        assert_eq!(message.into_typed::<String>().as_deref(), Ok("hi!"));
    }

    #[test]
    fn a_clone_is_the_same_message_of_the_same_type() {
        let value = AnyMsg::new(String::from("again"));
        let copy = value.clone();
        assert!(copy.is::<String>());
        assert_eq!(copy.to_bytes(), value.to_bytes());
        assert_eq!(copy.downcast::<String>().ok().as_deref(), Some("again"));
        let wire = AnyMsg::encoded::<String>(value.to_bytes());
        let copy = wire.clone();
        assert_eq!(copy.to_bytes().as_ptr(), wire.to_bytes().as_ptr(), "shared");
        assert_eq!(copy.into_typed::<String>().as_deref(), Ok("again"));
    }

    #[test]
    fn a_message_of_another_type_is_internal() {
        let status = AnyMsg::new(7u32).into_typed::<String>().unwrap_err();
        assert_eq!(status.code(), anygrpc_core::Code::Internal);
        assert!(AnyMsg::new(7u32).downcast::<String>().is_err());
        assert_eq!(AnyMsg::new(7u32).downcast::<u32>().ok(), Some(7));
        let garbage = AnyMsg::encoded::<String>(Bytes::from_static(&[0xff, 0xff]));
        assert!(garbage.downcast_ref::<String>().is_none());
        assert!(garbage.into_typed::<String>().is_err());
    }
}

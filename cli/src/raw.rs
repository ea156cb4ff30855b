//! [`RawMessage`]: a `prost::Message` that carries a message's encoded bytes unchanged, so
//! anygrpc's typed calls can send and receive messages only known at run time (encoded and
//! decoded with prost-reflect's `DynamicMessage`).

use bytes::{Buf, BufMut};
use prost::DecodeError;
use prost::encoding::{
    DecodeContext, WireType, decode_key, decode_varint, encode_key, encode_varint,
};

/// A message held as its encoded protobuf bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawMessage {
    /// The encoded fields, in wire order.
    pub(crate) bytes: Vec<u8>,
}

impl RawMessage {
    /// Wraps already-encoded bytes.
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }
}

impl prost::Message for RawMessage {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.bytes);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        _ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        copy_field(tag, wire_type, buf, &mut self.bytes)
    }

    fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    fn clear(&mut self) {
        self.bytes.clear();
    }
}

/// Re-encodes the key of one field and copies its value from `buf` to `out`.
fn copy_field(
    tag: u32,
    wire_type: WireType,
    buf: &mut impl Buf,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    encode_key(tag, wire_type, out);
    match wire_type {
        WireType::Varint => encode_varint(decode_varint(buf)?, out),
        WireType::SixtyFourBit => copy_exact(buf, 8, out)?,
        WireType::ThirtyTwoBit => copy_exact(buf, 4, out)?,
        WireType::LengthDelimited => {
            let len = decode_varint(buf)?;
            let len = usize::try_from(len).map_err(|_| decode_error("length too large"))?;
            encode_varint(len as u64, out);
            copy_exact(buf, len, out)?;
        }
        WireType::StartGroup => loop {
            let (inner_tag, inner_type) = decode_key(buf)?;
            if inner_type == WireType::EndGroup {
                if inner_tag != tag {
                    return Err(decode_error("unexpected end group tag"));
                }
                encode_key(inner_tag, WireType::EndGroup, out);
                break;
            }
            copy_field(inner_tag, inner_type, buf, out)?;
        },
        WireType::EndGroup => return Err(decode_error("unexpected end group tag")),
    }
    Ok(())
}

/// Copies exactly `len` bytes, or fails when `buf` holds fewer.
fn copy_exact(buf: &mut impl Buf, len: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    if buf.remaining() < len {
        return Err(decode_error("buffer underflow"));
    }
    let start = out.len();
    out.resize(start + len, 0);
    buf.copy_to_slice(&mut out[start..]);
    Ok(())
}

/// A decode error with `reason`. prost has no other public constructor for one (the
/// deprecation only warns that it may become private).
#[allow(deprecated)]
fn decode_error(reason: &'static str) -> DecodeError {
    DecodeError::new(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Every wire type, including a group holding a nested group, survives decode + encode.
    #[test]
    fn round_trip_of_every_wire_type() {
        let mut wire = Vec::new();
        encode_key(1, WireType::Varint, &mut wire);
        encode_varint(300, &mut wire);
        encode_key(2, WireType::SixtyFourBit, &mut wire);
        wire.extend_from_slice(&7u64.to_le_bytes());
        encode_key(3, WireType::ThirtyTwoBit, &mut wire);
        wire.extend_from_slice(&9u32.to_le_bytes());
        encode_key(4, WireType::LengthDelimited, &mut wire);
        encode_varint(3, &mut wire);
        wire.extend_from_slice(b"abc");
        encode_key(5, WireType::StartGroup, &mut wire);
        encode_key(6, WireType::Varint, &mut wire);
        encode_varint(1, &mut wire);
        encode_key(7, WireType::StartGroup, &mut wire);
        encode_key(7, WireType::EndGroup, &mut wire);
        encode_key(5, WireType::EndGroup, &mut wire);
        encode_key(1, WireType::Varint, &mut wire);
        encode_varint(u64::MAX, &mut wire);

        let decoded = RawMessage::decode(wire.as_slice()).expect("decodes");
        assert_eq!(decoded.bytes, wire);
        assert_eq!(decoded.encode_to_vec(), wire);
        assert_eq!(decoded.encoded_len(), wire.len());
    }

    /// Truncated values and mismatched group ends are decode errors, not panics.
    #[test]
    fn bad_input_is_an_error() {
        for bad in [
            &[0x0a, 0x05, b'a'][..], // length 5, one byte
            &[0x11, 0x01, 0x02][..], // fixed64, two bytes
            &[0x2b, 0x34][..],       // group 5 closed as group 6
            &[0x2c][..],             // end group with no start
            &[0x08][..],             // varint missing
        ] {
            assert!(RawMessage::decode(bad).is_err(), "{bad:?} decoded");
        }
    }
}

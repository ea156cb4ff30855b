//! Prefix-coded integers (RFC 7541 §5.1).
//!
//! A value below `2^N - 1` fits in the N-bit prefix of the first byte; otherwise the prefix is all
//! ones and the rest follows in 7-bit groups, least significant first, high bit = "more".

use bytes::{BufMut, BytesMut};

use crate::reader::Reader;

/// At most this many continuation bytes: 5 × 7 = 35 bits cover any `u32`. Longer encodings,
/// including ones padded with zero groups, are refused so a hostile peer cannot make us loop.
const MAX_CONTINUATION_BYTES: usize = 5;

/// A prefix integer could not be decoded: the caller answers COMPRESSION_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntegerError {
    /// The block ended inside the integer.
    Truncated,
    /// The value exceeds `u32::MAX` or uses more than five continuation bytes.
    Overflow,
}

impl IntegerError {
    /// What went wrong, for the COMPRESSION_ERROR reason.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Truncated => "integer truncated at the end of the block (RFC 7541 §5.1)",
            Self::Overflow => "integer larger than 2^32-1 (RFC 7541 §5.1)",
        }
    }
}

/// Decodes an integer whose first byte `first` (already read; its top `8 - prefix_bits` bits are
/// flags) has a `prefix_bits`-bit prefix (1..=8), reading continuation bytes from `r`.
pub(crate) fn decode(first: u8, prefix_bits: u8, r: &mut Reader<'_>) -> Result<u32, IntegerError> {
    let mask = u8::MAX >> (8 - prefix_bits.clamp(1, 8));
    let prefix = first & mask;
    if prefix < mask {
        return Ok(u32::from(prefix));
    }
    // At most 2^8 - 1 + (2^35 - 1): no overflow in u64.
    let mut value = u64::from(mask);
    let mut shift = 0u32;
    for _ in 0..MAX_CONTINUATION_BYTES {
        let b = r.u8().map_err(|_| IntegerError::Truncated)?;
        value += u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return u32::try_from(value).map_err(|_| IntegerError::Overflow);
        }
        shift += 7;
    }
    Err(IntegerError::Overflow)
}

/// Appends `value` with an N-bit prefix (`prefix_bits`, 1..=8); `flags` fills the bits above it.
pub(crate) fn encode(value: usize, prefix_bits: u8, flags: u8, dst: &mut BytesMut) {
    let mask = u8::MAX >> (8 - prefix_bits.clamp(1, 8));
    let max_prefix = usize::from(mask);
    if value < max_prefix {
        dst.put_u8(flags | (value & max_prefix) as u8);
        return;
    }
    dst.put_u8(flags | mask);
    let mut rest = value - max_prefix;
    while rest >= 0x80 {
        dst.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(value: usize, prefix: u8, flags: u8) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode(value, prefix, flags, &mut dst);
        dst.to_vec()
    }

    fn dec(bytes: &[u8], prefix: u8) -> Result<(u32, usize), IntegerError> {
        let mut r = Reader::new(bytes);
        let first = r.u8().map_err(|_| IntegerError::Truncated)?;
        let v = decode(first, prefix, &mut r)?;
        Ok((v, r.remaining()))
    }

    #[test]
    fn rfc_c1_examples() {
        // C.1.1: 10 with a 5-bit prefix.
        assert_eq!(enc(10, 5, 0), [0b0000_1010]);
        assert_eq!(dec(&[0b1110_1010], 5), Ok((10, 0)), "flag bits are ignored");
        // C.1.2: 1337 with a 5-bit prefix.
        assert_eq!(enc(1337, 5, 0), [31, 154, 10]);
        assert_eq!(dec(&[31, 154, 10], 5), Ok((1337, 0)));
        // C.1.3: 42 on a whole octet.
        assert_eq!(enc(42, 8, 0), [42]);
        assert_eq!(dec(&[42], 8), Ok((42, 0)));
    }

    #[test]
    fn boundaries_round_trip() {
        for prefix in 1..=8u8 {
            let max = (1usize << prefix) - 1;
            for v in [
                0,
                1,
                max - 1,
                max,
                max + 1,
                127,
                128,
                255,
                256,
                16_383,
                16_384,
                1 << 21,
            ] {
                let flags = !(u8::MAX >> (8 - prefix)) & 0xa5;
                let bytes = enc(v, prefix, flags);
                assert_eq!(bytes[0] & !(u8::MAX >> (8 - prefix)), flags);
                assert_eq!(
                    dec(&bytes, prefix),
                    Ok((v as u32, 0)),
                    "{v} on {prefix} bits"
                );
            }
            let top = u32::MAX as usize;
            assert_eq!(dec(&enc(top, prefix, 0), prefix), Ok((u32::MAX, 0)));
        }
    }

    #[test]
    fn one_over_u32_is_rejected() {
        for prefix in 1..=8u8 {
            let bytes = enc(u32::MAX as usize + 1, prefix, 0);
            assert_eq!(dec(&bytes, prefix), Err(IntegerError::Overflow));
        }
    }

    #[test]
    fn too_many_continuation_bytes_are_rejected() {
        // Zero groups with the continuation bit: the value stays small but the encoding is long.
        assert_eq!(dec(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x00], 5), Ok((31, 0)));
        assert_eq!(
            dec(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 5),
            Err(IntegerError::Overflow)
        );
        assert_eq!(dec(&[0xff; 64], 5), Err(IntegerError::Overflow));
    }

    #[test]
    fn truncation_is_reported() {
        assert_eq!(dec(&[0x1f], 5), Err(IntegerError::Truncated));
        assert_eq!(dec(&[0x1f, 0x80], 5), Err(IntegerError::Truncated));
        assert_eq!(
            dec(&[0x1e, 0x80], 5),
            Ok((30, 1)),
            "below the prefix max: one byte"
        );
    }
}

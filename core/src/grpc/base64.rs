//! Standard-alphabet base64 (RFC 4648 §4) for `-bin` metadata values.
//!
//! gRPC sends binary metadata base64-encoded; senders should omit padding and receivers must
//! accept both padded and unpadded values (PROTOCOL-HTTP2.md, "Binary-Header"). Written here
//! because the core depends on nothing beyond `bytes`, `http` and `flate2`.

use core::fmt;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Why a base64 value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Base64Error {
    /// A byte outside the standard alphabet (RFC 4648 §4), or `=` before the end.
    InvalidByte(u8),
    /// Padding is present but the padded length is not a multiple of 4, or there are more
    /// than two `=` (RFC 4648 §3.2).
    BadPadding,
    /// A length of 4n+1 symbols encodes no whole number of bytes (RFC 4648 §4).
    ImpossibleLength,
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidByte(b) => write!(f, "invalid base64 byte {b:#04x}"),
            Self::BadPadding => f.write_str("invalid base64 padding"),
            Self::ImpossibleLength => f.write_str("impossible base64 length"),
        }
    }
}

impl std::error::Error for Base64Error {}

/// Length of the unpadded encoding of `n` bytes.
pub fn encoded_len_unpadded(n: usize) -> usize {
    // n / 3 * 4 never overflows for a length that fits in memory; the remainder adds 0, 2 or 3.
    n / 3 * 4
        + match n % 3 {
            0 => 0,
            1 => 2,
            _ => 3,
        }
}

fn symbol(six_bits: u32) -> u8 {
    // `six_bits & 63` is always a valid index into the 64-entry alphabet.
    ALPHABET[(six_bits & 63) as usize]
}

/// Appends the unpadded standard base64 encoding of `src` to `dst` (the form gRPC senders use).
pub fn encode_unpadded(src: &[u8], dst: &mut Vec<u8>) {
    dst.reserve(encoded_len_unpadded(src.len()));
    let mut chunks = src.chunks_exact(3);
    for c in &mut chunks {
        if let [a, b, c] = *c {
            let n = u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c);
            dst.extend_from_slice(&[symbol(n >> 18), symbol(n >> 12), symbol(n >> 6), symbol(n)]);
        }
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            dst.extend_from_slice(&[symbol(n >> 18), symbol(n >> 12)]);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            dst.extend_from_slice(&[symbol(n >> 18), symbol(n >> 12), symbol(n >> 6)]);
        }
        _ => {}
    }
}

fn value_of(b: u8) -> Result<u32, Base64Error> {
    let v = match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return Err(Base64Error::InvalidByte(b)),
    };
    Ok(u32::from(v))
}

/// Decodes standard base64, padded or unpadded, appending the bytes to `dst`.
///
/// Bits left over in the final symbol are ignored, as Go's and C-core's decoders do. On error
/// `dst` may hold a partial output; callers discard it.
pub fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), Base64Error> {
    let symbols = match src {
        [rest @ .., b'=', b'='] => {
            if src.len() % 4 != 0 {
                return Err(Base64Error::BadPadding);
            }
            rest
        }
        [rest @ .., b'='] => {
            if src.len() % 4 != 0 {
                return Err(Base64Error::BadPadding);
            }
            rest
        }
        _ => src,
    };
    // RFC 4648 §4: a final quantum is 2, 3 or 4 symbols; one symbol carries only 6 bits.
    if symbols.len() % 4 == 1 {
        return Err(Base64Error::ImpossibleLength);
    }
    // A padded input whose unpadded part is a multiple of 4 had a padding-only quantum.
    if symbols.len() != src.len() && symbols.len() % 4 == 0 {
        return Err(Base64Error::BadPadding);
    }
    dst.reserve(symbols.len() / 4 * 3 + 2);
    let mut quads = symbols.chunks_exact(4);
    for q in &mut quads {
        if let [a, b, c, d] = *q {
            let n = value_of(a)? << 18 | value_of(b)? << 12 | value_of(c)? << 6 | value_of(d)?;
            let [_, x, y, z] = n.to_be_bytes();
            dst.extend_from_slice(&[x, y, z]);
        }
    }
    match *quads.remainder() {
        [a, b] => {
            let [_, x, _, _] = (value_of(a)? << 18 | value_of(b)? << 12).to_be_bytes();
            dst.push(x);
        }
        [a, b, c] => {
            let n = value_of(a)? << 18 | value_of(b)? << 12 | value_of(c)? << 6;
            let [_, x, y, _] = n.to_be_bytes();
            dst.extend_from_slice(&[x, y]);
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: [(&str, &str); 7] = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    fn dec(s: &[u8]) -> Result<Vec<u8>, Base64Error> {
        let mut out = Vec::new();
        decode(s, &mut out).map(|()| out)
    }

    #[test]
    fn rfc4648_vectors_padded_and_unpadded() {
        for (plain, padded) in VECTORS {
            let unpadded = padded.trim_end_matches('=');
            let mut enc = Vec::new();
            encode_unpadded(plain.as_bytes(), &mut enc);
            assert_eq!(enc, unpadded.as_bytes());
            assert_eq!(encoded_len_unpadded(plain.len()), unpadded.len());
            assert_eq!(dec(padded.as_bytes()).unwrap(), plain.as_bytes());
            assert_eq!(dec(unpadded.as_bytes()).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn round_trips_every_byte_value_and_length() {
        let all: Vec<u8> = (0..=255u8).collect();
        for len in 0..all.len() {
            let mut enc = Vec::new();
            encode_unpadded(&all[..len], &mut enc);
            assert!(enc.iter().all(|b| ALPHABET.contains(b)));
            assert_eq!(dec(&enc).unwrap(), &all[..len]);
        }
    }

    #[test]
    fn rejects_bad_bytes() {
        assert_eq!(dec(b"Zm9v!"), Err(Base64Error::ImpossibleLength));
        assert_eq!(dec(b"Zm9!"), Err(Base64Error::InvalidByte(b'!')));
        assert_eq!(
            dec(b"Zm-v"),
            Err(Base64Error::InvalidByte(b'-')),
            "url alphabet"
        );
        assert_eq!(dec(b"Zm_v"), Err(Base64Error::InvalidByte(b'_')));
        assert_eq!(dec(b"Zm 9"), Err(Base64Error::InvalidByte(b' ')));
        assert_eq!(dec(b"Zm\n9"), Err(Base64Error::InvalidByte(b'\n')));
        assert_eq!(
            dec(&[b'Z', b'm', 0xc3, b'v']),
            Err(Base64Error::InvalidByte(0xc3))
        );
    }

    #[test]
    fn rejects_bad_padding() {
        assert_eq!(dec(b"Zg="), Err(Base64Error::BadPadding));
        assert_eq!(dec(b"Zg==="), Err(Base64Error::BadPadding));
        assert_eq!(dec(b"Zm8=="), Err(Base64Error::BadPadding));
        assert_eq!(dec(b"===="), Err(Base64Error::InvalidByte(b'=')));
        assert_eq!(dec(b"Zm9v===="), Err(Base64Error::InvalidByte(b'=')));
        assert_eq!(dec(b"Zm9v=="), Err(Base64Error::BadPadding));
        assert_eq!(dec(b"Zg==Zg=="), Err(Base64Error::InvalidByte(b'=')));
        assert_eq!(dec(b"Z=g="), Err(Base64Error::InvalidByte(b'=')));
        assert_eq!(dec(b"Z==="), Err(Base64Error::InvalidByte(b'=')));
    }

    #[test]
    fn rejects_impossible_lengths() {
        assert_eq!(dec(b"Z"), Err(Base64Error::ImpossibleLength));
        assert_eq!(dec(b"Zm9vY"), Err(Base64Error::ImpossibleLength));
    }
}

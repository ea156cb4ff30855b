//! Message compression (doc/compression.md): the `grpc-encoding` algorithms, the
//! `grpc-accept-encoding` set, and bounded codecs.
//!
//! `gzip` is RFC 1952; `deflate` is the zlib format (RFC 1950), as grpc C-core sends it.
//! The codecs use flate2 behind the `compression` feature; without it only `identity` works.

use core::fmt;

use bytes::{Bytes, BytesMut};

use super::status::Status;

/// A message encoding named in `grpc-encoding` / `grpc-accept-encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// zlib-wrapped deflate (RFC 1950), as grpc C-core.
    Deflate,
}

impl Encoding {
    /// Every encoding this crate knows, in the order they appear in header values.
    pub const ALL: [Encoding; 3] = [Encoding::Identity, Encoding::Gzip, Encoding::Deflate];

    /// Parses an exact, case-sensitive encoding name; unknown names give `None`.
    pub fn parse(name: &[u8]) -> Option<Encoding> {
        match name {
            b"identity" => Some(Encoding::Identity),
            b"gzip" => Some(Encoding::Gzip),
            b"deflate" => Some(Encoding::Deflate),
            _ => None,
        }
    }

    /// The name sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }

    /// `true` when this build can compress and decompress with it.
    pub fn is_supported(self) -> bool {
        match self {
            Encoding::Identity => true,
            Encoding::Gzip | Encoding::Deflate => cfg!(feature = "compression"),
        }
    }

    fn bit(self) -> u8 {
        match self {
            Encoding::Identity => 1,
            Encoding::Gzip => 2,
            Encoding::Deflate => 4,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of encodings, as carried by `grpc-accept-encoding`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EncodingSet(u8);

impl EncodingSet {
    /// No encodings.
    pub const EMPTY: EncodingSet = EncodingSet(0);

    /// The encodings this build supports (identity, plus gzip and deflate with the
    /// `compression` feature).
    pub fn supported() -> EncodingSet {
        Encoding::ALL
            .into_iter()
            .filter(|e| e.is_supported())
            .fold(EncodingSet::EMPTY, EncodingSet::with)
    }

    /// Parses a `grpc-accept-encoding` value: comma-separated names, spaces and tabs around
    /// them tolerated, unknown names ignored.
    pub fn parse_accept(value: &[u8]) -> EncodingSet {
        value
            .split(|&b| b == b',')
            .filter_map(|name| Encoding::parse(name.trim_ascii()))
            .fold(EncodingSet::EMPTY, EncodingSet::with)
    }

    /// The set with `e` added.
    pub fn with(self, e: Encoding) -> EncodingSet {
        EncodingSet(self.0 | e.bit())
    }

    /// Adds `e`.
    pub fn insert(&mut self, e: Encoding) {
        *self = self.with(e);
    }

    /// The union of two sets (for a header split over several fields).
    pub fn union(self, other: EncodingSet) -> EncodingSet {
        EncodingSet(self.0 | other.0)
    }

    /// `true` when `e` is in the set.
    pub fn contains(self, e: Encoding) -> bool {
        self.0 & e.bit() != 0
    }

    /// `true` when the set is empty (send no `grpc-accept-encoding` then).
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members in `identity, gzip, deflate` order.
    pub fn iter(self) -> impl Iterator<Item = Encoding> {
        Encoding::ALL.into_iter().filter(move |e| self.contains(*e))
    }

    /// The header value, e.g. `"identity,gzip,deflate"`; empty for the empty set. Static, so
    /// writing the header never allocates.
    pub fn to_header_value(self) -> &'static str {
        const VALUES: [&str; 8] = [
            "",
            "identity",
            "gzip",
            "identity,gzip",
            "deflate",
            "identity,deflate",
            "gzip,deflate",
            "identity,gzip,deflate",
        ];
        VALUES.get(usize::from(self.0 & 7)).copied().unwrap_or("")
    }
}

impl fmt::Debug for EncodingSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A message could not be compressed or decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompressionError {
    /// This build has no codec for the encoding (feature `compression` off).
    Unsupported(Encoding),
    /// The compressed data is corrupt or truncated.
    Corrupt(Encoding),
    /// The decompressed message would exceed `limit` bytes (a decompression bomb stops here).
    TooLarge {
        /// The configured maximum message size.
        limit: usize,
    },
}

impl CompressionError {
    /// The status the call ends with: UNIMPLEMENTED for an unsupported encoding
    /// (doc/compression.md), INTERNAL for corrupt data, RESOURCE_EXHAUSTED when too large.
    pub fn to_status(&self) -> Status {
        match *self {
            Self::Unsupported(e) => {
                Status::unimplemented(format!("message compression {e} is not supported"))
            }
            Self::Corrupt(e) => Status::internal(format!("failed to decompress {e} message")),
            Self::TooLarge { limit } => Status::resource_exhausted(format!(
                "decompressed message larger than max ({limit})"
            )),
        }
    }
}

impl fmt::Display for CompressionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported(e) => write!(f, "compression {e} not supported"),
            Self::Corrupt(e) => write!(f, "corrupt {e} data"),
            Self::TooLarge { limit } => write!(f, "decompressed message exceeds {limit} bytes"),
        }
    }
}

impl std::error::Error for CompressionError {}

/// Appends `data` compressed with `enc` to `dst`.
pub fn compress(enc: Encoding, data: &[u8], dst: &mut BytesMut) -> Result<(), CompressionError> {
    match enc {
        Encoding::Identity => {
            dst.extend_from_slice(data);
            Ok(())
        }
        #[cfg(feature = "compression")]
        Encoding::Gzip | Encoding::Deflate => codec::compress(enc, data, dst),
        #[cfg(not(feature = "compression"))]
        Encoding::Gzip | Encoding::Deflate => Err(CompressionError::Unsupported(enc)),
    }
}

/// Decompresses `data` with `enc`, failing with [`CompressionError::TooLarge`] as soon as
/// the output passes `limit` bytes; never holds more than `limit + 1` output bytes.
pub fn decompress(enc: Encoding, data: &[u8], limit: usize) -> Result<Bytes, CompressionError> {
    match enc {
        Encoding::Identity => {
            if data.len() > limit {
                return Err(CompressionError::TooLarge { limit });
            }
            Ok(Bytes::copy_from_slice(data))
        }
        #[cfg(feature = "compression")]
        Encoding::Gzip | Encoding::Deflate => codec::decompress(enc, data, limit),
        #[cfg(not(feature = "compression"))]
        Encoding::Gzip | Encoding::Deflate => Err(CompressionError::Unsupported(enc)),
    }
}

#[cfg(feature = "compression")]
mod codec {
    use std::io::{Read, Write};

    use bytes::{BufMut, Bytes, BytesMut};
    use flate2::Compression;
    use flate2::bufread::{GzDecoder, ZlibDecoder};
    use flate2::write::{GzEncoder, ZlibEncoder};

    use super::{CompressionError, Encoding};

    /// First output allocation; grown by doubling, capped at `limit + 1`.
    const INITIAL_OUTPUT: usize = 8 * 1024;

    pub(super) fn compress(
        enc: Encoding,
        data: &[u8],
        dst: &mut BytesMut,
    ) -> Result<(), CompressionError> {
        // Writing into a BytesMut cannot fail; an error here would be a flate2 bug.
        let failed = |_| CompressionError::Corrupt(enc);
        let writer = dst.writer();
        match enc {
            Encoding::Gzip => {
                let mut e = GzEncoder::new(writer, Compression::default());
                e.write_all(data).map_err(failed)?;
                e.finish().map_err(failed)?;
            }
            _ => {
                let mut e = ZlibEncoder::new(writer, Compression::default());
                e.write_all(data).map_err(failed)?;
                e.finish().map_err(failed)?;
            }
        }
        Ok(())
    }

    /// The `bufread` decoders read straight from the input slice: no extra input buffer.
    pub(super) fn decompress(
        enc: Encoding,
        data: &[u8],
        limit: usize,
    ) -> Result<Bytes, CompressionError> {
        match enc {
            Encoding::Gzip => read_bounded(GzDecoder::new(data), enc, limit),
            _ => read_bounded(ZlibDecoder::new(data), enc, limit),
        }
    }

    /// Reads `r` to its end into a buffer that never grows past `limit + 1` bytes; reaching
    /// `limit + 1` means the message is too large.
    fn read_bounded(
        mut r: impl Read,
        enc: Encoding,
        limit: usize,
    ) -> Result<Bytes, CompressionError> {
        let cap = limit.saturating_add(1);
        let mut out = vec![0u8; INITIAL_OUTPUT.min(cap)];
        let mut filled = 0;
        loop {
            if filled == out.len() {
                if out.len() >= cap {
                    return Err(CompressionError::TooLarge { limit });
                }
                let grown = out.len().saturating_mul(2).min(cap);
                out.resize(grown, 0);
            }
            let n = match r.read(out.get_mut(filled..).unwrap_or(&mut [])) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(CompressionError::Corrupt(enc)),
            };
            filled += n;
        }
        if filled > limit {
            return Err(CompressionError::TooLarge { limit });
        }
        out.truncate(filled);
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_names() {
        for e in Encoding::ALL {
            assert_eq!(Encoding::parse(e.as_str().as_bytes()), Some(e));
        }
        assert_eq!(Encoding::parse(b"GZIP"), None, "case-sensitive");
        assert_eq!(Encoding::parse(b"snappy"), None);
        assert_eq!(Encoding::parse(b""), None);
        assert_eq!(Encoding::parse(b" gzip"), None);
    }

    #[test]
    fn accept_set_parsing_and_header_value() {
        let s = EncodingSet::parse_accept(b"gzip, snappy ,deflate,,Gzip");
        assert!(s.contains(Encoding::Gzip) && s.contains(Encoding::Deflate));
        assert!(!s.contains(Encoding::Identity));
        assert_eq!(s.to_header_value(), "gzip,deflate");
        assert!(EncodingSet::parse_accept(b"").is_empty());
        assert_eq!(EncodingSet::EMPTY.to_header_value(), "");
        // Every set survives its own header value.
        for bits in 0..8u8 {
            let set = Encoding::ALL
                .into_iter()
                .filter(|e| bits & e.bit() != 0)
                .fold(EncodingSet::EMPTY, EncodingSet::with);
            assert_eq!(
                EncodingSet::parse_accept(set.to_header_value().as_bytes()),
                set
            );
            assert_eq!(set.iter().count(), bits.count_ones() as usize);
        }
        let mut s = EncodingSet::EMPTY;
        s.insert(Encoding::Identity);
        assert_eq!(
            s.union(EncodingSet::EMPTY.with(Encoding::Gzip))
                .to_header_value(),
            "identity,gzip"
        );
        assert!(EncodingSet::supported().contains(Encoding::Identity));
    }

    #[test]
    fn identity_is_bounded_too() {
        let mut dst = BytesMut::new();
        compress(Encoding::Identity, b"abc", &mut dst).unwrap();
        assert_eq!(&dst[..], b"abc");
        assert_eq!(
            decompress(Encoding::Identity, b"abc", 3).unwrap(),
            &b"abc"[..]
        );
        assert_eq!(
            decompress(Encoding::Identity, b"abcd", 3),
            Err(CompressionError::TooLarge { limit: 3 })
        );
    }

    #[cfg(feature = "compression")]
    #[test]
    fn gzip_and_deflate_round_trip_and_formats() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        for enc in [Encoding::Gzip, Encoding::Deflate] {
            let mut dst = BytesMut::new();
            compress(enc, &data, &mut dst).unwrap();
            assert!(dst.len() < data.len());
            match enc {
                // RFC 1952 §2.3.1: ID1 ID2 CM.
                Encoding::Gzip => assert_eq!(&dst[..3], &[0x1f, 0x8b, 8]),
                // RFC 1950 §2.2: CM = 8, (CMF*256 + FLG) % 31 == 0.
                _ => {
                    assert_eq!(dst[0] & 0x0f, 8);
                    assert_eq!((u16::from(dst[0]) * 256 + u16::from(dst[1])) % 31, 0);
                }
            }
            assert_eq!(decompress(enc, &dst, data.len()).unwrap(), data);
            assert_eq!(
                decompress(enc, &dst, data.len() - 1),
                Err(CompressionError::TooLarge {
                    limit: data.len() - 1
                }),
                "one byte over the limit"
            );
            let mut empty = BytesMut::new();
            compress(enc, b"", &mut empty).unwrap();
            assert_eq!(decompress(enc, &empty, 0).unwrap(), Bytes::new());
        }
    }

    #[cfg(feature = "compression")]
    #[test]
    fn corrupt_input_is_an_error() {
        for enc in [Encoding::Gzip, Encoding::Deflate] {
            assert_eq!(
                decompress(enc, b"definitely not compressed", 100),
                Err(CompressionError::Corrupt(enc))
            );
            let mut dst = BytesMut::new();
            compress(enc, &[7u8; 1000], &mut dst).unwrap();
            let truncated = &dst[..dst.len() / 2];
            assert_eq!(
                decompress(enc, truncated, 2000),
                Err(CompressionError::Corrupt(enc))
            );
            assert_eq!(
                CompressionError::Corrupt(enc).to_status().code(),
                super::super::Code::Internal
            );
        }
        assert_eq!(
            CompressionError::TooLarge { limit: 1 }.to_status().code(),
            super::super::Code::ResourceExhausted
        );
    }

    #[cfg(feature = "compression")]
    #[test]
    fn decompression_bomb_is_bounded() {
        // 16 MiB of zeros compresses to about 16 KiB: a 1000:1 bomb.
        let zeros = vec![0u8; 16 << 20];
        for enc in [Encoding::Gzip, Encoding::Deflate] {
            let mut bomb = BytesMut::new();
            compress(enc, &zeros, &mut bomb).unwrap();
            assert!(bomb.len() < 64 << 10);
            let limit = 1 << 20;
            assert_eq!(
                decompress(enc, &bomb, limit),
                Err(CompressionError::TooLarge { limit })
            );
        }
    }

    #[cfg(not(feature = "compression"))]
    #[test]
    fn unsupported_without_feature() {
        let mut dst = BytesMut::new();
        for enc in [Encoding::Gzip, Encoding::Deflate] {
            assert_eq!(
                compress(enc, b"x", &mut dst),
                Err(CompressionError::Unsupported(enc))
            );
            assert_eq!(
                decompress(enc, b"x", 10),
                Err(CompressionError::Unsupported(enc))
            );
            assert!(!enc.is_supported());
        }
    }
}

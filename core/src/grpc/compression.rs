//! Message compression (doc/compression.md): the `grpc-encoding` algorithms, the
//! `grpc-accept-encoding` set, and bounded codecs.
//!
//! `gzip` is RFC 1952; `deflate` is the zlib format (RFC 1950), as grpc C-core sends it;
//! `zstd` is RFC 8878, named as grpc-go's and grpc-java's zstd codecs name it. gzip and deflate
//! use flate2 behind the `compression` feature, zstd the zstd crate behind the `zstd` feature;
//! without them only `identity` works. Every decoder stops at the caller's size limit.

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
    /// Zstandard (RFC 8878), as grpc-go's and grpc-java's zstd codecs (feature `zstd`).
    Zstd,
}

impl Encoding {
    /// Every encoding this crate knows, in the order they appear in header values.
    pub const ALL: [Encoding; 4] = [
        Encoding::Identity,
        Encoding::Gzip,
        Encoding::Deflate,
        Encoding::Zstd,
    ];

    /// Parses an exact, case-sensitive encoding name; unknown names give `None`.
    pub fn parse(name: &[u8]) -> Option<Encoding> {
        match name {
            b"identity" => Some(Encoding::Identity),
            b"gzip" => Some(Encoding::Gzip),
            b"deflate" => Some(Encoding::Deflate),
            b"zstd" => Some(Encoding::Zstd),
            _ => None,
        }
    }

    /// The name sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Zstd => "zstd",
        }
    }

    /// `true` when this build can compress and decompress with it.
    pub fn is_supported(self) -> bool {
        match self {
            Encoding::Identity => true,
            Encoding::Gzip | Encoding::Deflate => cfg!(feature = "compression"),
            Encoding::Zstd => cfg!(feature = "zstd"),
        }
    }

    fn bit(self) -> u8 {
        match self {
            Encoding::Identity => 1,
            Encoding::Gzip => 2,
            Encoding::Deflate => 4,
            Encoding::Zstd => 8,
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
    /// `compression` feature, plus zstd with the `zstd` feature).
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

    /// The members in `identity, gzip, deflate, zstd` order.
    pub fn iter(self) -> impl Iterator<Item = Encoding> {
        Encoding::ALL.into_iter().filter(move |e| self.contains(*e))
    }

    /// The header value, e.g. `"identity,gzip,deflate"`; empty for the empty set. Static, so
    /// writing the header never allocates.
    pub fn to_header_value(self) -> &'static str {
        const VALUES: [&str; 16] = [
            "",
            "identity",
            "gzip",
            "identity,gzip",
            "deflate",
            "identity,deflate",
            "gzip,deflate",
            "identity,gzip,deflate",
            "zstd",
            "identity,zstd",
            "gzip,zstd",
            "identity,gzip,zstd",
            "deflate,zstd",
            "identity,deflate,zstd",
            "gzip,deflate,zstd",
            "identity,gzip,deflate,zstd",
        ];
        VALUES.get(usize::from(self.0 & 15)).copied().unwrap_or("")
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

/// How hard a compressor works: the same four choices for every encoding, mapped to each
/// codec's own scale (gzip and deflate: 0 to 9, default 6; zstd: its range, default 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CompressionLevel {
    /// The fastest level that still compresses (1 for every codec).
    Fastest,
    /// The codec's own default (gzip/deflate 6, zstd 3).
    #[default]
    Default,
    /// The smallest output at a cost still fit for messages: 9 for gzip/deflate, 19 for zstd
    /// (its "ultra" levels past 19 need windows receivers may refuse).
    Best,
    /// A codec-specific level, clamped to the codec's range (gzip/deflate 0..=9; zstd's range
    /// includes its negative "fast" levels).
    Precise(i32),
}

/// An encoding and the level to compress with: what a channel, a call or a server response
/// is compressed with. An [`Encoding`] alone converts to it at the default level.
///
/// ```
/// use anygrpc_core::grpc::{Compression, CompressionLevel, Encoding};
/// let fast = Compression::new(Encoding::Gzip).with_level(CompressionLevel::Fastest);
/// assert_eq!(fast.encoding, Encoding::Gzip);
/// assert_eq!(Compression::from(Encoding::Gzip).level, CompressionLevel::Default);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Compression {
    /// The algorithm, sent as `grpc-encoding`.
    pub encoding: Encoding,
    /// How hard it works; not sent (the receiver needs only the encoding).
    pub level: CompressionLevel,
}

impl Compression {
    /// `encoding` at its default level.
    pub const fn new(encoding: Encoding) -> Self {
        Self {
            encoding,
            level: CompressionLevel::Default,
        }
    }

    /// The same encoding at `level`.
    pub const fn with_level(self, level: CompressionLevel) -> Self {
        Self { level, ..self }
    }

    /// `None` for identity (nothing to compress), else this compression.
    pub fn non_identity(self) -> Option<Self> {
        (self.encoding != Encoding::Identity).then_some(self)
    }
}

impl From<Encoding> for Compression {
    fn from(encoding: Encoding) -> Self {
        Self::new(encoding)
    }
}

/// Appends `data` compressed as `compression` says (an [`Encoding`] alone: its default
/// level) to `dst`.
pub fn compress(
    compression: impl Into<Compression>,
    data: &[u8],
    dst: &mut BytesMut,
) -> Result<(), CompressionError> {
    let Compression { encoding, level } = compression.into();
    match encoding {
        Encoding::Identity => {
            dst.extend_from_slice(data);
            Ok(())
        }
        #[cfg(feature = "compression")]
        Encoding::Gzip | Encoding::Deflate => flate::compress(encoding, level, data, dst),
        #[cfg(not(feature = "compression"))]
        Encoding::Gzip | Encoding::Deflate => {
            let _ = level;
            Err(CompressionError::Unsupported(encoding))
        }
        #[cfg(feature = "zstd")]
        Encoding::Zstd => zstd_codec::compress(level, data, dst),
        #[cfg(not(feature = "zstd"))]
        Encoding::Zstd => Err(CompressionError::Unsupported(encoding)),
    }
}

/// Decompresses `data` with `enc`, failing with [`CompressionError::TooLarge`] as soon as
/// the output passes `limit` bytes; never holds more than `limit + 1` output bytes (zstd's
/// decoder also holds its window: at most the larger of 8 MiB and `limit` rounded up to a
/// power of two; a frame asking for more is [`CompressionError::Corrupt`]).
pub fn decompress(enc: Encoding, data: &[u8], limit: usize) -> Result<Bytes, CompressionError> {
    match enc {
        Encoding::Identity => {
            if data.len() > limit {
                return Err(CompressionError::TooLarge { limit });
            }
            Ok(Bytes::copy_from_slice(data))
        }
        #[cfg(feature = "compression")]
        Encoding::Gzip | Encoding::Deflate => flate::decompress(enc, data, limit),
        #[cfg(not(feature = "compression"))]
        Encoding::Gzip | Encoding::Deflate => Err(CompressionError::Unsupported(enc)),
        #[cfg(feature = "zstd")]
        Encoding::Zstd => zstd_codec::decompress(data, limit),
        #[cfg(not(feature = "zstd"))]
        Encoding::Zstd => Err(CompressionError::Unsupported(enc)),
    }
}

#[cfg(any(feature = "compression", feature = "zstd"))]
mod bounded;
#[cfg(feature = "compression")]
mod flate;
#[cfg(feature = "zstd")]
mod zstd_codec;

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
        for bits in 0..16u8 {
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

    /// The encodings this build compresses with.
    fn codecs() -> Vec<Encoding> {
        Encoding::ALL
            .into_iter()
            .filter(|e| *e != Encoding::Identity && e.is_supported())
            .collect()
    }

    #[test]
    fn every_codec_round_trips_at_every_level() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        for enc in codecs() {
            for level in [
                CompressionLevel::Fastest,
                CompressionLevel::Default,
                CompressionLevel::Best,
                CompressionLevel::Precise(2),
                CompressionLevel::Precise(-1),
                CompressionLevel::Precise(99),
            ] {
                let mut dst = BytesMut::from(&b"kept"[..]);
                compress(Compression::new(enc).with_level(level), &data, &mut dst).unwrap();
                assert_eq!(&dst[..4], b"kept", "{enc} appends");
                // gzip and deflate clamp -1 to level 0, which stores.
                let stores = level == CompressionLevel::Precise(-1) && enc != Encoding::Zstd;
                assert_eq!(dst.len() < data.len(), !stores, "{enc} {level:?}");
                assert_eq!(decompress(enc, &dst[4..], data.len()).unwrap(), data);
            }
        }
    }

    #[test]
    fn a_higher_level_compresses_smaller() {
        // Text-like data with long-range repeats: the levels differ on it.
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| b"abcdefghij"[((i * 7 + i / 13) % 10) as usize])
            .collect();
        for enc in codecs() {
            let size = |level| {
                let mut dst = BytesMut::new();
                compress(Compression::new(enc).with_level(level), &data, &mut dst).unwrap();
                dst.len()
            };
            let (fastest, best) = (
                size(CompressionLevel::Fastest),
                size(CompressionLevel::Best),
            );
            assert!(best < fastest, "{enc}: best {best} < fastest {fastest}");
        }
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

    #[test]
    fn decompression_bomb_is_bounded() {
        // 16 MiB of zeros compresses to about 16 KiB with flate, to less with zstd: a bomb.
        let zeros = vec![0u8; 16 << 20];
        for enc in codecs() {
            let mut bomb = BytesMut::new();
            compress(enc, &zeros, &mut bomb).unwrap();
            assert!(bomb.len() < 64 << 10, "{enc}: {}", bomb.len());
            let limit = 1 << 20;
            assert_eq!(
                decompress(enc, &bomb, limit),
                Err(CompressionError::TooLarge { limit })
            );
        }
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_frames_corruption_and_windows() {
        let data = vec![7u8; 10_000];
        let mut dst = BytesMut::new();
        compress(Encoding::Zstd, &data, &mut dst).unwrap();
        // RFC 8878 §3.1.1: the frame's magic number, little-endian.
        assert_eq!(&dst[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(
            decompress(Encoding::Zstd, b"definitely not zstd", 100),
            Err(CompressionError::Corrupt(Encoding::Zstd))
        );
        assert_eq!(
            decompress(Encoding::Zstd, &dst[..dst.len() / 2], 20_000),
            Err(CompressionError::Corrupt(Encoding::Zstd)),
            "truncated"
        );
        assert_eq!(
            decompress(Encoding::Zstd, &dst, 9_999),
            Err(CompressionError::TooLarge { limit: 9_999 }),
            "one byte over the limit"
        );
        // A frame header asking for a 1 GiB window (Window_Descriptor exponent 20, RFC 8878
        // §3.1.1.1.2), no content size: refused before any window is allocated.
        let huge_window = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 0x01, 0x00, 0x00];
        assert_eq!(
            decompress(Encoding::Zstd, &huge_window, 4 << 20),
            Err(CompressionError::Corrupt(Encoding::Zstd))
        );
        // Two frames back to back are one message (as a streaming zstd reader reads them).
        let mut two = dst.clone();
        two.extend_from_slice(&dst);
        assert_eq!(
            decompress(Encoding::Zstd, &two, 20_000).unwrap().len(),
            20_000
        );
    }

    #[cfg(not(feature = "zstd"))]
    #[test]
    fn zstd_is_unsupported_without_its_feature() {
        let mut dst = BytesMut::new();
        assert_eq!(
            compress(Encoding::Zstd, b"x", &mut dst),
            Err(CompressionError::Unsupported(Encoding::Zstd))
        );
        assert_eq!(
            decompress(Encoding::Zstd, b"x", 10),
            Err(CompressionError::Unsupported(Encoding::Zstd))
        );
        assert!(!EncodingSet::supported().contains(Encoding::Zstd));
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

//! gzip (RFC 1952) and zlib-wrapped deflate (RFC 1950) through flate2.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::bufread::{GzDecoder, ZlibDecoder};
use flate2::write::{GzEncoder, ZlibEncoder};

use super::bounded::read_bounded;
use super::{CompressionError, CompressionLevel, Encoding};

/// flate2's level for `level`: 1, 6, 9, or the precise one clamped to 0..=9.
pub(super) fn flate_level(level: CompressionLevel) -> flate2::Compression {
    match level {
        CompressionLevel::Fastest => flate2::Compression::fast(),
        CompressionLevel::Default => flate2::Compression::default(),
        CompressionLevel::Best => flate2::Compression::best(),
        CompressionLevel::Precise(n) => {
            flate2::Compression::new(u32::try_from(n.clamp(0, 9)).unwrap_or(6))
        }
    }
}

pub(super) fn compress(
    enc: Encoding,
    level: CompressionLevel,
    data: &[u8],
    dst: &mut BytesMut,
) -> Result<(), CompressionError> {
    // Writing into a BytesMut cannot fail; an error here would be a flate2 bug.
    let failed = |_| CompressionError::Corrupt(enc);
    let writer = dst.writer();
    let level = flate_level(level);
    match enc {
        Encoding::Gzip => {
            let mut e = GzEncoder::new(writer, level);
            e.write_all(data).map_err(failed)?;
            e.finish().map_err(failed)?;
        }
        _ => {
            let mut e = ZlibEncoder::new(writer, level);
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

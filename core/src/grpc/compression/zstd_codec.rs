//! Zstandard (RFC 8878) through the zstd crate, named `zstd` on the wire as grpc-go's and
//! grpc-java's zstd codecs name it.

use bytes::{Bytes, BytesMut};

use super::bounded::read_bounded;
use super::{CompressionError, CompressionLevel, Encoding};

/// zstd's own default level.
const DEFAULT_LEVEL: i32 = 3;
/// The highest level short of zstd's "ultra" ones, whose windows (up to 128 MiB) other
/// receivers refuse.
const BEST_LEVEL: i32 = 19;
/// The smallest window a decoder accepts whatever the limit: 8 MiB, what level 19 uses on
/// large inputs and grpc-go's zstd encoder's default.
const MIN_WINDOW_LOG: u32 = 23;
/// The largest window a decoder ever accepts: 1 GiB (zstd's own bound on 32-bit is 30).
const MAX_WINDOW_LOG: u32 = 30;

/// zstd's level for `level`, clamped to the range this libzstd supports.
pub(super) fn zstd_level(level: CompressionLevel) -> i32 {
    let range = zstd::compression_level_range();
    let level = match level {
        CompressionLevel::Fastest => 1,
        CompressionLevel::Default => DEFAULT_LEVEL,
        CompressionLevel::Best => BEST_LEVEL,
        CompressionLevel::Precise(n) => n,
    };
    level.clamp(*range.start(), *range.end())
}

/// One frame with the content size in its header (so receivers size their window to the
/// message), written after what `dst` holds.
pub(super) fn compress(
    level: CompressionLevel,
    data: &[u8],
    dst: &mut BytesMut,
) -> Result<(), CompressionError> {
    let start = dst.len();
    dst.resize(start + zstd::zstd_safe::compress_bound(data.len()), 0);
    let out = dst.get_mut(start..).unwrap_or(&mut []);
    match zstd::bulk::compress_to_buffer(data, out, zstd_level(level)) {
        Ok(written) => {
            dst.truncate(start + written);
            Ok(())
        }
        // The output had room for the worst case: an error here would be a libzstd bug.
        Err(_) => {
            dst.truncate(start);
            Err(CompressionError::Corrupt(Encoding::Zstd))
        }
    }
}

/// The window log a decoder allows for messages of at most `limit` bytes: room for the whole
/// message, at least [`MIN_WINDOW_LOG`], at most [`MAX_WINDOW_LOG`].
fn window_log_max(limit: usize) -> u32 {
    let needed = usize::BITS - limit.saturating_sub(1).leading_zeros();
    needed.clamp(MIN_WINDOW_LOG, MAX_WINDOW_LOG)
}

/// Streams the frames of `data` through a decoder reading straight from the slice, its window
/// bounded by [`window_log_max`], its output by `limit`.
pub(super) fn decompress(data: &[u8], limit: usize) -> Result<Bytes, CompressionError> {
    let corrupt = |_| CompressionError::Corrupt(Encoding::Zstd);
    let mut decoder = zstd::stream::read::Decoder::with_buffer(data).map_err(corrupt)?;
    decoder
        .window_log_max(window_log_max(limit))
        .map_err(corrupt)?;
    read_bounded(decoder, Encoding::Zstd, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_into_zstds_range() {
        assert_eq!(zstd_level(CompressionLevel::Fastest), 1);
        assert_eq!(zstd_level(CompressionLevel::Default), 3);
        assert_eq!(zstd_level(CompressionLevel::Best), 19);
        assert_eq!(zstd_level(CompressionLevel::Precise(7)), 7);
        let range = zstd::compression_level_range();
        assert_eq!(zstd_level(CompressionLevel::Precise(1000)), *range.end());
        assert_eq!(
            zstd_level(CompressionLevel::Precise(i32::MIN)),
            *range.start()
        );
    }

    #[test]
    fn windows_are_bounded_by_the_limit() {
        assert_eq!(window_log_max(0), MIN_WINDOW_LOG);
        assert_eq!(window_log_max(4 << 20), MIN_WINDOW_LOG);
        assert_eq!(window_log_max((16 << 20) + 1), 25);
        assert_eq!(window_log_max(usize::MAX), MAX_WINDOW_LOG);
    }
}

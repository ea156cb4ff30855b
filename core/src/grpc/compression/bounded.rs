//! Reading a decoder's output into a buffer that never grows past the caller's limit: where
//! every codec's decompression bomb stops.

use std::io::Read;

use bytes::Bytes;

use super::{CompressionError, Encoding};

/// First output allocation; grown by doubling, capped at `limit + 1`.
const INITIAL_OUTPUT: usize = 8 * 1024;

/// Reads `r` to its end into a buffer that never grows past `limit + 1` bytes; reaching
/// `limit + 1` means the message is too large. A read error is corrupt `enc` data.
pub(super) fn read_bounded(
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

//! The driver's read buffer: small while a connection is quiet, larger while it streams.
//!
//! A server may hold thousands of connections, most of them idle, so each starts with a small
//! buffer; a read that fills the buffer doubles it (up to [`MAX`]), so bulk transfers take
//! more per system call and per wake-up; a run of reads that use less than a quarter of it
//! halves it again (down to [`MIN`]).

/// Smallest buffer, and the size of a new connection's.
pub(crate) const MIN: usize = 16 << 10;
/// Largest buffer.
pub(crate) const MAX: usize = 256 << 10;
/// Consecutive small reads before the buffer shrinks.
const SMALL_READS_TO_SHRINK: u8 = 8;

/// A zeroed byte buffer whose size follows how much each read returns.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    buf: Vec<u8>,
    small_reads: u8,
}

impl Default for ReadBuffer {
    fn default() -> Self {
        Self {
            buf: vec![0; MIN],
            small_reads: 0,
        }
    }
}

impl ReadBuffer {
    /// Where the next read goes.
    pub(crate) fn space(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The first `n` bytes of [`space`](Self::space): what a read of `n` bytes returned.
    pub(crate) fn read(&self, n: usize) -> &[u8] {
        self.buf.get(..n).unwrap_or_default()
    }

    /// Resizes for the next read, after a read of `n` bytes was consumed.
    pub(crate) fn adapt(&mut self, n: usize) {
        let size = self.buf.len();
        if n >= size && size < MAX {
            self.small_reads = 0;
            // Only the new half is zeroed.
            self.buf.resize(size * 2, 0);
        } else if n < size / 4 && size > MIN {
            self.small_reads += 1;
            if self.small_reads >= SMALL_READS_TO_SHRINK {
                self.small_reads = 0;
                self.buf.truncate(size / 2);
                self.buf.shrink_to_fit();
            }
        } else {
            self.small_reads = 0;
        }
    }

    /// The current size.
    #[cfg(test)]
    fn size(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_reads_grow_it_to_the_maximum() {
        let mut b = ReadBuffer::default();
        assert_eq!(b.size(), MIN);
        let mut sizes = Vec::new();
        for _ in 0..10 {
            let n = b.space().len();
            b.space().fill(7);
            b.adapt(n);
            sizes.push(b.size());
        }
        assert_eq!(sizes[..4], [MIN * 2, MIN * 4, MIN * 8, MIN * 16]);
        assert!(sizes.iter().all(|&s| s <= MAX), "{sizes:?}");
        assert_eq!(b.size(), MAX);
        assert!(b.read(MAX).iter().all(|&x| x == 7), "bytes kept");
    }

    #[test]
    fn a_run_of_small_reads_shrinks_it_back() {
        let mut b = ReadBuffer::default();
        for _ in 0..4 {
            let n = b.space().len();
            b.adapt(n);
        }
        let big = b.size();
        assert!(big > MIN);
        for _ in 0..SMALL_READS_TO_SHRINK - 1 {
            b.adapt(10);
        }
        assert_eq!(b.size(), big, "not before the run is complete");
        b.adapt(big / 2);
        for _ in 0..SMALL_READS_TO_SHRINK {
            b.adapt(10);
        }
        assert_eq!(b.size(), big / 2, "a medium read restarts the run");
        for _ in 0..100 {
            b.adapt(1);
        }
        assert_eq!(b.size(), MIN, "never below the minimum");
    }
}

//! A panic-free cursor over untrusted bytes.
//!
//! Every decoder in the crate reads through [`Reader`]: each move is checked, so a short or
//! hostile input yields [`Incomplete`] instead of an index panic.

/// The input ended before the value being read was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Incomplete;

/// A cursor over a byte slice whose every read is bounds-checked.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Number of bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// `true` when every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self) -> Result<u8, Incomplete> {
        let (&first, tail) = self.rest.split_first().ok_or(Incomplete)?;
        self.rest = tail;
        Ok(first)
    }

    /// Reads a big-endian `u16`.
    pub(crate) fn u16(&mut self) -> Result<u16, Incomplete> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u32`.
    pub(crate) fn u32(&mut self) -> Result<u32, Incomplete> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads exactly `N` bytes.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Incomplete> {
        let (head, tail) = self.rest.split_first_chunk::<N>().ok_or(Incomplete)?;
        self.rest = tail;
        Ok(*head)
    }

    /// Reads exactly `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Incomplete> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(Incomplete)?;
        self.rest = tail;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_checked() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x04050607));
        assert!(r.is_empty());
        assert_eq!(r.u8(), Err(Incomplete));
        assert_eq!(r.u32(), Err(Incomplete));
        assert_eq!(r.take(1), Err(Incomplete));
        assert_eq!(r.take(0), Ok(&[][..]));
    }

    #[test]
    fn failed_reads_consume_nothing() {
        let mut r = Reader::new(&[9, 8, 7]);
        assert_eq!(r.array::<4>(), Err(Incomplete));
        assert_eq!(r.take(4), Err(Incomplete));
        assert_eq!(r.remaining(), 3);
        assert_eq!(r.take(2), Ok(&[9, 8][..]));
    }
}

//! Buffers for large encoded messages that come back once the connection has written them.
//!
//! A call streaming large messages would otherwise allocate a fresh buffer per message and free
//! it after the write. When the messages in flight drain (the writer caught up with the
//! handler), the allocator may hand those pages back to the system, and the next message then
//! pays a page fault per 4 KiB it encodes: a tenth of a 64 KiB stream's CPU, measured. A call's
//! [`Recycler`] keeps the buffers its written messages let go of, up to [`KEPT_BYTES`], and
//! encodes the next large messages into them.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};

/// The most bytes of capacity a recycler keeps idle: as much as a call may have run ahead of
/// the connection (sixteen 64 KiB messages), so a steady stream never allocates.
pub(crate) const KEPT_BYTES: usize = 1 << 20;

/// A call's idle large buffers.
#[derive(Debug, Default)]
pub(crate) struct Recycler {
    idle: Mutex<Idle>,
}

#[derive(Debug, Default)]
struct Idle {
    buffers: Vec<BytesMut>,
    /// The sum of `buffers`' capacities.
    bytes: usize,
}

impl Recycler {
    /// An empty buffer with room for at least `len` bytes: an idle one when one is large
    /// enough, else a new one.
    pub(crate) fn take(&self, len: usize) -> BytesMut {
        let mut idle = self.idle();
        match idle.buffers.iter().rposition(|b| b.capacity() >= len) {
            Some(at) => {
                let buffer = idle.buffers.swap_remove(at);
                idle.bytes -= buffer.capacity();
                buffer
            }
            None => BytesMut::with_capacity(len),
        }
    }

    /// `buffer` as `Bytes` that give it back to this recycler when the last of them goes.
    pub(crate) fn share(self: &Arc<Self>, buffer: BytesMut) -> Bytes {
        Bytes::from_owner(Lent {
            buffer,
            home: Arc::clone(self),
        })
    }

    fn give_back(&self, mut buffer: BytesMut) {
        let mut idle = self.idle();
        if idle.bytes + buffer.capacity() <= KEPT_BYTES {
            buffer.clear();
            idle.bytes += buffer.capacity();
            idle.buffers.push(buffer);
        }
    }

    fn idle(&self) -> MutexGuard<'_, Idle> {
        // The list is whole after every step that can panic (none of them can), so a poisoned
        // lock holds a consistent list.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many buffers are idle.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.idle().buffers.len()
    }
}

/// A buffer lent out as `Bytes`, going home when dropped.
struct Lent {
    buffer: BytesMut,
    home: Arc<Recycler>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.home.give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_when_its_bytes_go_and_is_lent_again() {
        let recycler = Arc::new(Recycler::default());
        let mut buffer = recycler.take(1000);
        buffer.extend_from_slice(&[7; 1000]);
        let at = buffer.as_ptr();
        let bytes = recycler.share(buffer);
        let clone = bytes.slice(10..20);
        assert_eq!(&bytes[..3], &[7, 7, 7]);
        drop(bytes);
        assert_eq!(recycler.idle_count(), 0, "a slice still holds it");
        drop(clone);
        assert_eq!(recycler.idle_count(), 1);
        let again = recycler.take(800);
        assert_eq!(again.as_ptr(), at, "the same allocation");
        assert!(again.is_empty());
        // Given back again, but too small for what is asked: a new one.
        drop(recycler.share(again));
        let larger = recycler.take(4000);
        assert_ne!(larger.as_ptr(), at);
        assert_eq!(recycler.idle_count(), 1);
    }

    #[test]
    fn no_more_than_the_bound_is_kept_idle() {
        let recycler = Arc::new(Recycler::default());
        let lent: Vec<Bytes> = (0..20)
            .map(|_| recycler.share(recycler.take(100 << 10)))
            .collect();
        drop(lent);
        let kept = recycler.idle_count();
        assert!(kept * (100 << 10) <= KEPT_BYTES && kept >= KEPT_BYTES / (200 << 10));
        let idle = recycler.idle();
        assert_eq!(
            idle.bytes,
            idle.buffers.iter().map(BytesMut::capacity).sum::<usize>()
        );
    }
}

//! A counting global allocator: every hostile test binary installs it, so a case can assert
//! that an attack made the process hold at most so many more bytes than before it.
//!
//! The count is process-wide. The cases of one binary run one at a time (see
//! [`serial`](super::serial)), so what a case measures is its own server, client and raw peer,
//! plus whatever a previous case's tasks still free or finish meanwhile.
#![allow(
    unsafe_code,
    reason = "a GlobalAlloc is an unsafe impl; it only forwards to System (see SAFETY)"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes currently allocated through [`Counting`].
static CURRENT: AtomicUsize = AtomicUsize::new(0);
/// Allocations made through [`Counting`] (each `alloc`, `alloc_zeroed` and `realloc`).
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// Highest value [`CURRENT`] reached since the last [`Watermark::start`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// `std::alloc::System`, counting live bytes and their peak.
#[derive(Debug)]
pub struct Counting;

fn grew(by: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(by: usize) {
    CURRENT.fetch_sub(by, Ordering::Relaxed);
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only extra work is arithmetic on two atomics, which neither
// allocates nor touches the memory handed out, so layouts, pointers and alignment are exactly
// what `System` returns and receives.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is forwarded as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed` is forwarded as is.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`; the caller's
        // contract for `new_size` is forwarded as is.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Counted as the new block arriving before the old one leaves: a safe upper bound.
            grew(new_size);
            shrank(layout.size());
        }
        new
    }
}

/// Allocations made so far.
pub fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Bytes allocated right now.
pub fn current() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// The growth of live bytes during one attack.
#[derive(Debug)]
pub struct Watermark {
    base: usize,
}

impl Watermark {
    /// Starts measuring: the peak is reset to what is live now.
    pub fn start() -> Self {
        let base = current();
        PEAK.store(base, Ordering::Relaxed);
        Self { base }
    }

    /// The most bytes held above the start since then.
    pub fn peak_growth(&self) -> usize {
        PEAK.load(Ordering::Relaxed).saturating_sub(self.base)
    }

    /// Asserts the peak growth stayed within `bound` bytes.
    #[track_caller]
    pub fn assert_within(&self, bound: usize, what: &str) {
        let grew = self.peak_growth();
        assert!(
            grew <= bound,
            "{what}: memory grew by {grew} bytes at its peak, bound {bound}"
        );
    }
}

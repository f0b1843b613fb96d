//! The claim word of a client: one `u64` at offset 0 of a small segment
//! the client creates, which servers compare-and-swap to claim a request
//! (see docs/ARCHITECTURE.md, "Request-response").
//!
//! The only `unsafe` of the service layer: the word viewed as an atomic.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::segment::Segment;

/// Size of a claim segment (one cache line).
pub(crate) const CLAIM_SIZE: u64 = 64;

/// A claim word in a mapped claim segment.
pub(crate) struct ClaimWord {
    // Keeps the mapping `ptr` points into alive.
    _seg: Segment,
    ptr: *mut u8,
}

// SAFETY: the pointer points into `seg`'s mapping, owned by this value and
// valid (and only accessed atomically) for its whole life; sending it to
// another thread moves the mapping with it.
unsafe impl Send for ClaimWord {}

impl ClaimWord {
    /// Wraps a read-write segment of at least [`CLAIM_SIZE`] bytes; `None`
    /// if it is smaller or read-only.
    pub(crate) fn new(mut seg: Segment) -> Option<ClaimWord> {
        if (seg.len() as u64) < CLAIM_SIZE {
            return None;
        }
        let ptr = seg.as_mut_ptr().ok()?;
        if ptr.align_offset(8) != 0 {
            return None;
        }
        Some(ClaimWord { _seg: seg, ptr })
    }

    fn word(&self) -> &AtomicU64 {
        // SAFETY: `ptr` is 8-aligned (checked in `new`), points to at least
        // CLAIM_SIZE mapped, writable bytes that live as long as `self._seg`
        // (kept alive by `self._seg`), and every process touches these 8 bytes
        // only through atomics. (A peer that shrinks the file is the
        // hostile case ARCHITECTURE.md discusses for every kind.)
        unsafe { &*self.ptr.cast::<AtomicU64>() }
    }

    pub(crate) fn store(&self, v: u64) {
        self.word().store(v, Ordering::SeqCst);
    }

    /// Compare-and-swap; true if it swapped.
    pub(crate) fn cas(&self, old: u64, new: u64) -> bool {
        self.word()
            .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

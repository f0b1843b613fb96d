//! [`RingMem`] over a mapped channel segment: the ring's only raw memory
//! access.

use std::sync::atomic::AtomicU64;

use super::layout::{
    pub_slot_offset, sub_slot_offset, Geometry, JoinLine, PubSlot, SubSlot, CLAIM_OFFSET,
    DATA_EVENT_OFFSET, JOIN_OFFSET, SPACE_EVENT_OFFSET,
};
use super::liveness::Tokens;
use super::ring::RingMem;
use crate::segment::raw::RawSegment;
use crate::sync::event_word::EventWord;
use crate::sync::OsFutex;

/// A channel mapping with its validated geometry.
pub(crate) struct ShmRing {
    seg: RawSegment,
    base: *mut u8,
    ring: *mut u8,
    geo: Geometry,
    tokens: Tokens,
}

// SAFETY: the mapping is process-wide memory that stays mapped as long as
// `seg` lives; all shared words are accessed atomically and payload bytes
// only under the ring protocol's claims, so the handle may move between
// and be shared by threads.
unsafe impl Send for ShmRing {}
// SAFETY: see `Send`.
unsafe impl Sync for ShmRing {}

impl ShmRing {
    /// Wraps a mapped channel segment whose data region holds `geo`
    /// (validated by the caller against the mapped length).
    pub(crate) fn new(seg: RawSegment, geo: Geometry) -> ShmRing {
        assert!(
            geo.data_len() <= seg.data_len() as u64,
            "geometry validated against the mapping"
        );
        let base = seg.data_ptr();
        // SAFETY: ring_offset + capacity <= data_len (asserted above).
        let ring = unsafe { base.add(geo.ring_offset as usize) };
        let tokens = Tokens::new(seg.name_dir(), seg.name());
        ShmRing {
            seg,
            base,
            ring,
            geo,
            tokens,
        }
    }

    /// `Corrupt` if another process truncated the channel's file (caught
    /// SIGBUS; see `sys/sigbus.rs`). One relaxed load when nothing happened.
    #[inline]
    pub(crate) fn check_truncated(&self) -> Result<(), crate::error::Corrupt> {
        if self.seg.truncated() {
            return Err(crate::error::Corrupt {
                reason: format!(
                    "{} was truncated by another process while mapped",
                    self.seg.path().display()
                ),
            });
        }
        Ok(())
    }

    /// The endpoints' liveness tokens.
    pub(crate) fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The segment.
    pub(crate) fn segment(&self) -> &RawSegment {
        &self.seg
    }

    /// A reference to a `T` at `offset` of the data region.
    ///
    /// # Safety
    ///
    /// `offset + size_of::<T>()` lies inside the data region, `offset` is
    /// aligned for `T`, and `T` is made only of atomics (valid for any bit
    /// pattern and safe to share with other processes).
    unsafe fn at<T>(&self, offset: u64) -> &T {
        // SAFETY: the caller's contract.
        unsafe { &*self.base.add(offset as usize).cast::<T>() }
    }
}

impl RingMem for ShmRing {
    type F = OsFutex;

    #[inline]
    fn futex(&self) -> &OsFutex {
        &OsFutex
    }
    fn on_stuck(&self) {
        super::liveness::reap(self);
    }
    #[inline]
    fn geometry(&self) -> &Geometry {
        &self.geo
    }
    #[inline]
    fn claim(&self) -> &AtomicU64 {
        // SAFETY: CLAIM_OFFSET is a 128-aligned line inside the control block.
        unsafe { self.at(CLAIM_OFFSET) }
    }
    #[inline]
    fn join(&self) -> &JoinLine {
        // SAFETY: JOIN_OFFSET is a 128-aligned line inside the control
        // block; JoinLine is atomics and padding.
        unsafe { self.at(JOIN_OFFSET) }
    }
    #[inline]
    fn data_event(&self) -> &EventWord {
        // SAFETY: a 128-aligned line inside the control block; two AtomicU32.
        unsafe { self.at(DATA_EVENT_OFFSET) }
    }
    #[inline]
    fn space_event(&self) -> &EventWord {
        // SAFETY: as for `data_event`.
        unsafe { self.at(SPACE_EVENT_OFFSET) }
    }
    #[inline]
    fn pub_slot(&self, i: u32) -> &PubSlot {
        assert!(i < self.geo.max_publishers);
        // SAFETY: i < max_publishers, so the slot lies before ring_offset.
        unsafe { self.at(pub_slot_offset(u64::from(i))) }
    }
    #[inline]
    fn sub_slot(&self, i: u32) -> &SubSlot {
        assert!(i < self.geo.max_subscribers);
        // SAFETY: i < max_subscribers, so the slot lies before ring_offset.
        unsafe {
            self.at(sub_slot_offset(
                u64::from(self.geo.max_publishers),
                u64::from(i),
            ))
        }
    }
    #[inline]
    fn stamp(&self, off: u64) -> &AtomicU64 {
        let off = off & self.geo.mask & !15;
        // SAFETY: off is masked into the ring and 16-aligned; 8 bytes fit.
        unsafe { &*self.ring.add(off as usize).cast::<AtomicU64>() }
    }
    #[inline]
    fn meta(&self, off: u64) -> &AtomicU64 {
        let off = off & self.geo.mask & !15;
        // SAFETY: as for `stamp`, 8 bytes further (still inside the 16-byte
        // record header, which never crosses the ring's end).
        unsafe { &*self.ring.add(off as usize + 8).cast::<AtomicU64>() }
    }
    #[inline]
    fn demote(&self, off: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            let line = self.ring.wrapping_add((off & self.geo.mask) as usize);
            // SAFETY: `line` lies inside the mapped ring (masked offset).
            // CLDEMOTE only moves the line between caches: it neither reads
            // nor changes any byte, and is a NOP on processors without it
            // (its encoding is in the reserved-NOP space).
            unsafe {
                std::arch::asm!(
                    "cldemote [{}]",
                    in(reg) line,
                    options(nostack, preserves_flags, readonly)
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = off;
    }
    #[inline]
    unsafe fn write(&self, off: u64, src: &[u8]) {
        debug_assert!(off + src.len() as u64 <= self.geo.capacity);
        // SAFETY: the caller guarantees bounds and an exclusive claim.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ring.add(off as usize), src.len())
        }
    }
}

impl ShmRing {
    /// A pointer to ring offset `off` (for loans and in-place reads).
    ///
    /// # Safety
    ///
    /// `off <= capacity`.
    pub(crate) unsafe fn ring_ptr(&self, off: u64) -> *mut u8 {
        // SAFETY: the caller's contract.
        unsafe { self.ring.add(off as usize) }
    }
}

//! [`RingMem`] over a mapped channel segment: the ring's only raw memory
//! access.

use std::sync::atomic::AtomicU64;

use super::layout::{Geometry, JoinLine, PubSlot, SubSlot};
use super::region::Region;
use super::ring::RingMem;
use crate::file::RawSegment;
use crate::sync::event_word::EventWord;
use crate::sync::OsFutex;

/// A channel mapping with its validated geometry.
pub(crate) struct ShmRing {
    seg: RawSegment,
    region: Region,
    /// Endpoints copy messages instead of handing out references into the
    /// ring (see `trust.rs`).
    copy_messages: bool,
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
    /// (validated by the caller against the mapped length); its endpoints
    /// copy messages if `copy_messages`.
    pub(crate) fn new(seg: RawSegment, geo: Geometry, copy_messages: bool) -> ShmRing {
        assert!(
            geo.data_len() <= seg.data_len() as u64,
            "geometry validated against the mapping"
        );
        // SAFETY: the data region is `data_len >= geo.data_len()` bytes
        // (asserted above), page aligned, mapped while `seg` lives (it is
        // kept beside the region), and the ring protocol accesses it only
        // through atomics and raw copies.
        let region = unsafe { Region::new(seg.data_ptr(), geo) };
        ShmRing {
            seg,
            region,
            copy_messages,
        }
    }

    /// `Corrupt` if another process truncated the channel's file (caught
    /// SIGBUS; see `sys/sigbus.rs`). One relaxed load when nothing happened.
    #[inline]
    pub(crate) fn check_truncated(&self) -> Result<(), crate::error::Corrupt> {
        if self.seg.truncated() {
            return Err(crate::error::Corrupt::new(format!(
                "{} was truncated by another process while mapped",
                self.seg.path().display()
            )));
        }
        Ok(())
    }

    /// The segment.
    pub(crate) fn segment(&self) -> &RawSegment {
        &self.seg
    }

    /// Whether endpoints copy messages (see `trust.rs`).
    pub(crate) fn copy_messages(&self) -> bool {
        self.copy_messages
    }
}

impl RingMem for ShmRing {
    type F = OsFutex;

    #[inline]
    fn futex(&self) -> &OsFutex {
        &OsFutex
    }
    fn on_stuck(&self) {
        super::liveness::reap(self, None);
    }
    #[inline]
    fn geometry(&self) -> &Geometry {
        self.region.geometry()
    }
    #[inline]
    fn claim(&self) -> &AtomicU64 {
        self.region.claim()
    }
    #[inline]
    fn join(&self) -> &JoinLine {
        self.region.join()
    }
    #[inline]
    fn data_event(&self) -> &EventWord {
        self.region.data_event()
    }
    #[inline]
    fn space_event(&self) -> &EventWord {
        self.region.space_event()
    }
    #[inline]
    fn pub_slot(&self, i: u32) -> &PubSlot {
        self.region.pub_slot(i)
    }
    #[inline]
    fn sub_slot(&self, i: u32) -> &SubSlot {
        self.region.sub_slot(i)
    }
    #[inline]
    fn stamp(&self, off: u64) -> &AtomicU64 {
        self.region.stamp(off)
    }
    #[inline]
    fn meta(&self, off: u64) -> &AtomicU64 {
        self.region.meta(off)
    }
    #[inline]
    fn demote(&self, off: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            let line = self.region.ring_line(off);
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
        // SAFETY: the caller's contract is `Region::write`'s.
        unsafe { self.region.write(off, src) }
    }
}

impl ShmRing {
    /// A pointer to ring offset `off` (for loans and in-place reads).
    ///
    /// # Safety
    ///
    /// `off <= capacity`.
    pub(crate) unsafe fn ring_ptr(&self, off: u64) -> *mut u8 {
        // SAFETY: the caller's contract is `Region::ring_ptr`'s.
        unsafe { self.region.ring_ptr(off) }
    }
}

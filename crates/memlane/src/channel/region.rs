//! The address arithmetic of a channel's data region, in one place: where
//! the claim word, the join line, the events, the endpoint slots and each
//! record's header words are, given a base pointer and the validated
//! geometry. Used by the mapped channel ([`super::shm::ShmRing`]) and by
//! the heap image the ring fuzz target decodes (`crate::fuzzing`), so the
//! fuzzer checks the very code that runs.
//!
//! Both get [`RingMem`] from the one implementation here, over anything
//! that [`HasRegion`]: they say where their region is and which futex
//! they use, and add hooks where they differ; none of them forwards the
//! memory accessors itself.

use std::sync::atomic::AtomicU64;

use super::layout::{
    pub_slot_offset, sub_slot_offset, Geometry, JoinLine, PubSlot, SubSlot, CLAIM_OFFSET,
    DATA_EVENT_OFFSET, JOIN_OFFSET, SPACE_EVENT_OFFSET,
};
use super::ring::RingMem;
use crate::sync::event_word::EventWord;
use crate::sync::Futex;

/// A channel's memory as a [`Region`], with the futex and the hooks of
/// [`RingMem`] that are not memory accesses. Every `HasRegion` is a
/// [`RingMem`] through the blanket implementation below, whose memory
/// accessors are the region's.
pub(crate) trait HasRegion {
    /// The futex implementation.
    type F: Futex;
    /// The data region.
    fn region(&self) -> &Region;
    /// The futex ([`RingMem::futex`]).
    fn futex(&self) -> &Self::F;
    /// [`RingMem::on_stuck`]; the default does nothing.
    #[inline]
    fn on_stuck(&self) {}
    /// [`RingMem::demote`]; the default does nothing.
    #[inline]
    fn demote(&self, _off: u64) {}
    /// [`RingMem::demotes`]; the default: no.
    fn demotes(&self) -> bool {
        false
    }
    /// [`RingMem::prefetch_write`]; the default does nothing.
    #[inline]
    fn prefetch_write(&self, _off: u64) {}
    /// [`RingMem::prefetches`]; the default: no.
    fn prefetches(&self) -> bool {
        false
    }
    /// Called by [`RingMem::stamp`] before it returns the stamp word at
    /// ring offset `off`. Lets a single-threaded test play a publisher
    /// that writes just ahead of a reader (`fuzzing`'s
    /// `peek_skips_at_most_a_lap_per_call`); the default, which every
    /// other implementation keeps, does nothing and costs nothing.
    #[inline]
    fn before_stamp(&self, _off: u64) {}
}

/// The one [`RingMem`] over a channel's memory: the accessors are
/// [`Region`]'s, the futex and hooks the [`HasRegion`]'s.
impl<T: HasRegion> RingMem for T {
    type F = T::F;

    #[inline]
    fn futex(&self) -> &T::F {
        HasRegion::futex(self)
    }
    #[inline]
    fn geometry(&self) -> &Geometry {
        self.region().geometry()
    }
    #[inline]
    fn claim(&self) -> &AtomicU64 {
        self.region().claim()
    }
    #[inline]
    fn join(&self) -> &JoinLine {
        self.region().join()
    }
    #[inline]
    fn data_event(&self) -> &EventWord {
        self.region().data_event()
    }
    #[inline]
    fn space_event(&self) -> &EventWord {
        self.region().space_event()
    }
    #[inline]
    fn pub_slot(&self, i: u32) -> &PubSlot {
        self.region().pub_slot(i)
    }
    #[inline]
    fn sub_slot(&self, i: u32) -> &SubSlot {
        self.region().sub_slot(i)
    }
    #[inline]
    fn stamp(&self, off: u64) -> &AtomicU64 {
        self.before_stamp(off);
        self.region().stamp(off)
    }
    #[inline]
    fn meta(&self, off: u64) -> &AtomicU64 {
        self.region().meta(off)
    }
    #[inline]
    fn on_stuck(&self) {
        HasRegion::on_stuck(self);
    }
    #[inline]
    fn demote(&self, off: u64) {
        HasRegion::demote(self, off);
    }
    fn demotes(&self) -> bool {
        HasRegion::demotes(self)
    }
    #[inline]
    fn prefetch_write(&self, off: u64) {
        HasRegion::prefetch_write(self, off);
    }
    fn prefetches(&self) -> bool {
        HasRegion::prefetches(self)
    }
    #[inline]
    unsafe fn write(&self, off: u64, src: &[u8]) {
        // SAFETY: the caller's contract is `Region::write`'s.
        unsafe { self.region().write(off, src) }
    }
}

/// A channel data region at `base`, laid out by `geo`.
pub(crate) struct Region {
    base: *mut u8,
    ring: *mut u8,
    geo: Geometry,
}

impl Region {
    /// # Safety
    ///
    /// `base` points to at least `geo.data_len()` bytes, 8-aligned, that
    /// stay valid while the region is used; every byte of it is accessed
    /// only through atomics or raw copies (never through Rust references
    /// to plain data), as the ring protocol does.
    pub(crate) unsafe fn new(base: *mut u8, geo: Geometry) -> Region {
        // SAFETY: ring_offset + capacity <= data_len (the caller's contract).
        let ring = unsafe { base.add(geo.ring_offset as usize) };
        Region { base, ring, geo }
    }

    /// The geometry.
    #[inline]
    pub(crate) fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// A reference to a `T` at `offset` of the data region.
    ///
    /// # Safety
    ///
    /// `offset + size_of::<T>()` lies inside the data region, `offset` is
    /// aligned for `T` (whose alignment is at most 8), and `T` is made only
    /// of atomics and padding nobody writes (valid for any bit pattern and
    /// safe to share with other processes).
    #[inline]
    unsafe fn at<T>(&self, offset: u64) -> &T {
        // SAFETY: the caller's contract.
        unsafe { &*self.base.add(offset as usize).cast::<T>() }
    }

    /// The claim counter.
    #[inline]
    pub(crate) fn claim(&self) -> &AtomicU64 {
        // SAFETY: CLAIM_OFFSET is a 128-aligned line inside the control block.
        unsafe { self.at(CLAIM_OFFSET) }
    }

    /// The join line.
    #[inline]
    pub(crate) fn join(&self) -> &JoinLine {
        // SAFETY: JOIN_OFFSET is a 128-aligned line inside the control
        // block; JoinLine is atomics and padding.
        unsafe { self.at(JOIN_OFFSET) }
    }

    /// Publishers → subscribers.
    #[inline]
    pub(crate) fn data_event(&self) -> &EventWord {
        // SAFETY: a 128-aligned line inside the control block; two AtomicU32.
        unsafe { self.at(DATA_EVENT_OFFSET) }
    }

    /// Subscribers → publishers.
    #[inline]
    pub(crate) fn space_event(&self) -> &EventWord {
        // SAFETY: as for `data_event`.
        unsafe { self.at(SPACE_EVENT_OFFSET) }
    }

    /// Publisher slot `i` (panics unless `i < max_publishers`).
    #[inline]
    pub(crate) fn pub_slot(&self, i: u32) -> &PubSlot {
        assert!(i < self.geo.max_publishers);
        // SAFETY: i < max_publishers, so the slot lies before ring_offset;
        // PubSlot is atomics only.
        unsafe { self.at(pub_slot_offset(u64::from(i))) }
    }

    /// Subscriber slot `i` (panics unless `i < max_subscribers`).
    #[inline]
    pub(crate) fn sub_slot(&self, i: u32) -> &SubSlot {
        assert!(i < self.geo.max_subscribers);
        // SAFETY: i < max_subscribers, so the slot lies before ring_offset;
        // SubSlot is atomics only.
        unsafe {
            self.at(sub_slot_offset(
                u64::from(self.geo.max_publishers),
                u64::from(i),
            ))
        }
    }

    /// The stamp word of the record at ring offset `off` (masked into the
    /// ring and down to 16 bytes, whatever `off` is).
    #[inline]
    pub(crate) fn stamp(&self, off: u64) -> &AtomicU64 {
        let off = off & self.geo.mask & !15;
        // SAFETY: off is masked into the ring and 16-aligned; 8 bytes fit.
        unsafe { &*self.ring.add(off as usize).cast::<AtomicU64>() }
    }

    /// The meta word of the record at ring offset `off`.
    #[inline]
    pub(crate) fn meta(&self, off: u64) -> &AtomicU64 {
        let off = off & self.geo.mask & !15;
        // SAFETY: as for `stamp`, 8 bytes further (still inside the 16-byte
        // record header, which never crosses the ring's end).
        unsafe { &*self.ring.add(off as usize + 8).cast::<AtomicU64>() }
    }

    /// Moves the ring line holding offset `off` (masked into the ring)
    /// from this core's private caches to the shared one: `CLDEMOTE` on
    /// x86-64, nothing elsewhere (see [`RingMem::demote`]).
    #[inline]
    pub(crate) fn demote(&self, off: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            let line = self.ring.wrapping_add((off & self.geo.mask) as usize);
            // SAFETY: `line` lies inside the ring (masked offset).
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

    /// Asks for the ring line holding offset `off` (masked into the ring)
    /// in this core's cache, ready to be written: `PREFETCHW` on x86-64,
    /// nothing elsewhere (see [`RingMem::prefetch_write`]). Only to be
    /// called where [`crate::sys::cpu_has_prefetchw`] said yes.
    #[inline]
    pub(crate) fn prefetch_write(&self, off: u64) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        {
            let line = self.ring.wrapping_add((off & self.geo.mask) as usize);
            // SAFETY: `line` lies inside the ring (masked offset). PREFETCHW
            // only fetches the line into this core's cache in a writable
            // state: it neither reads nor changes any byte, and never
            // faults; the caller runs it only on a CPU that has it.
            unsafe {
                std::arch::asm!(
                    "prefetchw [{}]",
                    in(reg) line,
                    options(nostack, preserves_flags, readonly)
                );
            }
        }
        #[cfg(not(all(target_arch = "x86_64", not(miri))))]
        let _ = off;
    }

    /// Copies `src` into the ring at `off`.
    ///
    /// # Safety
    ///
    /// `off + src.len() <= capacity`, and the caller holds a claim on
    /// those bytes.
    #[inline]
    pub(crate) unsafe fn write(&self, off: u64, src: &[u8]) {
        debug_assert!(off + src.len() as u64 <= self.geo.capacity);
        // SAFETY: the caller guarantees bounds and an exclusive claim.
        unsafe { copy_to(self.ring.add(off as usize), src) }
    }

    /// A pointer to ring offset `off` (for loans and in-place reads).
    ///
    /// # Safety
    ///
    /// `off <= capacity`.
    #[inline]
    pub(crate) unsafe fn ring_ptr(&self, off: u64) -> *mut u8 {
        // SAFETY: the caller's contract.
        unsafe { self.ring.add(off as usize) }
    }
}

/// Copies `src` to `dst`: payloads of up to 16 bytes inline, with two
/// overlapping word copies (a call to `memcpy` and its size dispatch cost
/// more, on the path from a message's arrival to the reply; see
/// `docs/benchmarks/`), larger ones with `copy_nonoverlapping`.
///
/// # Safety
///
/// `dst` is valid for `src.len()` bytes of writes and does not overlap `src`.
#[inline(always)]
unsafe fn copy_to(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    let s = src.as_ptr();
    // SAFETY: in every branch, every read lies in `src` (offsets below `n`),
    // every write in `dst[..n]` (the caller's contract); unaligned reads and
    // writes of plain integers.
    unsafe {
        if (8..=16).contains(&n) {
            let head = s.cast::<u64>().read_unaligned();
            let tail = s.add(n - 8).cast::<u64>().read_unaligned();
            dst.cast::<u64>().write_unaligned(head);
            dst.add(n - 8).cast::<u64>().write_unaligned(tail);
        } else if (4..8).contains(&n) {
            let head = s.cast::<u32>().read_unaligned();
            let tail = s.add(n - 4).cast::<u32>().read_unaligned();
            dst.cast::<u32>().write_unaligned(head);
            dst.add(n - 4).cast::<u32>().write_unaligned(tail);
        } else {
            std::ptr::copy_nonoverlapping(s, dst, n);
        }
    }
}

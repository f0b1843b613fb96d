//! A mapped channel segment as the ring's memory: a [`Region`] over its
//! data region (which gives it [`RingMem`](super::ring::RingMem)).

use super::layout::Geometry;
use super::region::{HasRegion, Region};
use crate::file::RawSegment;
use crate::sync::OsFutex;

/// A channel mapping with its validated geometry.
pub(crate) struct ShmRing {
    seg: RawSegment,
    region: Region,
    /// Endpoints copy messages instead of handing out references into the
    /// ring (see `trust.rs`).
    copy_messages: bool,
    /// The data region's pages were mapped in ([`ShmRing::populate`]).
    populated: std::sync::Once,
}

// SAFETY: the mapping is process-wide memory that stays mapped as long as
// `seg` lives; all shared words are accessed atomically and payload bytes
// only under the ring protocol's claims, so the handle may move between
// and be shared by threads.
unsafe impl Send for ShmRing {}
// SAFETY: see `Send`.
unsafe impl Sync for ShmRing {}

/// At most this much of a channel's data region is mapped into the page
/// tables at a handle's first join ([`ShmRing::populate`]): the rest of a
/// larger ring faults in on first touch, so that joining a huge channel
/// stays quick.
const POPULATE_MAX: u64 = 64 << 20;

fn populate_len(data_len: u64) -> usize {
    data_len.min(POPULATE_MAX) as usize
}

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
            populated: std::sync::Once::new(),
        }
    }

    /// Maps the data region's pages into this process's page tables, once
    /// per handle; called when an endpoint joins. The ring is written and
    /// read in a cycle: without this, each process takes a page fault at
    /// its first touch of each page (a 1 MiB ring: 256 per process), a
    /// microsecond or more each, in the first lap's latency (p99.9 8 B
    /// one-way: 8.5 µs against 0.2 µs for the cache-line floor,
    /// docs/benchmarks/). At the join rather than at open: a handle that
    /// never joins (inspection, removal) stays quick to open and close and
    /// maps in nothing (a 1 MiB ring: ~0.3 ms and 1 MiB of page tables'
    /// reach per process on the AMD VM of docs/benchmarks/, "Issue 15 on an
    /// AMD EPYC").
    pub(crate) fn populate(&self) {
        self.populated.call_once(|| {
            let len = populate_len(self.region.geometry().data_len());
            crate::sys::populate(self.seg.data_ptr(), len, self.seg.writable());
        });
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

/// The ring's memory is the mapping's data region; a stuck publisher
/// reaps dead endpoints, and large records are demoted to the shared
/// cache.
impl HasRegion for ShmRing {
    type F = OsFutex;

    #[inline]
    fn region(&self) -> &Region {
        &self.region
    }
    #[inline]
    fn futex(&self) -> &OsFutex {
        &OsFutex
    }
    fn on_stuck(&self) {
        super::liveness::reap(self, None);
    }
    #[inline]
    fn demote(&self, off: u64) {
        self.region.demote(off);
    }
    fn demotes(&self) -> bool {
        crate::sys::cpu_has_cldemote()
    }
    #[inline]
    fn prefetch_write(&self, off: u64) {
        self.region.prefetch_write(off);
    }
    fn prefetches(&self) -> bool {
        crate::sys::cpu_has_prefetchw()
    }
}

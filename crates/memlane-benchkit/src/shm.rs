//! A shared mapping of a file in the run's directory, for the floor
//! transports: with the OS calls of `sys/windows.rs`, the only `unsafe` of
//! this crate.
#![allow(unsafe_code)]

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64};

use memmap2::{MmapOptions, MmapRaw};

use crate::sys;

/// A shared read-write mapping of a whole file (`MAP_SHARED`; a file
/// mapping view on Windows).
pub(crate) struct Shm {
    map: MmapRaw,
}

/// Maps `f` whole, its pages in the page tables at once (`MAP_POPULATE`
/// on Linux), as memlane maps a channel's ring when an endpoint joins: so
/// that no floor takes the first lap's page faults memlane does not.
fn map(f: &std::fs::File) -> io::Result<MmapRaw> {
    MmapOptions::new().populate().map_raw(f)
}

impl Shm {
    /// Creates `path` (new; on Unix mode 0600) of `len` bytes, zero-filled,
    /// and maps it.
    pub(crate) fn create(path: &Path, len: usize) -> io::Result<Shm> {
        let f = sys::private_file(OpenOptions::new().read(true).write(true).create_new(true))
            .open(path)?;
        f.set_len(len as u64)?;
        Ok(Shm { map: map(&f)? })
    }

    /// Maps the existing file `path`.
    pub(crate) fn open(path: &Path) -> io::Result<Shm> {
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Shm { map: map(&f)? })
    }

    fn check(&self, off: usize, len: usize, align: usize) {
        assert!(
            off % align == 0
                && off
                    .checked_add(len)
                    .is_some_and(|end| end <= self.map.len()),
            "shared access at {off}+{len} outside the {}-byte mapping",
            self.map.len()
        );
    }

    /// The `AtomicU32` at `off`.
    pub(crate) fn u32_at(&self, off: usize) -> &AtomicU32 {
        self.check(off, 4, 4);
        // SAFETY: in bounds and aligned (checked; the mapping is page
        // aligned); an atomic is valid for any bits and may be shared with
        // other processes; the mapping lives as long as `self`.
        unsafe { &*self.map.as_mut_ptr().add(off).cast::<AtomicU32>() }
    }

    /// The `AtomicU64` at `off`.
    pub(crate) fn u64_at(&self, off: usize) -> &AtomicU64 {
        self.check(off, 8, 8);
        // SAFETY: as for `u32_at`.
        unsafe { &*self.map.as_mut_ptr().add(off).cast::<AtomicU64>() }
    }

    /// Copies `src` to `off`. The caller's protocol must give it exclusive
    /// use of those bytes (the peer does not read them until a later
    /// Release store that it Acquires).
    pub(crate) fn write(&self, off: usize, src: &[u8]) {
        self.check(off, src.len(), 1);
        // SAFETY: in bounds (checked); raw copies, no reference into
        // memory the peer may write; the protocol orders the accesses.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.map.as_mut_ptr().add(off), src.len())
        }
    }

    /// Copies `dst.len()` bytes at `off` into `dst` (same protocol rule).
    pub(crate) fn read(&self, off: usize, dst: &mut [u8]) {
        self.check(off, dst.len(), 1);
        // SAFETY: as for `write`.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(off), dst.as_mut_ptr(), dst.len())
        }
    }
}

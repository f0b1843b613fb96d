//! A mapped window of a segment file (through memmap2).

use std::fs::File;
use std::io;

use memmap2::{MmapMut, MmapOptions, MmapRaw};

/// A mapped window, guarded against SIGBUS from a truncated file.
///
/// Fields drop in declaration order: the guard first, so the window is
/// unregistered from the SIGBUS handler before it is unmapped (after the
/// unmap, the address range may be handed to an unrelated mapping, whose
/// faults must not be taken for this window's).
pub(crate) struct Map {
    guard: crate::sys::MapGuard,
    kind: MapKind,
}

/// How a window is mapped.
enum MapKind {
    /// `MAP_SHARED`, read-write or read-only.
    Shared(MmapRaw),
    /// `MAP_PRIVATE`: writes stay in this process (copy-on-write).
    Private(MmapMut),
    /// A view of a page-file-backed named mapping (Windows).
    #[cfg(windows)]
    Named(crate::sys::View),
}

impl Map {
    /// Maps `len` bytes of `file` from `offset` (any offset: memmap2 aligns
    /// it to a page internally and hands back the exact window).
    pub(crate) fn shared(file: &File, offset: u64, len: usize, writable: bool) -> io::Result<Map> {
        let mut opts = MmapOptions::new();
        opts.offset(offset).len(len);
        let raw = if writable {
            opts.map_raw(file)?
        } else {
            opts.map_raw_read_only(file)?
        };
        Ok(Map::guarded(MapKind::Shared(raw), file, offset))
    }

    /// Creates the page-file-backed mapping `name` of `len` bytes and maps
    /// it read-write; `Ok(None)` if the name is taken.
    #[cfg(windows)]
    pub(crate) fn create_named(name: &str, len: u64) -> io::Result<Option<Map>> {
        Ok(crate::sys::create_named_mapping(name, len)?.map(|v| Map::named(v, name)))
    }

    /// Opens and maps all of the page-file-backed mapping `name`.
    #[cfg(windows)]
    pub(crate) fn open_named(name: &str, access: crate::sys::ViewAccess) -> io::Result<Map> {
        crate::sys::open_named_mapping(name, access).map(|v| Map::named(v, name))
    }

    #[cfg(windows)]
    fn named(view: crate::sys::View, name: &str) -> Map {
        Map {
            guard: crate::sys::MapGuard::register_named(view.ptr(), view.len(), name),
            kind: MapKind::Named(view),
        }
    }

    /// The length of the window.
    #[cfg(windows)]
    pub(crate) fn len(&self) -> usize {
        match &self.kind {
            MapKind::Shared(m) => m.len(),
            MapKind::Private(m) => m.len(),
            MapKind::Named(v) => v.len(),
        }
    }

    fn guarded(kind: MapKind, file: &File, offset: u64) -> Map {
        let (ptr, len) = match &kind {
            MapKind::Shared(m) => (m.as_mut_ptr(), m.len()),
            MapKind::Private(m) => (m.as_ptr().cast_mut(), m.len()),
            #[cfg(windows)]
            MapKind::Named(v) => (v.ptr(), v.len()),
        };
        Map {
            guard: crate::sys::MapGuard::register(ptr, len, file, offset),
            kind,
        }
    }

    /// Whether another process truncated the file under this window (an
    /// access past its new end was caught and read zeros).
    #[inline]
    pub(crate) fn truncated(&self) -> bool {
        self.guard.faulted()
    }

    /// Maps a private copy-on-write window.
    pub(crate) fn private(file: &File, offset: u64, len: usize) -> io::Result<Map> {
        // SAFETY: memmap2's `map_copy` is unsafe because the file may be
        // changed by others while mapped. Every access to the mapping goes
        // through raw-pointer copies and atomics bounded by `len` (never a
        // Rust reference to the bytes), so concurrent changes yield
        // different bytes, never undefined behaviour.
        let m = unsafe { MmapOptions::new().offset(offset).len(len).map_copy(file)? };
        Ok(Map::guarded(MapKind::Private(m), file, offset))
    }

    /// The start of the window.
    pub(crate) fn ptr(&self) -> *mut u8 {
        match &self.kind {
            MapKind::Shared(m) => m.as_mut_ptr(),
            MapKind::Private(m) => m.as_ptr().cast_mut(),
            #[cfg(windows)]
            MapKind::Named(v) => v.ptr(),
        }
    }

    /// `msync(MS_SYNC)` over a range of the window (a no-op for a private
    /// copy-on-write window, whose changes never reach the file).
    pub(crate) fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        match &self.kind {
            MapKind::Shared(m) => m.flush_range(offset, len),
            MapKind::Private(_) => Ok(()),
            #[cfg(windows)]
            MapKind::Named(v) => v.flush_range(offset, len),
        }
    }
}

//! The raw bytes of a typed channel's type record: written once by the
//! creator before the channel is published, copied out by openers. What
//! the bytes mean is `crate::typed::record`'s business; this file only
//! moves them between the mapping and this process's memory.

use super::layout::Geometry;
use super::ring::RingMem;
use super::shm::ShmRing;

/// Writes `record` (at most `geo.type_len` bytes) at the type record's
/// offset of a channel being created.
///
/// # Safety
///
/// `data` is the data region of a channel being built for `geo`: at least
/// `geo.data_len()` bytes, writable, and not yet visible to any other
/// process.
pub(super) unsafe fn write(data: *mut u8, geo: &Geometry, record: &[u8]) {
    assert!(
        record.len() <= geo.type_len as usize,
        "sized by the builder"
    );
    // SAFETY: type_offset + type_len <= ring_offset <= data_len (the
    // geometry puts the record before the ring), `record` fits in
    // type_len (asserted), and this process's `record` cannot overlap a
    // fresh mapping.
    unsafe {
        std::ptr::copy_nonoverlapping(
            record.as_ptr(),
            data.add(geo.type_offset() as usize),
            record.len(),
        );
    }
}

/// A copy of the channel's type record bytes (`Config::type_len` of them,
/// empty for an untyped channel). Another process may have rewritten
/// them: the caller validates the copy, never the mapping.
pub(super) fn read(ring: &ShmRing) -> Vec<u8> {
    let geo = ring.geometry();
    let mut out = vec![0u8; geo.type_len as usize];
    // SAFETY: the geometry was validated against the mapped length, and
    // type_offset + type_len <= ring_offset < data_len; `out` is this
    // process's own memory. The shared bytes are read through a raw
    // pointer only (no reference is made to them); a peer changing them
    // meanwhile can make the copy wrong, which its decoder reports, but
    // never its bounds.
    unsafe {
        std::ptr::copy_nonoverlapping(
            ring.segment()
                .data_ptr()
                .add(geo.type_offset() as usize)
                .cast_const(),
            out.as_mut_ptr(),
            out.len(),
        );
    }
    out
}

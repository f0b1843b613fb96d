//! The shared-memory layout of a latest-value slot (segment kind
//! [`Kind::Latest`](crate::Kind::Latest)). Mirrored in
//! `docs/ARCHITECTURE.md`; every offset is checked by the const assertions
//! below and by a test with literal offsets.
//!
//! ```text
//! data region (page aligned; offsets in bytes)
//!      0  Control      128 B  current, layout version, max_value, max_writers, buffers per writer,
//!                             next_version
//!    128  EventLine    128 B  the "value changed" event word (seq, waiters), padding
//!    256  writer slot 0       128 B each: one word, (pid << 32) | state
//!         ...
//!    256 + 128 * max_writers
//!         buffer 0            BUFFER_HEADER (64 B): seq, version, len; then the value,
//!         buffer 1            max_value rounded up to 64 B
//!         ...                 buffers_per_writer buffers per writer slot;
//!                             writer slot w owns buffers w*B .. w*B+B-1
//! ```
//!
//! `current` names the newest complete value: `(version << LOC_BITS) |
//! buffer`, 0 while nothing was written. Every word is 8-aligned and only
//! ever accessed as an atomic; a value's bytes are stored and loaded as
//! relaxed 64-bit atomic words (the seqlock protocol in
//! [`super::protocol`] validates a copy after taking it).

use crate::sync::event_word::EventWord;
use crate::sync::AtomicU64;

/// Layout version of a latest-value slot's data region.
pub(crate) const LAYOUT_VERSION: u64 = 1;

/// Bits of `current` that name the buffer; the version takes the rest.
pub(crate) const LOC_BITS: u32 = 12;
/// Mask of the buffer bits of `current`.
pub(crate) const LOC_MASK: u64 = (1 << LOC_BITS) - 1;
/// The largest version: `current` has 52 bits for it (at ten million
/// writes a second, more than 14 years of writes); a write past it fails.
pub(crate) const MAX_VERSION: u64 = (1 << (64 - LOC_BITS)) - 1;

/// Buffers each writer slot owns: the one a reader may be copying, the
/// newest, and the one being written. A reader's copy is torn (and
/// retried) only if its writer completes two more writes while it copies.
pub(crate) const BUFFERS_PER_WRITER: u32 = 3;

/// The most writer slots a latest-value slot can have.
pub const MAX_WRITERS: u32 = 256;
/// The largest value, 1 GiB.
pub const MAX_VALUE: usize = 1 << 30;

/// Offset of [`EventLine`].
pub(crate) const EVENT_OFFSET: u64 = 128;
/// Offset of the first writer slot.
pub(crate) const SLOTS_OFFSET: u64 = 256;
/// Bytes per writer slot (a line pair, so two writers never share one).
pub(crate) const SLOT_SIZE: u64 = 128;
/// Bytes of a buffer's header: `seq`, `version`, `len`, padding.
pub(crate) const BUFFER_HEADER: u64 = 64;

/// Writer slot states (the low 32 bits of its word).
pub(crate) const SLOT_FREE: u64 = 0;
/// A writer holds the slot (or held it and died: its lock tells).
pub(crate) const SLOT_ACTIVE: u64 = 1;

/// The first line of the data region.
///
/// ```text
/// offset size field
///      0    8 current             (version << 12) | buffer of the newest complete value; 0 = none
///      8    8 layout_version      LAYOUT_VERSION
///     16    8 max_value           bytes, 1..=MAX_VALUE
///     24    8 max_writers         1..=MAX_WRITERS
///     32    8 buffers_per_writer  BUFFERS_PER_WRITER
///     40    8 next_version        the last version handed to a writer (a ticket counter)
///     48   80 padding
/// ```
#[repr(C)]
pub(crate) struct Control {
    /// The newest complete value, see the module docs. Writers CAS it
    /// (Release) only upwards in version; readers load it with Acquire.
    pub(crate) current: AtomicU64,
    /// Written by the creator before the segment is published; read once
    /// by openers and validated.
    pub(crate) layout_version: AtomicU64,
    /// See `layout_version`.
    pub(crate) max_value: AtomicU64,
    /// See `layout_version`.
    pub(crate) max_writers: AtomicU64,
    /// See `layout_version`.
    pub(crate) buffers_per_writer: AtomicU64,
    /// Writers take their version with `fetch_add(1) + 1` (Relaxed: the
    /// ticket orders writes; `current` carries the synchronisation).
    pub(crate) next_version: AtomicU64,
    _pad: [u8; 80],
}

/// The event line: readers waiting for a new value sleep on it.
///
/// ```text
/// offset size field
///      0    8 event  EventWord (seq, waiters)
///      8  120 padding
/// ```
#[repr(C)]
pub(crate) struct EventLine {
    /// Notified (only when somebody waits) after each published value.
    pub(crate) event: EventWord,
    _pad: [u8; 120],
}

/// Buffer header words, as word indexes from the buffer's start.
pub(crate) const BUF_SEQ: usize = 0;
/// The version of the value the buffer holds (set before `seq` turns even).
pub(crate) const BUF_VERSION: usize = 1;
/// The value's length in bytes.
pub(crate) const BUF_LEN: usize = 2;

#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Control>() == 128);
    assert!(align_of::<Control>() == 8);
    assert!(offset_of!(Control, current) == 0);
    assert!(offset_of!(Control, layout_version) == 8);
    assert!(offset_of!(Control, max_value) == 16);
    assert!(offset_of!(Control, max_writers) == 24);
    assert!(offset_of!(Control, buffers_per_writer) == 32);
    assert!(offset_of!(Control, next_version) == 40);
    assert!(size_of::<EventLine>() == 128);
    assert!(offset_of!(EventLine, event) == 0);
    assert!(EVENT_OFFSET as usize == size_of::<Control>());
    assert!(SLOTS_OFFSET == EVENT_OFFSET + 128);
    assert!(MAX_WRITERS * BUFFERS_PER_WRITER <= LOC_MASK as u32);
};

/// A validated geometry: everything an offset is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Largest value in bytes.
    pub(crate) max_value: usize,
    /// Writer slots.
    pub(crate) max_writers: u32,
    /// Bytes from one buffer's start to the next.
    pub(crate) stride: u64,
}

impl Geometry {
    /// The geometry of a new slot, or why not.
    pub(crate) fn new(max_value: usize, max_writers: u32) -> Result<Geometry, String> {
        if max_value == 0 || max_value > MAX_VALUE {
            return Err(format!(
                "max_value {max_value} is out of range: 1 to {MAX_VALUE} bytes"
            ));
        }
        if max_writers == 0 || max_writers > MAX_WRITERS {
            return Err(format!(
                "max_writers {max_writers} is out of range: 1 to {MAX_WRITERS}"
            ));
        }
        let stride = BUFFER_HEADER + (max_value as u64).div_ceil(64) * 64;
        Ok(Geometry {
            max_value,
            max_writers,
            stride,
        })
    }

    /// The geometry read from a slot's control line (every field a
    /// process with write access may have changed), checked against the
    /// data region's real length `data_len`.
    pub(crate) fn from_control(
        layout_version: u64,
        max_value: u64,
        max_writers: u64,
        buffers_per_writer: u64,
        data_len: u64,
    ) -> Result<Geometry, String> {
        if layout_version != LAYOUT_VERSION {
            return Err(format!(
                "layout version {layout_version}, this build reads {LAYOUT_VERSION}"
            ));
        }
        if buffers_per_writer != u64::from(BUFFERS_PER_WRITER) {
            return Err(format!(
                "{buffers_per_writer} buffers per writer, expected {BUFFERS_PER_WRITER}"
            ));
        }
        let max_value = usize::try_from(max_value).unwrap_or(usize::MAX);
        let max_writers = u32::try_from(max_writers).unwrap_or(u32::MAX);
        let geo = Geometry::new(max_value, max_writers)?;
        if geo.data_len() > data_len {
            return Err(format!(
                "the data region is {data_len} bytes; its geometry needs {}",
                geo.data_len()
            ));
        }
        Ok(geo)
    }

    /// Number of buffers.
    pub(crate) fn buffers(&self) -> u32 {
        self.max_writers * BUFFERS_PER_WRITER
    }

    /// Offset of the first buffer.
    pub(crate) fn buffers_offset(&self) -> u64 {
        SLOTS_OFFSET + SLOT_SIZE * u64::from(self.max_writers)
    }

    /// Offset of buffer `b` (any `b < buffers()`).
    pub(crate) fn buffer_offset(&self, b: u32) -> u64 {
        self.buffers_offset() + self.stride * u64::from(b)
    }

    /// Bytes of the data region (at most about 770 GiB: 768 buffers of
    /// 1 GiB; fits a u64 and the segment limit of 1 TiB).
    pub(crate) fn data_len(&self) -> u64 {
        self.buffer_offset(self.buffers())
    }

    /// Words of the data region from [`SLOTS_OFFSET`] on (writer slots and
    /// buffers), the slice the protocol indexes.
    pub(crate) fn words(&self) -> usize {
        ((self.data_len() - SLOTS_OFFSET) / 8) as usize
    }

    /// Word index (into that slice) of writer slot `w`'s word.
    pub(crate) fn slot_word(&self, w: u32) -> usize {
        ((SLOT_SIZE * u64::from(w)) / 8) as usize
    }

    /// Word index of buffer `b`'s first header word.
    pub(crate) fn buffer_word(&self, b: u32) -> usize {
        ((self.buffer_offset(b) - SLOTS_OFFSET) / 8) as usize
    }

    /// Words of value data in a buffer.
    #[cfg(test)]
    pub(crate) fn value_words(&self) -> usize {
        self.max_value.div_ceil(8)
    }
}

/// Packs a version and a buffer into a `current` word.
pub(crate) fn pack(version: u64, buffer: u32) -> u64 {
    debug_assert!(version <= MAX_VERSION && u64::from(buffer) <= LOC_MASK);
    (version << LOC_BITS) | u64::from(buffer)
}

/// Unpacks a `current` word: (version, buffer). The buffer is unchecked.
pub(crate) fn unpack(current: u64) -> (u64, u32) {
    (current >> LOC_BITS, (current & LOC_MASK) as u32)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn geometry_offsets() {
        let g = Geometry::new(1024, 4).unwrap();
        assert_eq!(g.stride, 64 + 1024);
        assert_eq!(g.buffers(), 12);
        assert_eq!(g.buffers_offset(), 256 + 4 * 128);
        assert_eq!(g.buffer_offset(1), 768 + 1088);
        assert_eq!(g.data_len(), 768 + 12 * 1088);
        assert_eq!(g.buffer_word(0), (768 - 256) / 8);
        assert_eq!(g.slot_word(3), 48);
        assert_eq!(g.value_words(), 128);
        let odd = Geometry::new(1, 1).unwrap();
        assert_eq!(odd.stride, 128);
        assert_eq!(odd.value_words(), 1);
    }

    #[test]
    fn geometry_refuses_what_it_cannot_hold() {
        assert!(Geometry::new(0, 1).is_err());
        assert!(Geometry::new(MAX_VALUE + 1, 1).is_err());
        assert!(Geometry::new(8, 0).is_err());
        assert!(Geometry::new(8, MAX_WRITERS + 1).is_err());
        let g = Geometry::new(100, 2).unwrap();
        let ok = |lv, mv, mw, b, len| Geometry::from_control(lv, mv, mw, b, len);
        assert_eq!(ok(1, 100, 2, 3, g.data_len()), Ok(g));
        assert!(ok(2, 100, 2, 3, g.data_len()).is_err());
        assert!(ok(1, 100, 2, 4, g.data_len()).is_err());
        assert!(ok(1, 100, 2, 3, g.data_len() - 1).is_err());
        assert!(ok(1, u64::MAX, 2, 3, u64::MAX).is_err());
        assert!(ok(1, 100, u64::MAX, 3, u64::MAX).is_err());
        // The largest geometry still has a representable size.
        let big = Geometry::new(MAX_VALUE, MAX_WRITERS).unwrap();
        assert!(big.data_len() < crate::segment::header::MAX_DATA_LEN);
    }

    #[test]
    fn current_packs_version_and_buffer() {
        assert_eq!(unpack(pack(5, 7)), (5, 7));
        assert_eq!(
            unpack(pack(MAX_VERSION, LOC_MASK as u32)),
            (MAX_VERSION, 4095)
        );
        assert_eq!(pack(1, 0), 4096);
    }
}

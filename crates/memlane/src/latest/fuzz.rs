//! The fuzz entry point of the latest-value slot's decoder (re-exported by
//! [`crate::fuzzing`]): the control words validated on open, then reads
//! and a write over a heap image of arbitrary words.

use super::layout::{Geometry, BUFFERS_PER_WRITER, LAYOUT_VERSION, SLOTS_OFFSET};
use super::protocol::{HeapSlot, ReadFail, WriterState, Written};
use crate::sync::{Barrier, Futex, Ordering};

/// The largest image built (bytes of the data region).
const MAX_IMAGE: u64 = 1 << 16;

/// Reads a native-endian `u64` at `off`, or 0 past the end of `b`.
fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_ne_bytes(a)
}

/// A futex that never sleeps (reads and writes only notify).
struct NoFutex;

impl Futex for NoFutex {
    fn wait(&self, _: &crate::sync::AtomicU32, _: u32, _: Option<std::time::Duration>) {}
    fn wake_all(&self, _: &crate::sync::AtomicU32, _: u32, _: u32) {}
}

/// Input: words 0..4 are the control words an opener validates
/// (layout version, max_value, max_writers, buffers per writer), word 4 the
/// data length, word 5 `current`, word 6 `next_version`, word 7 picks the
/// writer slot; the rest fills the writer slots and buffers (cycled). If
/// the geometry is accepted (and its image is at most 64 KiB), reads the
/// value, writes one and reads again, checking what a read promises: a
/// value of at most `max_value` bytes with the version `current` named.
/// Returns how many reads returned a value.
pub fn latest_slot(bytes: &[u8]) -> usize {
    let Ok(geo) = Geometry::from_control(
        u64_at(bytes, 0),
        u64_at(bytes, 8),
        u64_at(bytes, 16),
        u64_at(bytes, 24),
        u64_at(bytes, 32),
    ) else {
        return 0;
    };
    if geo.data_len() > MAX_IMAGE {
        return 0;
    }
    let slot = HeapSlot::new(geo);
    slot.current.store(u64_at(bytes, 40), Ordering::Relaxed);
    slot.next_version
        .store(u64_at(bytes, 48), Ordering::Relaxed);
    let fill = bytes.get(64..).unwrap_or(&[]);
    if fill.len() >= 8 {
        for (i, w) in slot.words.iter().enumerate() {
            let at = (i * 8) % (fill.len() - fill.len() % 8);
            w.store(u64_at(fill, at), Ordering::Relaxed);
        }
    }
    let view = slot.view();
    let mut out = Vec::new();
    let mut got = 0;
    let mut check = |r: Result<Option<u64>, ReadFail>, out: &Vec<u8>| match r {
        Ok(Some(v)) => {
            assert!(out.len() <= geo.max_value, "a read longer than max_value");
            assert_ne!(v, 0);
            got += 1;
        }
        Ok(None) => assert!(out.is_empty()),
        Err(_) => {}
    };
    check(view.read(&mut out), &out);
    let writer = (u64_at(bytes, 56) % u64::from(geo.max_writers)) as u32;
    let mut state = WriterState {
        slot: writer,
        next: (u64_at(bytes, 56) >> 32) as u32 % BUFFERS_PER_WRITER,
    };
    let value: Vec<u8> = (0..geo.max_value.min(40)).map(|i| i as u8).collect();
    if let Ok(Written::Published(v)) = view.write(&mut state, &value, &NoFutex, Barrier::Fences) {
        // Nothing else writes: the value just published is what a read
        // returns, whatever the other words hold.
        let r = view.read(&mut out);
        assert_eq!(r, Ok(Some(v)), "a published value is not read back");
        assert_eq!(out, value);
        got += 1;
    }
    got
}

/// An input [`latest_slot`] accepts: 100-byte values, 2 writers, current
/// naming buffer 4 at version 3, whose words hold that value.
pub fn latest_slot_seed() -> Vec<u8> {
    let geo = Geometry::new(100, 2).expect("a valid geometry");
    let mut b = Vec::new();
    for w in [LAYOUT_VERSION, 100, 2, u64::from(BUFFERS_PER_WRITER)] {
        b.extend_from_slice(&w.to_ne_bytes());
    }
    b.extend_from_slice(&geo.data_len().to_ne_bytes());
    b.extend_from_slice(&((3u64 << 12) | 4).to_ne_bytes());
    b.extend_from_slice(&3u64.to_ne_bytes());
    b.extend_from_slice(&1u64.to_ne_bytes());
    let mut words = vec![0u64; geo.words()];
    let h = geo.buffer_word(4);
    words[h] = 2; // seq: even
    words[h + 1] = 3; // version
    words[h + 2] = 11; // len
    words[h + 8] = u64::from_ne_bytes(*b"hello, w");
    words[h + 9] = u64::from_ne_bytes(*b"orld\0\0\0\0");
    for w in words {
        b.extend_from_slice(&w.to_ne_bytes());
    }
    debug_assert_eq!(b.len() as u64, 64 + geo.data_len() - SLOTS_OFFSET);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_is_read_then_written_over() {
        assert_eq!(latest_slot(&latest_slot_seed()), 2);
        assert_eq!(latest_slot(&[]), 0);
    }
}

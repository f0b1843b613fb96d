//! The latest-value protocol: several writers, any number of readers, a
//! seqlock per buffer and one `current` word. Written against the atomics
//! shim ([`crate::sync`]) and a slice of words, so the same code runs on a
//! mapping, under loom and under Miri.
//!
//! # Writer (slot `w`, which it holds by its liveness lock)
//!
//! 1. `v = next_version.fetch_add(1) + 1` — its ticket: writes are ordered
//!    by ticket, the highest published one wins.
//! 2. Pick one of its own [`BUFFERS_PER_WRITER`] buffers that `current` does
//!    not name (only this writer publishes its buffers, so the choice
//!    stays right while it writes).
//! 3. Seqlock write: `seq` to the next odd value (Relaxed), `fence(Release)`,
//!    then `version = v`, `len`, the value's words (all Relaxed), then `seq`
//!    to the following even value (Release). `seq` only grows, also over a
//!    dead predecessor's odd value.
//! 4. Publish: CAS `current` from any `(u, _)` with `u < v` to `(v, b)`
//!    (Release, pairs with the reader's Acquire load); if `current` already
//!    holds a higher version, this value was superseded and is never seen.
//! 5. Notify: `fence(SeqCst)` and a load of the event's waiter count; a
//!    futex wake only if somebody waits (see `sync::event_word`).
//!
//! A writer killed anywhere leaves `current` on a complete value: it only
//! ever names buffers whose `seq` went even after their last store.
//!
//! # Reader (Boehm's seqlock read, bounded)
//!
//! `current` (Acquire) → `(v, b)`; check `b` is a buffer; `s1 = seq`
//! (Acquire), which must be even; `version` and `len` (Relaxed), which must
//! be `v` and at most `max_value`; copy the words (Relaxed); `fence(Acquire)`;
//! `seq` again (Relaxed): equal to `s1` means no writer touched the buffer
//! during the copy (a writer's odd store is ordered before its data stores by
//! its Release fence). Otherwise retry from `current`, at most
//! [`READ_ATTEMPTS`] times; a stable buffer whose length is out of range is
//! corruption, reported at once. A hostile writer can make a read fail,
//! never loop for good nor read outside the buffer.

use super::layout::{
    pack, unpack, Geometry, BUFFERS_PER_WRITER, BUFFER_HEADER, BUF_LEN, BUF_SEQ, BUF_VERSION,
    MAX_VERSION,
};
use crate::sync::event_word::EventWord;
use crate::sync::{fence, AtomicU64, Barrier, Futex, Ordering};

/// Attempts of one read before it reports [`ReadFail::Contended`]. A
/// legitimate writer makes an attempt fail only by completing two writes
/// during one copy, so this is reached only by a writer that breaks the
/// protocol (or stops mid-write forever, holding the only valid buffer).
pub(crate) const READ_ATTEMPTS: u32 = 1024;

/// Word offset of a buffer's value from the buffer's first word.
const DATA_WORD: usize = (BUFFER_HEADER / 8) as usize;

/// The shared words of one latest-value slot.
pub(crate) struct View<'a> {
    /// The validated geometry.
    pub(crate) geo: Geometry,
    /// `Control::current`.
    pub(crate) current: &'a AtomicU64,
    /// `Control::next_version`.
    pub(crate) next_version: &'a AtomicU64,
    /// The "value changed" event.
    pub(crate) event: &'a EventWord,
    /// The writer slots and buffers, `geo.words()` words from `SLOTS_OFFSET`.
    pub(crate) words: &'a [AtomicU64],
}

/// A writer's own state (it lives in the writer's process).
#[derive(Debug)]
pub(crate) struct WriterState {
    /// The writer slot it holds.
    pub(crate) slot: u32,
    /// The buffer (0..BUFFERS_PER_WRITER) it writes next.
    pub(crate) next: u32,
}

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// `current` now names it, with this version.
    Published(u64),
    /// A write with a higher version was published first: this one is
    /// ordered before it and never read.
    Superseded(u64),
}

/// Why a write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteFail {
    /// Every version number is used.
    VersionsExhausted,
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadFail {
    /// `current` names a buffer that does not exist.
    BadBuffer(u32),
    /// A stable buffer of the right version claims more than `max_value`.
    BadLength(u64),
    /// [`READ_ATTEMPTS`] copies were each changed while being taken.
    Contended,
}

impl View<'_> {
    #[inline]
    fn word(&self, i: usize) -> &AtomicU64 {
        // Indexes come from the validated geometry (a slot < max_writers,
        // a buffer < buffers()): a miss would be a bug here, not bad bytes.
        &self.words[i]
    }

    /// The current word, unpacked: (version, buffer); version 0 = no value.
    #[inline]
    pub(crate) fn current(&self) -> (u64, u32) {
        unpack(self.current.load(Ordering::Acquire))
    }

    /// The version of the newest value (0 while nothing was written).
    #[inline]
    pub(crate) fn version(&self) -> u64 {
        self.current().0
    }

    /// Writer slot `w`'s word.
    pub(crate) fn slot(&self, w: u32) -> &AtomicU64 {
        assert!(w < self.geo.max_writers);
        self.word(self.geo.slot_word(w))
    }

    /// Writes `value` (at most `max_value` bytes: the caller checks) as the
    /// writer of `state.slot`, publishes it and wakes waiters.
    pub(crate) fn write(
        &self,
        state: &mut WriterState,
        value: &[u8],
        futex: &impl Futex,
        barrier: Barrier,
    ) -> Result<Written, WriteFail> {
        assert!(value.len() <= self.geo.max_value && state.slot < self.geo.max_writers);
        let v = self
            .next_version
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        if v == 0 || v > MAX_VERSION {
            // Keep the counter pinned past the end, whatever others add.
            self.next_version.store(u64::MAX / 2, Ordering::Relaxed);
            return Err(WriteFail::VersionsExhausted);
        }
        let (named_version, named) = self.current();
        let first = state.slot * BUFFERS_PER_WRITER;
        let mut b = first + state.next;
        if named_version != 0 && b == named {
            state.next = (state.next + 1) % BUFFERS_PER_WRITER;
            b = first + state.next;
        }
        state.next = (state.next + 1) % BUFFERS_PER_WRITER;

        let h = self.geo.buffer_word(b);
        let seq = self.word(h + BUF_SEQ);
        let s = seq.load(Ordering::Relaxed);
        // The next odd value; past a dead writer's odd one, the one after.
        let odd = if s & 1 == 1 {
            s.wrapping_add(2)
        } else {
            s.wrapping_add(1)
        };
        seq.store(odd, Ordering::Relaxed);
        // Orders the odd seq before every data store below (pairs with the
        // reader's fence(Acquire) before its second seq load).
        fence(Ordering::Release);
        self.word(h + BUF_VERSION).store(v, Ordering::Relaxed);
        self.word(h + BUF_LEN)
            .store(value.len() as u64, Ordering::Relaxed);
        let data = h + DATA_WORD;
        let mut chunks = value.chunks_exact(8);
        let mut i = 0;
        for c in &mut chunks {
            let w = u64::from_ne_bytes(c.try_into().expect("8 bytes"));
            self.word(data + i).store(w, Ordering::Relaxed);
            i += 1;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(data + i)
                .store(u64::from_ne_bytes(last), Ordering::Relaxed);
        }
        // A writer killed or stopped here leaves this buffer odd and
        // unpublished (tests: `MEMLANE_FAULT=latest_mid_write:n`).
        crate::fault::point("latest_mid_write");
        // Release: a reader whose Acquire load sees this even value sees
        // every store above.
        seq.store(odd.wrapping_add(1), Ordering::Release);

        let mut cur = self.current.load(Ordering::Relaxed);
        let written = loop {
            if unpack(cur).0 >= v {
                break Written::Superseded(v);
            }
            // Release: pairs with the reader's Acquire load of `current`.
            match self.current.compare_exchange_weak(
                cur,
                pack(v, b),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break Written::Published(v),
                Err(now) => cur = now,
            }
        };
        if let Written::Published(_) = written {
            self.event.notify_waiters(futex, barrier);
        }
        Ok(written)
    }

    /// Copies the newest complete value into `out` (replacing its contents)
    /// and returns its version, or `None` while nothing was written.
    pub(crate) fn read(&self, out: &mut Vec<u8>) -> Result<Option<u64>, ReadFail> {
        for _ in 0..READ_ATTEMPTS {
            let (v, b) = self.current();
            if v == 0 {
                out.clear();
                return Ok(None);
            }
            if b >= self.geo.buffers() {
                return Err(ReadFail::BadBuffer(b));
            }
            let h = self.geo.buffer_word(b);
            let seq = self.word(h + BUF_SEQ);
            let s1 = seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let version = self.word(h + BUF_VERSION).load(Ordering::Relaxed);
                let len = self.word(h + BUF_LEN).load(Ordering::Relaxed);
                let fits = len <= self.geo.max_value as u64;
                if version == v && fits {
                    self.copy_out(h + DATA_WORD, len as usize, out);
                }
                // Orders the loads above before the second seq load.
                fence(Ordering::Acquire);
                if seq.load(Ordering::Relaxed) == s1 && version == v {
                    if fits {
                        return Ok(Some(v));
                    }
                    return Err(ReadFail::BadLength(len));
                }
            }
            crate::sync::spin_loop();
        }
        out.clear();
        Err(ReadFail::Contended)
    }

    fn copy_out(&self, first: usize, len: usize, out: &mut Vec<u8>) {
        out.clear();
        out.resize(len, 0);
        let mut chunks = out.chunks_exact_mut(8);
        let mut i = first;
        for c in &mut chunks {
            c.copy_from_slice(&self.word(i).load(Ordering::Relaxed).to_ne_bytes());
            i += 1;
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let w = self.word(i).load(Ordering::Relaxed).to_ne_bytes();
            let n = rest.len();
            rest.copy_from_slice(&w[..n]);
        }
    }
}

/// A heap image of a slot's shared words, for the loom models, the Miri
/// tests and the fuzz target.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) struct HeapSlot {
    pub(crate) geo: Geometry,
    pub(crate) current: AtomicU64,
    pub(crate) next_version: AtomicU64,
    pub(crate) event: EventWord,
    pub(crate) words: Vec<AtomicU64>,
}

#[cfg(any(test, feature = "fuzzing"))]
impl HeapSlot {
    /// A zeroed slot of geometry `geo`.
    pub(crate) fn new(geo: Geometry) -> HeapSlot {
        HeapSlot {
            geo,
            current: AtomicU64::new(0),
            next_version: AtomicU64::new(0),
            event: EventWord {
                seq: crate::sync::AtomicU32::new(0),
                waiters: crate::sync::AtomicU32::new(0),
            },
            words: (0..geo.words()).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Its view.
    pub(crate) fn view(&self) -> View<'_> {
        View {
            geo: self.geo,
            current: &self.current,
            next_version: &self.next_version,
            event: &self.event,
            words: &self.words,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! The protocol on a heap image, with threads (also run under Miri).
    use super::*;
    use crate::sync::OsFutex;
    use std::sync::Arc;

    fn value(v: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| v.wrapping_add(i as u8)).collect()
    }

    fn writer(slot: u32) -> WriterState {
        WriterState { slot, next: 0 }
    }

    #[test]
    fn empty_then_each_write_is_read_back() {
        let h = HeapSlot::new(Geometry::new(20, 2).unwrap());
        let view = h.view();
        let mut out = vec![1, 2, 3];
        assert_eq!(view.read(&mut out), Ok(None));
        assert!(out.is_empty());
        let mut w = writer(1);
        for (n, len) in [0usize, 1, 7, 8, 9, 20, 3].into_iter().enumerate() {
            let val = value(n as u8, len);
            let got = view.write(&mut w, &val, &OsFutex, Barrier::Fences);
            assert_eq!(got, Ok(Written::Published(n as u64 + 1)));
            assert_eq!(view.read(&mut out), Ok(Some(n as u64 + 1)));
            assert_eq!(out, val);
        }
    }

    #[test]
    fn a_lower_ticket_never_replaces_a_higher_one() {
        let h = HeapSlot::new(Geometry::new(8, 2).unwrap());
        let view = h.view();
        h.next_version.store(10, Ordering::Relaxed);
        h.current.store(pack(20, 0), Ordering::Relaxed);
        let got = view.write(&mut writer(1), b"late", &OsFutex, Barrier::Fences);
        assert_eq!(got, Ok(Written::Superseded(11)));
        assert_eq!(view.version(), 20);
    }

    #[test]
    fn a_writer_never_overwrites_the_buffer_current_names() {
        let h = HeapSlot::new(Geometry::new(8, 1).unwrap());
        let view = h.view();
        // A dead predecessor's last published value sits in buffer 0,
        // which is where a new writer's round starts.
        h.current.store(pack(1, 0), Ordering::Relaxed);
        h.next_version.store(1, Ordering::Relaxed);
        let mut w = writer(0);
        view.write(&mut w, b"new", &OsFutex, Barrier::Fences)
            .unwrap();
        assert_eq!(view.current(), (2, 1));
    }

    #[test]
    fn a_dead_writers_odd_seq_is_passed_not_reused() {
        let geo = Geometry::new(8, 1).unwrap();
        let h = HeapSlot::new(geo);
        let view = h.view();
        let seq = geo.buffer_word(0) + BUF_SEQ;
        h.words[seq].store(7, Ordering::Relaxed);
        view.write(&mut writer(0), b"x", &OsFutex, Barrier::Fences)
            .unwrap();
        assert_eq!(h.words[seq].load(Ordering::Relaxed), 10);
    }

    #[test]
    fn bad_shared_words_are_errors_not_panics() {
        let geo = Geometry::new(16, 1).unwrap();
        let h = HeapSlot::new(geo);
        let view = h.view();
        let mut out = Vec::new();
        h.current.store(pack(3, 3), Ordering::Relaxed);
        assert_eq!(view.read(&mut out), Err(ReadFail::BadBuffer(3)));
        h.current.store(pack(3, 4095), Ordering::Relaxed);
        assert_eq!(view.read(&mut out), Err(ReadFail::BadBuffer(4095)));
        // A stable buffer of the right version with a length past max.
        let b = geo.buffer_word(1);
        h.current.store(pack(3, 1), Ordering::Relaxed);
        h.words[b + BUF_VERSION].store(3, Ordering::Relaxed);
        h.words[b + BUF_LEN].store(17, Ordering::Relaxed);
        assert_eq!(view.read(&mut out), Err(ReadFail::BadLength(17)));
        h.words[b + BUF_LEN].store(u64::MAX, Ordering::Relaxed);
        assert_eq!(view.read(&mut out), Err(ReadFail::BadLength(u64::MAX)));
        // A buffer that never holds the named version, or stays odd.
        h.words[b + BUF_VERSION].store(2, Ordering::Relaxed);
        assert_eq!(view.read(&mut out), Err(ReadFail::Contended));
        h.words[b + BUF_VERSION].store(3, Ordering::Relaxed);
        h.words[b + BUF_LEN].store(4, Ordering::Relaxed);
        h.words[b + BUF_SEQ].store(5, Ordering::Relaxed);
        assert_eq!(view.read(&mut out), Err(ReadFail::Contended));
        assert!(out.is_empty());
        h.words[b + BUF_SEQ].store(6, Ordering::Relaxed);
        assert_eq!(view.read(&mut out), Ok(Some(3)));
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn versions_run_out_with_an_error() {
        let h = HeapSlot::new(Geometry::new(8, 1).unwrap());
        let view = h.view();
        h.next_version.store(MAX_VERSION, Ordering::Relaxed);
        let mut w = writer(0);
        assert_eq!(
            view.write(&mut w, b"a", &OsFutex, Barrier::Fences),
            Err(WriteFail::VersionsExhausted)
        );
        assert_eq!(
            view.write(&mut w, b"a", &OsFutex, Barrier::Fences),
            Err(WriteFail::VersionsExhausted)
        );
        assert_eq!(view.version(), 0);
    }

    /// Two writers and two readers race; every value read is one that was
    /// written whole (its bytes all derive from its first), versions never
    /// go back, and the last value read is the last published.
    #[test]
    fn racing_writers_and_readers_never_see_a_torn_value() {
        let rounds: u32 = if cfg!(miri) { 30 } else { 20_000 };
        let h = Arc::new(HeapSlot::new(Geometry::new(40, 2).unwrap()));
        let writers: Vec<_> = (0..2u32)
            .map(|slot| {
                let h = Arc::clone(&h);
                std::thread::spawn(move || {
                    let mut w = writer(slot);
                    for r in 0..rounds {
                        let len = 8 + (r as usize % 33);
                        let val = value((r as u8).wrapping_mul(3).wrapping_add(slot as u8), len);
                        h.view()
                            .write(&mut w, &val, &OsFutex, Barrier::Fences)
                            .unwrap();
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let h = Arc::clone(&h);
                std::thread::spawn(move || {
                    let mut out = Vec::new();
                    let mut last = 0;
                    for _ in 0..rounds {
                        if let Some(v) = h.view().read(&mut out).unwrap() {
                            assert!(v >= last, "version went back: {v} after {last}");
                            last = v;
                            assert_eq!(out, value(out[0], out.len()), "torn at version {v}");
                        }
                    }
                })
            })
            .collect();
        for t in writers.into_iter().chain(readers) {
            t.join().unwrap();
        }
        let mut out = Vec::new();
        let v = h.view().read(&mut out).unwrap().unwrap();
        // The highest ticket is always published (nothing can supersede it).
        assert_eq!(v, h.next_version.load(Ordering::Relaxed));
        assert_eq!(v, 2 * u64::from(rounds));
    }
}

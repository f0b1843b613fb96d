//! The ring protocol: many publishers, many subscribers, nothing lost.
//!
//! Positions are byte counters (`u64`, wrapping) that only grow; a
//! position's place in the ring is `position & (capacity - 1)`.
//!
//! **Publish.** A publisher needs `total` bytes (its record, plus a pad
//! record when the record would cross the end of the ring):
//!
//! 1. `h = claim.load(Acquire)`; it *fits* if `h + total - min <= capacity`,
//!    where `min` is the lowest position of the ACTIVE subscribers.
//!    Publishers cache `min` together with the `sub_gen` value loaded
//!    (Acquire) before the scan, and whether the scan saw a CLAIMED slot;
//!    they rescan only when the cached value says "full".
//! 2. `claim.compare_exchange(h, h + total, SeqCst)` reserves `[h, h+total)`.
//! 3. `sub_gen.load(SeqCst)`: if it changed since the scan,
//!    or the scan saw a subscriber mid-join, that subscriber might not be
//!    counted; rescan (waiting while any slot is CLAIMED) until the
//!    reserved bytes fit for everyone.
//! 4. Write the payload, then `meta` (len | flags << 32, Relaxed), then
//!    `stamp = position ^ STAMP_KEY` (Release; pairs with the subscriber's
//!    Acquire load of the stamp, which makes payload and meta visible).
//! 5. A large record sent after an idle spell: demote its lines to the
//!    shared cache (a hint, no effect on values; see `demote_lines`).
//! 6. `data_event.notify_waiters()`: a fence and one load when nobody sleeps.
//!
//! With one publisher slot and membarrier (`Geometry::single_writer`) step 2
//! is a plain store ordered by the light barrier, and the common case of a
//! copying send (no pad, room by the cached bound, no join or wait pending)
//! runs steps 1–6 in one straight run of code, [`send_single`].
//!
//! **Subscribe.** A joining subscriber: CAS its slot FREE → CLAIMED,
//! `sub_gen.fetch_add(1, SeqCst)`, `p = claim.load(SeqCst)`,
//! `position = p`, state = ACTIVE (Release). It receives every record
//! claimed at or after `p`. In the single total order of SeqCst
//! operations, if the publisher's CAS comes before the subscriber's claim
//! load, that load sees the claim (the record is before `p`: not for this
//! subscriber); otherwise the subscriber's increment comes before the
//! publisher's `sub_gen` load, which sees it, and step 3 waits. (Under
//! loom the pair is written with SeqCst fences; see `JOIN_RMW`.) A
//! publisher whose scan loaded `sub_gen` after the increment sees the slot
//! CLAIMED or ACTIVE (the increment is a Release after the CAS), so it
//! either counts the subscriber or takes step 3's slow path.
//!
//! **Consume.** At its position `p` a subscriber loads the stamp at
//! `p & mask` (Acquire). Equal to `p ^ STAMP_KEY`: committed; it reads
//! `meta`, validates the length against `max_message` and the ring end
//! (never trusting it), reads the payload, then stores
//! `position = p + record_size` (Release; pairs with the publishers'
//! Acquire position loads, so they never overwrite bytes still being
//! read) and notifies the space event if a publisher sleeps. Anything
//! else: empty (or, for a stamp from a later lap, corrupt).

use std::time::{Duration, Instant};

use super::layout::{
    pinned_cpu_hint, record_size, Geometry, JoinLine, PubSlot, SubSlot, FLAG_DISCARD, FLAG_PAD,
    KNOWN_FLAGS, RECORD_HEADER, SLOT_ACTIVE, SLOT_CLAIMED, SLOT_FREE, SLOT_LOSSY, STAMP_KEY,
};
use crate::error::{Corrupt, JoinError};
use crate::sync::event_word::{EventWord, SpinCheck};
use crate::sync::fence;
#[cfg(doc)]
use crate::sync::Barrier;
use crate::sync::{AtomicU64, Futex, Ordering};

// The join handshake (step 3 of "Publish" and "Subscribe" above) is a
// Dekker pair: each side does a read-modify-write, then loads the word the
// other side modifies. In production both are SeqCst accesses: in the
// single total order either the publisher's claim CAS precedes the
// joiner's claim load (which then sees it), or the joiner's `sub_gen`
// increment precedes the publisher's `sub_gen` load. On x86-64 a SeqCst RMW
// is the same `lock` instruction as AcqRel and a SeqCst load a plain load,
// so this costs nothing, where a separate `fence(SeqCst)` is an `mfence`.
// Under loom, which models SeqCst accesses only as AcqRel but SeqCst fences
// exactly, the same pair is written with fences.
#[cfg(not(loom))]
const JOIN_RMW: Ordering = Ordering::SeqCst;
#[cfg(not(loom))]
const JOIN_LOAD: Ordering = Ordering::SeqCst;
#[cfg(not(loom))]
#[inline(always)]
fn join_fence() {}
#[cfg(loom)]
const JOIN_RMW: Ordering = Ordering::AcqRel;
#[cfg(loom)]
const JOIN_LOAD: Ordering = Ordering::Acquire;
#[cfg(loom)]
fn join_fence() {
    fence(Ordering::SeqCst);
}

/// Access to a channel's shared memory.
pub(crate) trait RingMem {
    /// The futex implementation.
    type F: Futex;
    /// The futex.
    fn futex(&self) -> &Self::F;
    /// The validated local geometry.
    fn geometry(&self) -> &Geometry;
    /// The claim counter.
    fn claim(&self) -> &AtomicU64;
    /// The join line.
    fn join(&self) -> &JoinLine;
    /// Publishers → subscribers.
    fn data_event(&self) -> &EventWord;
    /// Subscribers → publishers.
    fn space_event(&self) -> &EventWord;
    /// Publisher slot `i < max_publishers`.
    fn pub_slot(&self, i: u32) -> &PubSlot;
    /// Subscriber slot `i < max_subscribers`.
    fn sub_slot(&self, i: u32) -> &SubSlot;
    /// The stamp word of the record at ring offset `off` (16-aligned, `< capacity`).
    fn stamp(&self, off: u64) -> &AtomicU64;
    /// The meta word of the record at ring offset `off`.
    fn meta(&self, off: u64) -> &AtomicU64;
    /// Called now and then by a publisher that cannot make progress (a
    /// subscriber mid-join for long): the place to reclaim dead endpoints.
    fn on_stuck(&self) {}
    /// Hints that the ring line holding offset `off` (`< capacity`), just
    /// written, will next be read by another core: moves it from this
    /// core's private caches to the shared one (`CLDEMOTE` on x86-64), so
    /// that the reader does not have to snoop it out of this core. Has no
    /// effect on the values; the default does nothing.
    fn demote(&self, _off: u64) {}
    /// Whether [`demote`](Self::demote) does anything here (asked once,
    /// when a publisher joins): where it does not, a publisher skips the
    /// clock read that decides when to demote. The default: no.
    fn demotes(&self) -> bool {
        false
    }
    /// Hints that this core is about to write the ring line holding offset
    /// `off` (`< capacity`): fetches it in a writable state now
    /// (`PREFETCHW` on x86-64), so that the stores before the record's
    /// (the write-ahead record, the claim) do not hold back the fetch of
    /// the line a polling subscriber has in its cache. Has no effect on
    /// the values; the default does nothing.
    fn prefetch_write(&self, _off: u64) {}
    /// Whether [`prefetch_write`](Self::prefetch_write) does anything here
    /// (asked once, when a publisher joins). The default: no.
    fn prefetches(&self) -> bool {
        false
    }
    /// Copies `src` into the ring at `off`.
    ///
    /// # Safety
    ///
    /// `off + src.len() <= capacity`, and the caller holds a claim on those bytes.
    unsafe fn write(&self, off: u64, src: &[u8]);
}

/// How long a sleeper sleeps at most before re-checking on its own.
pub(crate) const RECHECK: Duration = Duration::from_millis(100);

/// Records of at least this many bytes are demoted to the shared cache
/// after their commit when the publisher had been idle (see [`demote_lines`]).
const DEMOTE_MIN_RECORD: u64 = 512;
/// Lines (64 bytes) of a record demoted at most (4 KiB: a whole 1 KiB
/// record gained more than its first few lines; beyond a few KiB the
/// reader's hardware prefetcher streams the rest anyway).
const DEMOTE_LINES: u64 = 64;
/// A publisher that has not committed a large record for this long takes
/// it that its subscribers have caught up and are polling for the next.
const DEMOTE_IDLE: Duration = Duration::from_nanos(700);

/// A publisher's local state.
#[derive(Debug)]
pub(crate) struct PubState {
    pub(crate) slot: u32,
    /// A lower bound of every ACTIVE subscriber's position known at `cached_gen`.
    cached_min: u64,
    cached_gen: u32,
    /// The scan behind `cached_min` saw a subscriber mid-join.
    saw_joining: bool,
    /// This publisher set `want_space` and has not claimed since.
    wants_space: bool,
    /// `Geometry::single_writer`, computed once.
    single_writer: bool,
    /// [`RingMem::demotes`], asked once.
    demotes: bool,
    /// [`RingMem::prefetches`], asked once.
    prefetches: bool,
    /// Where in the ring (an offset) this publisher's next record will
    /// probably start: the end of its last claim. A single writer's guess
    /// is right but after a pad; only a prefetch hint is based on it.
    next_off: u64,
    /// A loan of this publisher's is out (see [`LOAN_OUT`]): its claim is
    /// open, sends take the general path (which settles a leaked loan
    /// first). One byte, stored once when the loan starts and once when it
    /// ends: the claim itself is in the `Loan` (and, should it leak, in
    /// the write-ahead record, see [`own_open_claim`]).
    pub(crate) loan: u8,
    /// Wake-ups held back ([`QUIET_ON`], [`QUIET_OWED`]; 0: each commit
    /// wakes sleeping subscribers): see `Publisher::with_one_wakeup`.
    pub(crate) quiet: u8,
    /// When this publisher last committed a record of `DEMOTE_MIN_RECORD`
    /// bytes or more.
    last_large_commit: Option<Instant>,
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
}

/// Reserved ring space for one record. Two words, so that it travels in
/// registers (a claim returned through memory put a store forward on the
/// way from a send to its commit).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claim {
    /// Position of the record.
    pub(crate) pos: u64,
    /// The payload length (low half) and the size of the pad record
    /// before it in 16-byte units (high half; 0: none). A pad is shorter
    /// than the record after it, which is at most `record_size(u32::MAX)`
    /// bytes, so the units fit.
    len_pad: u64,
}

impl Claim {
    #[inline]
    fn new(pos: u64, len: u32, pad: u64) -> Claim {
        Claim {
            pos,
            len_pad: u64::from(len) | ((pad / 16) << 32),
        }
    }

    /// Ring offset of the record.
    #[inline]
    pub(crate) fn off(&self, g: &Geometry) -> u64 {
        self.pos & g.mask
    }

    /// Payload length.
    #[inline]
    pub(crate) fn len(&self) -> u32 {
        self.len_pad as u32
    }

    /// Position of the pad record before it, if any.
    #[inline]
    fn pad_pos(&self) -> Option<u64> {
        let pad = (self.len_pad >> 32) * 16;
        (pad > 0).then(|| self.pos.wrapping_sub(pad))
    }
}

/// A subscriber's local state.
#[derive(Debug)]
pub(crate) struct SubState {
    pub(crate) slot: u32,
    pub(crate) pos: u64,
    /// The position last stored in the slot (`pos` is published lazily).
    pub(crate) published: u64,
    /// `Geometry::publish_on_catch_up`, computed once.
    pub(crate) publish_on_catch_up: bool,
    /// A release leaves the inline path once this many bytes are
    /// unpublished (see [`release`]): `Geometry::publish_wanted_bytes`,
    /// or 0 (always) when the channel publishes on catch-up.
    pub(crate) check_bytes: u64,
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
}

/// A committed record found at a subscriber's position (`SubState::pos`,
/// which stays there until [`release`]). Two words, so that it travels in
/// registers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    /// Ring offset of the payload.
    pub(crate) payload_off: u64,
    /// Payload length (validated).
    pub(crate) len: u32,
}

/// Result of scanning the subscriber slots (and the publishers' open
/// claims) from head `h`.
struct Scan {
    /// The largest `h - position` over ACTIVE subscribers and claims other
    /// publishers have yet to commit (0 if none).
    max_lag: u64,
    /// Whether some slot is CLAIMED (a subscriber mid-join).
    joining: bool,
}

fn scan<M: RingMem>(m: &M, h: u64) -> Scan {
    let g = m.geometry();
    let mut s = Scan {
        max_lag: 0,
        joining: false,
    };
    for i in 0..g.max_subscribers {
        let slot = m.sub_slot(i);
        match slot.state.load(Ordering::Acquire) {
            SLOT_ACTIVE => {
                let lag = h.wrapping_sub(slot.position.load(Ordering::Acquire));
                // A position ahead of `h` (joined after we loaded `h`)
                // does not constrain us.
                if lag < (1 << 63) && lag > s.max_lag {
                    s.max_lag = lag;
                }
            }
            SLOT_CLAIMED => s.joining = true,
            _ => {}
        }
    }
    // A claim another publisher has yet to commit holds its bytes as a
    // subscriber's position would: no claim may reach a ring past it, or
    // that publisher, once it runs again, would write into the newer
    // record (which lossy subscribers, or a later one from the oldest, may
    // be reading). Without an ACTIVE subscriber nothing else bounds a
    // publisher. Its write-ahead record names the claim (stored before its
    // claim CAS: a claim made before `h` was loaded is seen here); a
    // claim made after is at `h` or beyond, which `fits` bounds anyway.
    for i in 0..g.max_publishers {
        let slot = m.pub_slot(i);
        if slot.state.load(Ordering::Acquire) != SLOT_ACTIVE
            || slot.pending_total.load(Ordering::Acquire) & !PENDING_OWNED == 0
        {
            continue;
        }
        let lag = h.wrapping_sub(slot.pending_pos.load(Ordering::Acquire));
        if lag < (1 << 63) && lag > s.max_lag {
            s.max_lag = lag;
        }
    }
    s
}

#[inline]
fn fits(cap: u64, h: u64, total: u64, min: u64) -> bool {
    let used = h.wrapping_sub(min);
    used < (1 << 63) && used + total <= cap
}

/// Space needed at head `h` for a payload of `len`: (pad, total).
#[inline]
fn space_for(g: &Geometry, h: u64, len: u32) -> (u64, u64) {
    let rec = record_size(u64::from(len));
    let off = h & g.mask;
    let pad = if off + rec > g.capacity {
        g.capacity - off
    } else {
        0
    };
    (pad, pad + rec)
}

#[cfg(loom)]
/// Joins as a publisher.
pub(crate) fn join_publisher<M: RingMem>(m: &M, pid: u32) -> Result<PubState, JoinError> {
    let g = m.geometry();
    (0..g.max_publishers)
        .find_map(|i| take_publisher_slot(m, i, pid))
        .ok_or(JoinError::TooManyPublishers {
            max: g.max_publishers,
        })
}

/// Takes publisher slot `i` if it is FREE.
pub(crate) fn take_publisher_slot<M: RingMem>(m: &M, i: u32, pid: u32) -> Option<PubState> {
    {
        let slot = m.pub_slot(i);
        if slot
            .state
            .compare_exchange(SLOT_FREE, SLOT_ACTIVE, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            slot.pid.store(pid, Ordering::Relaxed);
            slot.messages.store(0, Ordering::Relaxed);
            slot.bytes.store(0, Ordering::Relaxed);
            // No CPU hint until the owner sets its own (a previous owner's
            // would be stale).
            slot.cpu.store(0, Ordering::Relaxed);
            let mut st = PubState {
                slot: i,
                cached_min: 0,
                cached_gen: 0,
                saw_joining: false,
                wants_space: false,
                single_writer: m.geometry().single_writer(),
                demotes: m.demotes(),
                prefetches: m.prefetches(),
                next_off: 0,
                loan: 0,
                last_large_commit: None,
                quiet: 0,
                messages: 0,
                bytes: 0,
            };
            let h = m.claim().load(Ordering::Acquire);
            st.next_off = h & m.geometry().mask;
            rescan(m, &mut st, h);
            return Some(st);
        }
    }
    None
}

/// Leaves as a publisher: folds its counters into the retired totals.
pub(crate) fn leave_publisher<M: RingMem>(m: &M, st: &PubState) {
    let j = m.join();
    j.retired_messages.fetch_add(st.messages, Ordering::Relaxed);
    j.retired_bytes.fetch_add(st.bytes, Ordering::Relaxed);
    let slot = m.pub_slot(st.slot);
    slot.messages.store(0, Ordering::Relaxed);
    slot.bytes.store(0, Ordering::Relaxed);
    slot.pending_total.store(0, Ordering::Relaxed);
    slot.state.store(SLOT_FREE, Ordering::Release);
}

/// Refreshes the cached lower bound of subscriber positions from head `h`.
fn rescan<M: RingMem>(m: &M, st: &mut PubState, h: u64) {
    st.cached_gen = m.join().sub_gen.load(Ordering::Acquire);
    let s = scan(m, h);
    st.cached_min = h.wrapping_sub(s.max_lag);
    st.saw_joining = s.joining;
}

/// Tries to reserve space for a payload of `len` bytes (`len <= max_message`,
/// checked by the caller). `Ok(None)`: the slowest subscriber is a ring behind.
///
/// Inlined into `send`: the common case (the cached bound says it fits,
/// the CAS wins, no subscriber joined) runs straight through; everything
/// else is in cold functions.
///
/// # Errors
///
/// [`Corrupt`] if the claim position is not a multiple of 16: no
/// publisher following the protocol moves it there, and records laid out
/// from it would be misaligned for every subscriber.
#[inline]
pub(crate) fn try_claim<M: RingMem>(
    m: &M,
    st: &mut PubState,
    len: u32,
) -> Result<Option<Claim>, Corrupt> {
    let g = *m.geometry();
    let (single, prefetch) = (st.single_writer, st.prefetches);
    loop {
        let h = m.claim().load(Ordering::Acquire);
        if h % 16 != 0 {
            return Err(misaligned_claim(h));
        }
        let (pad, total) = space_for(&g, h, len);
        if !fits(g.capacity, h, total, st.cached_min) && !refit(m, st, h, total) {
            return Ok(None);
        }
        if prefetch && one_line(h & g.mask, total) {
            // As in `claim_straight`.
            m.prefetch_write(h & g.mask);
        }
        if !claim_at(m, st, single, h, len, total) {
            crate::sync::spin_loop();
            continue;
        }
        st.next_off = h.wrapping_add(total) & g.mask;
        crate::fault::point("after_claim");
        let joined = m.join().sub_gen.load(JOIN_LOAD) != st.cached_gen;
        if joined | st.saw_joining | st.wants_space {
            after_claim(m, st, h, total, joined);
        }
        return Ok(Some(Claim::new(h.wrapping_add(pad), len, pad)));
    }
}

/// Claims `total` bytes at head `h` (a record of `len` payload bytes, after
/// any pad), with the write-ahead record first, so that whoever finds this
/// publisher dead can tell which claim it held (see
/// `repair_dead_publisher`). False when another publisher moved the claim
/// first (the CAS failed; nothing is claimed). `single` is
/// `st.single_writer`, read by the caller before its Acquire load of the
/// claim (after which the compiler would read it again, and keep the CAS
/// path in a single writer's straight path).
#[inline(always)]
fn claim_at<M: RingMem>(m: &M, st: &PubState, single: bool, h: u64, len: u32, total: u64) -> bool {
    if single {
        claim_single(m, st, h, len, total);
        return true;
    }
    let slot = m.pub_slot(st.slot);
    slot.pending_len.store(u64::from(len), Ordering::Relaxed);
    slot.pending_total.store(total, Ordering::Relaxed);
    slot.pending_pos.store(h, Ordering::Release);
    if m.claim()
        .compare_exchange_weak(h, h.wrapping_add(total), JOIN_RMW, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    join_fence();
    // Orders the claim before every byte written into the claimed
    // space: a lossy subscriber that read any of those bytes sees
    // the claim when it checks, after its own Acquire fence, whether
    // it was lapped (`lapped`). A compiler fence on x86-64.
    fence(Ordering::Release);
    // The claim is ours: say so (a dead publisher whose write-ahead
    // record lacks this bit may have lost the CAS to another).
    slot.pending_total
        .store(total | PENDING_OWNED, Ordering::Relaxed);
    true
}

/// A loan's claim of a payload of `len` bytes in the common case: the
/// record fits before the ring's end (no pad), the cached bound says it
/// fits, no join or wait for space is pending, and (with several
/// publishers) the CAS succeeds at the first try. Then it claims exactly
/// as [`try_claim`] would and returns the record's position, a single
/// word, for [`straight_claim`]; otherwise it returns `None` having claimed
/// nothing, and the caller takes the general path.
///
/// Why a second path: the general one returns its claim as a
/// `Result<Option<Claim>, Corrupt>` through memory, stored in 8-byte halves
/// and read back 16 bytes at a time, which the CPU cannot forward from its
/// store buffer. That load then waits until every store before it has
/// left the store buffer, the write-ahead record's and the claim's among
/// them, which wait for lines a subscriber that keeps up is polling: 64 B
/// loans ran at half the throughput of copying sends (issue 15,
/// `docs/benchmarks/`). Loom and the crash tests check this path as they
/// check the general one.
#[inline(always)]
pub(crate) fn claim_straight<M: RingMem>(m: &M, st: &mut PubState, len: usize) -> Option<u64> {
    // Copied before the Acquire load below, after which the compiler would
    // read the fields again.
    let g = *m.geometry();
    let (single, prefetch) = (st.single_writer, st.prefetches);
    if single && prefetch && one_line(st.next_off, record_size(len as u64)) {
        // A single writer's record goes where its last one ended (but after
        // a pad): its line is asked for first thing, before the claim is
        // loaded, so that it travels while the claim is checked and the
        // write-ahead and claim stores are made (see `one_line`).
        m.prefetch_write(st.next_off);
    }
    if len > g.max_message as usize || st.saw_joining | st.wants_space | (st.loan != 0) {
        return None;
    }
    let len = len as u32;
    // Its address too: the stores of the claim would make the compiler
    // read the region's base again.
    let sub_gen = &m.join().sub_gen;
    let h = m.claim().load(Ordering::Acquire);
    let rec = record_size(u64::from(len));
    let off = h & g.mask;
    // A misaligned claim (a peer wrote it) is reported by the general path.
    if off + rec > g.capacity || h % 16 != 0 || !fits(g.capacity, h, rec, st.cached_min) {
        return None;
    }
    if prefetch && !single && one_line(off, rec) {
        // With several publishers the line is known only now: asked for
        // before the write-ahead and claim stores (see `one_line`).
        m.prefetch_write(off);
    }
    if !claim_at(m, st, single, h, len, rec) {
        return None;
    }
    st.next_off = h.wrapping_add(rec) & g.mask;
    crate::fault::point("after_claim");
    if sub_gen.load(JOIN_LOAD) != st.cached_gen {
        after_claim(m, st, h, rec, true);
    }
    Some(h)
}

/// Whether a record of `rec` bytes at ring offset `off` lies in one cache
/// line: then the publisher asks for that line ahead of its stores
/// ([`RingMem::prefetch_write`]): a single writer first thing in its claim,
/// at the offset its last claim ended (`PubState::next_off`), before it
/// even loads the claim (8 B one-way, paired with the floor: median of
/// means 1.229 -> 1.191 in the host's fast state, 1.339 -> 1.285 in its
/// slow one, against the prefetch after the claim's checks); with several
/// publishers after the claim is loaded. Its stamp is written right after its
/// payload, so the line fetched early is still this core's when the stamp
/// goes in. A record over several lines is not prefetched: the polling
/// subscriber takes its first line back while the payload's other lines
/// are written, and the stamp then waits for the line a second time
/// (1 KiB one-way latency 206 -> 230 ns on an AMD EPYC, where 8 B gained;
/// `docs/benchmarks/README.md`).
#[inline(always)]
fn one_line(off: u64, rec: u64) -> bool {
    (off & 63) + rec <= 64
}

/// The [`Claim`] that [`claim_straight`] made at position `h`: a payload of
/// `len` bytes with no pad before it.
#[inline(always)]
pub(crate) fn straight_claim(h: u64, len: usize) -> Claim {
    Claim::new(h, len as u32, 0)
}

/// The error for a claim position that is not a multiple of 16.
#[cold]
#[inline(never)]
fn misaligned_claim(h: u64) -> Corrupt {
    Corrupt::new(format!(
        "the claim position {h} is not a multiple of 16 (a process with write access to the channel wrote it)"
    ))
}

/// The claim of `total` bytes at head `h` (a record of `len` payload bytes)
/// by a channel's single writer, for [`try_claim`] and [`send_single`]:
/// the write-ahead record, so that whoever finds this publisher dead can
/// tell which claim it held (see `repair_dead_publisher`), then the claim.
/// Nobody else moves the claim, so it is sure to be this publisher's own
/// (`PENDING_OWNED` at once; the repair still requires the head to be past
/// the claim). The claim store and the caller's `sub_gen` load after it
/// are the publisher's side of the join pair, ordered by the light barrier
/// (joiners pay for it: see `take_subscriber_slot`); a single writer's
/// channel uses membarrier (see `Geometry::single_writer`), so there is no
/// run-time choice of barrier.
#[inline(always)]
fn claim_single<M: RingMem>(m: &M, st: &PubState, h: u64, len: u32, total: u64) {
    // Both addresses before the first store (which would make the compiler
    // read the region's base again).
    let slot = m.pub_slot(st.slot);
    let claim = m.claim();
    slot.pending_len.store(u64::from(len), Ordering::Relaxed);
    slot.pending_total
        .store(total | PENDING_OWNED, Ordering::Relaxed);
    slot.pending_pos.store(h, Ordering::Release);
    claim.store(h.wrapping_add(total), Ordering::Release);
    crate::sync::Barrier::Membarrier.light();
    // As in `try_claim`: the claim before the bytes written into it.
    fence(Ordering::Release);
}

/// The cached bound said "full" at head `h`: rescans; if it is still full,
/// clears the write-ahead record, asks subscribers for their progress and
/// returns false.
#[cold]
#[inline(never)]
fn refit<M: RingMem>(m: &M, st: &mut PubState, h: u64, total: u64) -> bool {
    rescan(m, st, h);
    if fits(m.geometry().capacity, h, total, st.cached_min) {
        return true;
    }
    m.pub_slot(st.slot)
        .pending_total
        .store(0, Ordering::Release);
    want_space(m, st);
    false
}

/// The rare work after a claim of `[h, h + total)`: settling with a
/// subscriber that joined (`joined`: `sub_gen` moved since the last scan)
/// or was joining, and ending a wait for space.
#[cold]
#[inline(never)]
fn after_claim<M: RingMem>(m: &M, st: &mut PubState, h: u64, total: u64, joined: bool) {
    if joined || st.saw_joining {
        settle_after_join(m, st, h, total);
    }
    if st.wants_space {
        // The first claim after this publisher found the ring full: it no
        // longer needs subscribers to publish early.
        st.wants_space = false;
        m.join().want_space.store(0, Ordering::Relaxed);
    }
}

/// How long a publisher that raced with a join waits for subscribers to
/// leave CLAIMED before it evicts them (see [`evict_joiners`]). A join
/// takes well under a microsecond when its process runs: only a joiner
/// that is stopped, traced or starved of CPU (or a slot a peer set
/// CLAIMED) lasts this long. It is the most a `try_send` or
/// `send_timeout` can wait beyond its own bound.
pub(crate) const JOIN_GRACE: Duration = Duration::from_millis(2);

/// After a claim raced with a joining subscriber: waits until the claimed
/// bytes `[h, h + total)` fit for every subscriber, the new one included.
///
/// Subscribers mid-join are waited for at most [`JOIN_GRACE`] at a time;
/// then they are evicted and join again. What remains is waiting for an
/// ACTIVE subscriber that joined at a position the claim does not fit
/// with (possible only when several publishers claimed while it joined):
/// back-pressure from a subscriber that reads, as in [`wait_for_space`].
fn settle_after_join<M: RingMem>(m: &M, st: &mut PubState, h: u64, total: u64) {
    let cap = m.geometry().capacity;
    let mut calls = 0u32;
    loop {
        let mut ok = || {
            rescan(m, st, h);
            calls = calls.wrapping_add(1);
            if calls % 64 == 0 {
                m.on_stuck();
            }
            !st.saw_joining && fits(cap, h, total, st.cached_min)
        };
        // Under loom time does not pass: joins there always finish, and
        // eviction has a model of its own.
        let evict_at = if cfg!(loom) {
            None
        } else {
            Some(Instant::now() + JOIN_GRACE)
        };
        if m.space_event().wait_until(
            m.futex(),
            m.geometry().barrier,
            200,
            evict_at,
            Duration::from_millis(1),
            &mut ok,
        ) {
            return;
        }
        evict_joiners(m);
    }
}

/// Whether a claim of `len` could succeed now (used by blocked senders).
pub(crate) fn has_space<M: RingMem>(m: &M, st: &mut PubState, len: u32) -> bool {
    let g = *m.geometry();
    let h = m.claim().load(Ordering::Acquire);
    let (_, total) = space_for(&g, h, len);
    rescan(m, st, h);
    let ok = fits(g.capacity, h, total, st.cached_min);
    if !ok {
        want_space(m, st);
    }
    ok
}

/// Asks subscribers to publish their progress every `capacity / 64` bytes
/// (the ring is full for this publisher); cleared after its next claim.
fn want_space<M: RingMem>(m: &M, st: &mut PubState) {
    st.wants_space = true;
    let w = &m.join().want_space;
    if w.load(Ordering::Relaxed) == 0 {
        w.store(1, Ordering::Relaxed);
    }
}

/// Commits a claim (after its payload was written): pad first, then the
/// record, then wakes sleeping subscribers.
#[inline]
pub(crate) fn commit<M: RingMem>(m: &M, st: &mut PubState, c: Claim, discard: bool) {
    let g = m.geometry();
    let flags = if discard { FLAG_DISCARD } else { 0 };
    let off = c.off(g);
    m.meta(off).store(
        u64::from(c.len()) | (u64::from(flags) << 32),
        Ordering::Relaxed,
    );
    if let Some(p) = c.pad_pos() {
        let off = p & g.mask;
        m.meta(off)
            .store(u64::from(FLAG_PAD) << 32, Ordering::Relaxed);
        m.stamp(off).store(p ^ STAMP_KEY, Ordering::Release);
        crate::fault::point("after_pad");
    }
    crate::fault::point("before_commit");
    m.stamp(off).store(c.pos ^ STAMP_KEY, Ordering::Release);
    crate::fault::point("after_commit");
    committed(m, st, off, c.len(), discard);
}

/// After the stamp of a record of `len` bytes at ring offset `off`: clears
/// the write-ahead record, counts, demotes a large record's lines, and
/// wakes sleeping subscribers. (Off the path to the subscriber: the
/// stamp is already stored.)
#[inline]
fn committed<M: RingMem>(m: &M, st: &mut PubState, off: u64, len: u32, discard: bool) {
    m.pub_slot(st.slot)
        .pending_total
        .store(0, Ordering::Release);
    if st.demotes && record_size(u64::from(len)) >= DEMOTE_MIN_RECORD {
        demote_lines(m, st, off, len);
    }
    if !discard {
        st.messages += 1;
        st.bytes += u64::from(len);
        let slot = m.pub_slot(st.slot);
        slot.messages.store(st.messages, Ordering::Relaxed);
        slot.bytes.store(st.bytes, Ordering::Relaxed);
    }
    if st.quiet == 0 {
        m.data_event()
            .notify_waiters(m.futex(), m.geometry().barrier);
    } else {
        // The wake-up is owed, made when the quiet stretch ends (or the
        // ring fills); the barrier still orders the write-ahead record's
        // clear before the load below.
        m.geometry().barrier.light();
        st.quiet = QUIET_OWED;
    }
    if !st.single_writer {
        // Another publisher may wait for this claim to be committed (see
        // `scan`): the write-ahead record was cleared above, and the data
        // notification's light barrier orders that store before this load
        // of the space event's waiters (the same Dekker pair as a
        // subscriber's progress: one barrier for both).
        m.space_event().notify_waiters_after_barrier(m.futex());
    }
}

/// Copies a claimed record's payload (after its 16-byte header at ring
/// offset `off`): one copy; with fault injection two, with the fault point
/// `mid_payload` between.
///
/// # Safety
///
/// The caller holds a claim on the record at `off`, whose
/// `record_size(msg.len())` bytes lie inside the ring.
#[inline(always)]
pub(crate) unsafe fn write_payload<M: RingMem>(m: &M, off: u64, msg: &[u8]) {
    let half = if cfg!(feature = "fault-injection") {
        msg.len() / 2
    } else {
        msg.len()
    };
    // SAFETY: the payload lies after the header, inside the claimed record
    // (the caller's contract).
    unsafe { m.write(off + RECORD_HEADER, &msg[..half]) };
    if half < msg.len() {
        crate::fault::point("mid_payload");
        // SAFETY: as above, for the second half.
        unsafe { m.write(off + RECORD_HEADER + half as u64, &msg[half..]) };
    }
}

/// A whole copying send by a channel's single writer (see
/// `Geometry::single_writer`) in the common case: the record fits before
/// the ring's end (no pad), the cached bound says it fits, and no join or
/// wait for space is pending. Then it claims, copies, and commits exactly
/// as [`try_claim`], the caller's copy and [`commit`] would, in one
/// straight run of code; otherwise it returns false having done nothing,
/// and the caller takes the general path.
///
/// Why a second path: in a ping-pong, the instructions between a
/// record's arrival and the reply's stamp are the latency above the
/// cache-line floor, and the general path's branches for the rare cases
/// (a pad, a CAS, the claim passed between functions) cost ~8 ns of it at
/// 8 B (see `docs/benchmarks/`). Loom and the crash tests check this path
/// as they check the general one.
#[inline]
pub(crate) fn send_single<M: RingMem>(m: &M, st: &mut PubState, msg: &[u8]) -> bool {
    if !st.single_writer {
        return false;
    }
    // The claim a loan's straight path makes (a single writer's: no CAS).
    let Some(h) = claim_straight(m, st, msg.len()) else {
        return false;
    };
    let len = msg.len() as u32;
    let off = h & m.geometry().mask;
    // The header's words before the payload is written: after it, the
    // compiler would read the ring's address and mask again.
    let (meta, stamp) = (m.meta(off), m.stamp(off));
    // SAFETY: the claim reserves `record_size(len)` bytes at ring offset
    // `off`, inside the ring (checked by `claim_straight`).
    unsafe { write_payload(m, off, msg) };
    meta.store(u64::from(len), Ordering::Relaxed);
    crate::fault::point("before_commit");
    stamp.store(h ^ STAMP_KEY, Ordering::Release);
    crate::fault::point("after_commit");
    committed(m, st, off, len, false);
    true
}

/// After the commit of a large record by a publisher that had been idle:
/// demotes the record's first whole lines to the shared cache.
///
/// A subscriber that has caught up polls the record's stamp and then reads
/// the payload; lines still in the publisher's private cache must each be
/// snooped out of it. Demoted, they come from the shared cache: 1 KiB
/// busy-poll one-way latency went from 1.3–1.4× to 1.1–1.2× the
/// cache-line floor (medians of interleaved runs, `docs/benchmarks/`).
/// But demoting costs a publisher that sends again at once: with every
/// record demoted, 1 KiB throughput fell from 0.6–0.9× to 0.13–0.18× the
/// minimal ring, even with only each record's first line demoted. So only
/// a publisher idle for [`DEMOTE_IDLE`] (whose subscribers have probably
/// caught up and wait) demotes, only records of [`DEMOTE_MIN_RECORD`]
/// bytes or more (64 B messages are untouched), and only their first
/// [`DEMOTE_LINES`] whole lines (a last, partial line, which the next
/// record will write, is left alone). Costs an `Instant::now()` per large
/// record. Called for records of at least `DEMOTE_MIN_RECORD` bytes.
#[inline(never)]
fn demote_lines<M: RingMem>(m: &M, st: &mut PubState, off: u64, len: u32) {
    let rec = record_size(u64::from(len));
    let now = Instant::now();
    let idle = st
        .last_large_commit
        .is_none_or(|t| now.duration_since(t) >= DEMOTE_IDLE);
    st.last_large_commit = Some(now);
    if !idle {
        return;
    }
    let first = off & !63;
    let end = ((off + rec) & !63).min(first + DEMOTE_LINES * 64);
    for line in (first..end).step_by(64) {
        m.demote(line);
    }
}

/// Set in `pending_total` once the claim CAS has succeeded.
pub(crate) const PENDING_OWNED: u64 = 1 << 63;

/// Whether the subscriber is blocked on a claimed but uncommitted record
/// (as opposed to having read everything claimed so far).
pub(crate) fn blocked_on_uncommitted<M: RingMem>(m: &M, st: &SubState) -> bool {
    m.claim().load(Ordering::Acquire) != st.pos
}

/// Waits for space for `len` until `deadline`; false on time-out.
pub(crate) fn wait_for_space<M: RingMem>(
    m: &M,
    st: &mut PubState,
    len: u32,
    deadline: Option<Instant>,
) -> bool {
    m.space_event().wait_until(
        m.futex(),
        m.geometry().barrier,
        1000,
        deadline,
        RECHECK,
        || has_space(m, st, len),
    )
}

/// Why no subscriber slot could be taken: every slot is in use, or (for a
/// single-publisher channel with [`Barrier::Membarrier`]) the membarrier a
/// join needs failed in this process.
pub(crate) fn join_failure(g: &Geometry) -> JoinError {
    if g.single_writer() && g.barrier.failed() {
        JoinError::MembarrierFailed
    } else {
        JoinError::TooManySubscribers {
            max: g.max_subscribers,
        }
    }
}

#[cfg(loom)]
/// Joins as a subscriber at the current head.
pub(crate) fn join_subscriber<M: RingMem>(m: &M, pid: u32) -> Result<SubState, JoinError> {
    join_subscriber_at(m, pid, Start::Now)
}

#[cfg(loom)]
/// Joins as a subscriber starting at `start`.
pub(crate) fn join_subscriber_at<M: RingMem>(
    m: &M,
    pid: u32,
    start: Start,
) -> Result<SubState, JoinError> {
    let g = m.geometry();
    (0..g.max_subscribers)
        .find_map(|i| take_subscriber_slot(m, i, pid, start, false))
        .unwrap_or_else(|| Err(join_failure(g)))
}

/// Where a joining subscriber starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// At the claim position: every message claimed after the join.
    Now,
    /// At the oldest record still in the ring (see [`find_oldest`]).
    Oldest,
}

/// The end of the committed record at position `q` (its next record's
/// position), or `None` if no valid committed record starts there. Every
/// word is validated as `peek_slow` does.
fn record_end<M: RingMem>(m: &M, q: u64) -> Option<u64> {
    let g = m.geometry();
    let off = q & g.mask;
    if off % 16 != 0 || m.stamp(off).load(Ordering::Acquire) ^ STAMP_KEY != q {
        return None;
    }
    let meta = m.meta(off).load(Ordering::Relaxed);
    let (len, flags) = (meta as u32, (meta >> 32) as u32);
    if flags & !KNOWN_FLAGS != 0 {
        return None;
    }
    if flags & FLAG_PAD != 0 {
        return (off != 0 && len == 0).then(|| q.wrapping_add(g.capacity - off));
    }
    let size = record_size(u64::from(len));
    (len <= g.max_message && off + size <= g.capacity).then(|| q.wrapping_add(size))
}

/// Whether publishers have claimed past `p + capacity`, so that bytes of
/// the record at `p` may have been reused: a lossy subscriber's check after
/// it read a record (its header, its payload). The Acquire fence orders
/// those reads before the claim load; it pairs with the publisher's Release
/// fence between its claim and its writes into the claimed space, so a read
/// that saw any byte of a later claim sees that claim here.
#[inline]
pub(crate) fn lapped<M: RingMem>(m: &M, p: u64) -> bool {
    fence(Ordering::Acquire);
    beyond_a_ring(m, p, m.claim().load(Ordering::Relaxed))
}

/// Whether head `h` is more than a ring past `p` (and not behind it).
#[inline]
fn beyond_a_ring<M: RingMem>(m: &M, p: u64, h: u64) -> bool {
    let d = h.wrapping_sub(p);
    d > m.geometry().capacity && d < (1 << 63)
}

/// Whether a lossy subscriber at `p` is already lapped (a cheap first look
/// before reading, Acquire).
#[inline]
pub(crate) fn behind<M: RingMem>(m: &M, p: u64) -> bool {
    beyond_a_ring(m, p, m.claim().load(Ordering::Acquire))
}

/// Where a lapped lossy subscriber goes on: the oldest record it can still
/// read, looked for from a ring behind the head up (the channel's first
/// record while less than a ring was written). A candidate is a committed,
/// valid record header (`record_end`) that was not lapped by the time it
/// was checked; publishers keep writing meanwhile, so a candidate overtaken
/// moves the search up to a ring behind the new head. At most two rings'
/// worth of steps; then the head itself (a record boundary: the next
/// claim's start).
pub(crate) fn resync<M: RingMem>(m: &M) -> u64 {
    let g = *m.geometry();
    let mut h = m.claim().load(Ordering::Acquire);
    let floor = |h: u64| {
        if h.wrapping_sub(g.initial_position) <= g.capacity {
            g.initial_position
        } else {
            h.wrapping_sub(g.capacity)
        }
    };
    let mut o = floor(h);
    for _ in 0..2 * (g.capacity / 16) {
        if o == h || h.wrapping_sub(o) >= 1 << 63 {
            break;
        }
        if record_end(m, o).is_some() {
            if !lapped(m, o) {
                return o;
            }
            // Overtaken while looked at: a ring behind the new head.
            h = m.claim().load(Ordering::Acquire);
            let f = floor(h);
            if f.wrapping_sub(o) < 1 << 63 && f != o {
                o = f;
                continue;
            }
        }
        o = o.wrapping_add(16);
    }
    m.claim().load(Ordering::Acquire)
}

/// Messages committed since the channel was created, by the publishers'
/// counters: the retired totals plus each joined publisher's count (a
/// publisher stores its count after each commit; Relaxed, informational).
pub(crate) fn committed_messages<M: RingMem>(m: &M) -> u64 {
    let g = m.geometry();
    let mut n = m.join().retired_messages.load(Ordering::Relaxed);
    for i in 0..g.max_publishers {
        let s = m.pub_slot(i);
        if s.state.load(Ordering::Acquire) != SLOT_FREE {
            n = n.wrapping_add(s.messages.load(Ordering::Relaxed));
        }
    }
    n
}

/// Messages (plain records) from `from` up to the first record not yet
/// committed or `to`, whichever comes first, for a lossy subscriber's loss
/// count; `None` if the walk was lapped (its count cannot be trusted).
pub(crate) fn count_messages<M: RingMem>(m: &M, from: u64, to: u64) -> Option<u64> {
    let g = *m.geometry();
    let mut q = from;
    let mut n = 0;
    while q != to && to.wrapping_sub(q) <= g.capacity {
        let Some(next) = record_end(m, q) else { break };
        let flags = (m.meta(q & g.mask).load(Ordering::Relaxed) >> 32) as u32;
        if flags & (FLAG_PAD | FLAG_DISCARD) == 0 {
            n += 1;
        }
        q = next;
    }
    (!lapped(m, from)).then_some(n)
}

/// Makes each gap `[a, b)` (dead claims, see [`find_oldest`]) discarded
/// records: as many as its length needs (a record holds at most
/// `max_message` bytes and never crosses the ring's end), each with its
/// meta, then its stamp with Release (pairs with a reader's Acquire load
/// of the stamp), in position order.
fn discard_gaps<M: RingMem>(m: &M, gaps: &[(u64, u64)]) {
    let g = *m.geometry();
    for &(mut a, b) in gaps {
        while b.wrapping_sub(a) != 0 && b.wrapping_sub(a) <= g.capacity {
            let off = a & g.mask;
            let size = b
                .wrapping_sub(a)
                .min(g.capacity - off)
                .min(RECORD_HEADER + u64::from(g.max_message) / 16 * 16);
            let len = size - RECORD_HEADER;
            m.meta(off)
                .store(len | (u64::from(FLAG_DISCARD) << 32), Ordering::Relaxed);
            m.stamp(off).store(a ^ STAMP_KEY, Ordering::Release);
            a = a.wrapping_add(size);
        }
    }
}

/// Finds the oldest record in `[from, head)` and returns its position
/// (`head` if there is none). The caller holds its subscriber position at
/// `from = head - capacity`, so no publisher claims past `head`
/// meanwhile: the bytes looked at stay put, but for records being
/// committed.
///
/// A position where a committed record names itself (its stamp) starts a
/// chain: record after record, each committed and valid, up to `head`, or
/// up to a claim still being written (a publisher's write-ahead record
/// names it; if that publisher died, it is repaired as discarded later, as
/// for any subscriber). A chain can also stop at a *dead claim*: bytes
/// that hold no committed record and that no write-ahead record names — a
/// publisher died while writing and its slot was reclaimed without repair,
/// because no subscriber needed it then. The next chain after it is looked
/// for, and the gap becomes discarded records here (the held position
/// keeps every publisher out of those bytes, as for the repair of a dead
/// publisher's claim), so no subscriber ever waits on it nor reads it.
///
/// Payload bytes can look like a committed stamp (odds of about 2^-60 per
/// word unless a peer forges them), so each candidate's chain is walked;
/// the search takes at most four rings' worth of steps, and finding no
/// chain that reaches `head` starts the subscriber at `head`.
pub(crate) fn find_oldest<M: RingMem>(m: &M, from: u64, head: u64) -> u64 {
    let g = *m.geometry();
    let in_flight: Vec<u64> = (0..g.max_publishers)
        .filter_map(|i| {
            let s = m.pub_slot(i);
            let pending = s.pending_total.load(Ordering::Acquire) & !PENDING_OWNED;
            (s.state.load(Ordering::Acquire) != SLOT_FREE && pending != 0)
                .then(|| s.pending_pos.load(Ordering::Acquire))
        })
        .collect();
    // Positions are compared by their distance back from `head`.
    let before_head = |q: u64| {
        let d = head.wrapping_sub(q);
        d != 0 && d <= g.capacity
    };
    let mut budget = 4 * (g.capacity / 16);
    let mut first = None;
    let mut gaps: Vec<(u64, u64)> = Vec::new();
    let mut gap_start: Option<u64> = None;
    let mut o = from;
    while before_head(o) && budget > 0 {
        budget -= 1;
        if record_end(m, o).is_none() && !in_flight.contains(&o) {
            o = o.wrapping_add(16);
            continue;
        }
        // Walk the chain from `o`: Some(None) reaches `head` or a claim
        // being written, Some(Some(q)) stops at a dead claim at `q`, None
        // leaves the range (not a chain: payload bytes).
        let mut q = o;
        let end = loop {
            if q == head {
                break Some(None);
            }
            if !before_head(q) || budget == 0 {
                break None;
            }
            budget -= 1;
            match record_end(m, q) {
                Some(next) => q = next,
                None if in_flight.contains(&q) => break Some(None),
                None => break Some(Some(q)),
            }
        };
        match end {
            None => o = o.wrapping_add(16),
            Some(stop) => {
                if let Some(a) = gap_start.take() {
                    gaps.push((a, o));
                }
                let f = *first.get_or_insert(o);
                match stop {
                    None => {
                        discard_gaps(m, &gaps);
                        return f;
                    }
                    Some(dead) => {
                        gap_start = Some(dead);
                        o = dead.wrapping_add(16);
                    }
                }
            }
        }
    }
    match (first, gap_start) {
        // The last chain ended at a dead claim: the rest up to `head` is
        // its gap.
        (Some(f), Some(a)) if o == head => {
            gaps.push((a, head));
            discard_gaps(m, &gaps);
            f
        }
        _ => head,
    }
}

/// How many times a joiner redoes its join after publishers evicted it
/// (see [`evict_joiners`]) before it gives up with [`JoinError::Evicted`].
pub(crate) const JOIN_ATTEMPTS: u32 = 16;

/// Takes subscriber slot `i` if it is FREE, at the current head. `None`
/// if it is not, or if the join needs a membarrier that failed
/// ([`join_failure`] tells which); `Some(Err(_))` if the claim position
/// read from shared memory is not one the format can hold (not a multiple
/// of 16: a peer wrote it), or if publishers evicted this joiner
/// [`JOIN_ATTEMPTS`] times in a row.
///
/// The join ends with a CAS CLAIMED → ACTIVE: a publisher that waited
/// [`JOIN_GRACE`] for this slot to leave CLAIMED may have set it FREE
/// (evicted it, see [`evict_joiners`]), and the position read before then
/// may be stale. The CAS then fails and the join starts over; the caller's
/// liveness lock on slot `i` keeps other joiners off it meanwhile.
pub(crate) fn take_subscriber_slot<M: RingMem>(
    m: &M,
    i: u32,
    pid: u32,
    start: Start,
    lossy: bool,
) -> Option<Result<SubState, JoinError>> {
    let slot = m.sub_slot(i);
    for attempt in 0..JOIN_ATTEMPTS {
        if slot
            .state
            .compare_exchange(SLOT_FREE, SLOT_CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            // Taken (by another joiner, where no liveness lock guards the
            // slot): after an eviction the slot is no longer ours to retry.
            return None;
        }
        if attempt == 0 {
            slot.pid.store(pid, Ordering::Relaxed);
            slot.messages.store(0, Ordering::Relaxed);
            slot.bytes.store(0, Ordering::Relaxed);
        }
        m.join().sub_gen.fetch_add(1, JOIN_RMW);
        join_fence();
        if m.geometry().single_writer() && !m.geometry().barrier.heavy() {
            // Without the barrier the publisher's claim store and its
            // `sub_gen` load are not ordered against this join: give
            // the slot back (the caller reports why).
            give_back(m, i);
            return None;
        }
        crate::fault::point("join_claimed");
        let p = m.claim().load(JOIN_LOAD);
        if p % 16 != 0 {
            // Records start at multiples of 16: no publisher following the
            // protocol moves the claim to `p`. Starting there would make
            // every offset computed from it misaligned.
            give_back(m, i);
            return Some(Err(JoinError::Corrupt(Corrupt::new(format!(
                "the claim position {p} is not a multiple of 16 (a process with write access to the channel wrote it)"
            )))));
        }
        // From the oldest record: hold the position a ring behind the
        // head (nothing past the head can be claimed while it is held)
        // until the oldest record boundary is found; if less than a ring
        // was ever claimed, the channel's first record is the oldest.
        let g = *m.geometry();
        let (held, scan) = match start {
            Start::Now => (p, false),
            Start::Oldest if p.wrapping_sub(g.initial_position) <= g.capacity => {
                (g.initial_position, false)
            }
            Start::Oldest => (p.wrapping_sub(g.capacity), true),
        };
        slot.position.store(held, Ordering::Relaxed);
        if slot
            .state
            .compare_exchange(
                SLOT_CLAIMED,
                SLOT_ACTIVE,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
        {
            continue; // evicted while joining: start over
        }
        // A publisher may be waiting for this join to finish (see
        // `settle_after_join`).
        m.space_event()
            .notify_waiters(m.futex(), m.geometry().barrier);
        let mut pos = held;
        if scan {
            pos = find_oldest(m, held, p);
            // Release: pairs with the publishers' Acquire scan; they may
            // go on up to `pos + capacity`.
            slot.position.store(pos, Ordering::Release);
        }
        if lossy {
            // From now on publishers pass it by (their scan counts ACTIVE
            // slots only). It reads only what it validates (`lapped`).
            slot.state.store(SLOT_LOSSY, Ordering::Release);
        }
        if scan || lossy {
            m.space_event()
                .notify_waiters(m.futex(), m.geometry().barrier);
        }
        let catch_up = m.geometry().publish_on_catch_up();
        return Some(Ok(SubState {
            slot: i,
            pos,
            published: pos,
            publish_on_catch_up: catch_up,
            check_bytes: if catch_up {
                0
            } else {
                m.geometry().publish_wanted_bytes()
            },
            messages: 0,
            bytes: 0,
        }));
    }
    Some(Err(JoinError::Evicted {
        attempts: JOIN_ATTEMPTS,
    }))
}

/// Sets a CLAIMED slot (this joiner's) FREE again and wakes publishers
/// that may wait for the join to finish.
fn give_back<M: RingMem>(m: &M, i: u32) {
    m.sub_slot(i).state.store(SLOT_FREE, Ordering::Release);
    m.space_event()
        .notify_waiters(m.futex(), m.geometry().barrier);
}

/// Evicts every subscriber that is still mid-join (CLAIMED): sets its slot
/// FREE with a CAS, so that the joiner's own CAS CLAIMED → ACTIVE fails
/// and it joins again, with a fresh position (see
/// [`take_subscriber_slot`]). Called by a publisher that waited
/// [`JOIN_GRACE`] for joins to finish: a joiner stopped mid-join (SIGSTOP,
/// a debugger) or a slot a peer set CLAIMED must not hold publishers back
/// without bound. Returns how many it evicted.
pub(crate) fn evict_joiners<M: RingMem>(m: &M) -> u32 {
    let mut n = 0;
    for i in 0..m.geometry().max_subscribers {
        if m.sub_slot(i)
            .state
            .compare_exchange(SLOT_CLAIMED, SLOT_FREE, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            n += 1;
        }
    }
    n
}

/// Leaves as a subscriber and wakes publishers it may have held back.
pub(crate) fn leave_subscriber<M: RingMem>(m: &M, st: &SubState) {
    m.sub_slot(st.slot)
        .state
        .store(SLOT_FREE, Ordering::Release);
    m.space_event()
        .notify_waiters(m.futex(), m.geometry().barrier);
}

/// Moves the subscriber past a record. Its position (and counters) are
/// published lazily: when `capacity / 16` bytes have been consumed since
/// the last publication; while a publisher waits for space
/// (`want_space`), when `capacity / 64` bytes have; and when the
/// subscriber catches up (`peek` finds nothing; for channels whose
/// messages are large next to the capacity, as soon as the next record is
/// not committed yet). While a subscriber has a backlog, publishers may so
/// see up to `capacity / 16` bytes of its progress late (`capacity / 64`
/// once one of them waits). Publishing at every message made the slot's
/// cache line bounce between the cores for every message whenever the
/// ring ran full.
#[inline]
fn advance<M: RingMem>(m: &M, st: &mut SubState, next: u64) {
    st.pos = next;
    let g = m.geometry();
    let unpublished = next.wrapping_sub(st.published);
    // Reading the next record's stamp touches a line the publisher is
    // about to write (a transfer on its critical path), so only channels
    // that need it do (`Geometry::publish_on_catch_up`).
    if unpublished >= g.publish_lazy_bytes()
        || (unpublished >= g.publish_wanted_bytes()
            && m.join().want_space.load(Ordering::Relaxed) != 0)
        || (st.publish_on_catch_up
            && m.stamp(next & g.mask).load(Ordering::Acquire) ^ STAMP_KEY != next)
    {
        publish(m, st);
    }
}

/// Stores the subscriber's position and counters in its slot (Release:
/// pairs with the publishers' Acquire loads in their scan) and wakes a
/// publisher waiting for space.
pub(crate) fn publish<M: RingMem>(m: &M, st: &mut SubState) {
    let slot = m.sub_slot(st.slot);
    slot.messages.store(st.messages, Ordering::Relaxed);
    slot.bytes.store(st.bytes, Ordering::Relaxed);
    slot.position.store(st.pos, Ordering::Release);
    st.published = st.pos;
    m.space_event()
        .notify_waiters(m.futex(), m.geometry().barrier);
}

/// Looks for a committed message at the subscriber's position, skipping
/// pad and discarded records. Every word read is validated.
///
/// Inlined into the receive calls: a committed message record that is
/// plainly valid is returned at once; anything else (nothing yet, pad or
/// discarded records, words that need a closer look) goes to [`peek_slow`].
#[inline]
pub(crate) fn peek<M: RingMem>(m: &M, st: &mut SubState) -> Result<Option<Record>, Corrupt> {
    match glance(m, st.pos) {
        Glance::Plain(r) => Ok(Some(r)),
        _ => peek_slow(m, st),
    }
}

/// What [`glance`] sees at a position.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Glance {
    /// A committed record with no flags, its length within
    /// `max_message` and the ring end.
    Plain(Record),
    /// Nothing committed there yet (and no sign of an overwritten record).
    Empty,
    /// Anything else (pad, discarded, a record from a later lap, a bad
    /// word): for [`peek_slow`] to examine.
    Other,
}

/// A look at position `p` from its stamp and meta words only: the inline
/// part of every receive (and of every empty poll).
#[inline(always)]
pub(crate) fn glance<M: RingMem>(m: &M, p: u64) -> Glance {
    let g = m.geometry();
    let off = p & g.mask;
    // The meta word's address with the stamp's: after the Acquire load the
    // compiler would read the ring's address and mask again.
    let (stamp, meta) = (m.stamp(off), m.meta(off));
    let stamp = stamp.load(Ordering::Acquire) ^ STAMP_KEY;
    if stamp != p {
        // A stamp a whole number of laps ahead: overwritten (see
        // `peek_slow`, which reports it).
        let ahead = stamp.wrapping_sub(p);
        if ahead & g.mask == 0 && ahead <= 4 * g.capacity {
            return Glance::Other;
        }
        return Glance::Empty;
    }
    let meta = meta.load(Ordering::Relaxed);
    // A plain record has no flags (the high half of meta) and a length
    // within `max_message` whose record ends inside the ring: with `off`
    // 16-aligned, `off + record_size(len) <= capacity` exactly when
    // `len <= capacity - off - RECORD_HEADER` (a multiple of 16). So one
    // comparison of the whole meta word decides.
    // (Checked: `off` comes from a position validated at join and moved
    // by multiples of 16, so it is at most `capacity - 16`, but the
    // decoder's bounds do not rest on that.)
    let Some(room) = (g.capacity - off).checked_sub(RECORD_HEADER) else {
        return Glance::Other;
    };
    if meta > u64::from(g.max_message).min(room) {
        return Glance::Other;
    }
    Glance::Plain(Record {
        payload_off: off + RECORD_HEADER,
        len: meta as u32,
    })
}

/// [`peek`] for everything but a plain committed record.
#[inline(never)]
fn peek_slow<M: RingMem>(m: &M, st: &mut SubState) -> Result<Option<Record>, Corrupt> {
    let g = *m.geometry();
    // Pad and discarded records are skipped for at most one lap per call:
    // a publisher following the protocol cannot have more than a ring of
    // records ahead of this subscriber, so more means a writer keeps
    // producing them; the caller gets "nothing yet" and calls again.
    let start = st.pos;
    loop {
        let p = st.pos;
        if p.wrapping_sub(start) >= g.capacity {
            if st.pos != st.published {
                publish(m, st);
            }
            return Ok(None);
        }
        let off = p & g.mask;
        if off % 16 != 0 {
            return Err(Corrupt::new(format!(
                "position {p} is not a multiple of 16"
            )));
        }
        let stamp = m.stamp(off).load(Ordering::Acquire) ^ STAMP_KEY;
        if stamp != p {
            let ahead = stamp.wrapping_sub(p);
            // The header of a record one to four laps ahead: this one was
            // overwritten. (Payload bytes of older records sit here too, so
            // only an exact small multiple of the capacity counts: garbage
            // matches with odds of about 2^-62.)
            if ahead != 0 && ahead % g.capacity == 0 && ahead <= 4 * g.capacity {
                return Err(Corrupt::new(format!(
                    "the record at position {p} was overwritten before it was read"
                )));
            }
            if st.pos != st.published {
                publish(m, st); // caught up: show it
            }
            return Ok(None);
        }
        let meta = m.meta(off).load(Ordering::Relaxed);
        let len = meta as u32;
        let flags = (meta >> 32) as u32;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Corrupt::new(format!(
                "unknown record flags {flags:#x} at position {p}"
            )));
        }
        if flags & FLAG_PAD != 0 {
            if off == 0 || len != 0 {
                return Err(Corrupt::new(format!(
                    "a malformed pad record at position {p}"
                )));
            }
            advance(m, st, p.wrapping_add(g.capacity - off));
            continue;
        }
        if len > g.max_message || off + record_size(u64::from(len)) > g.capacity {
            return Err(Corrupt::new(format!(
                "a record of {len} bytes at ring offset {off} (maximum {}, capacity {})",
                g.max_message, g.capacity
            )));
        }
        let next = p.wrapping_add(record_size(u64::from(len)));
        if flags & FLAG_DISCARD != 0 {
            advance(m, st, next);
            continue;
        }
        return Ok(Some(Record {
            payload_off: off + RECORD_HEADER,
            len,
        }));
    }
}

/// Marks a record consumed.
///
/// Inline, it only moves the position and counts: whether to publish
/// (see [`advance`]) is decided out of line, and only once
/// `SubState::check_bytes` are unpublished, the least [`advance`] would
/// publish at. (On the receive-to-reply path of a ping-pong every
/// instruction counts: see `docs/benchmarks/`.)
#[inline]
pub(crate) fn release<M: RingMem>(m: &M, st: &mut SubState, len: u32) {
    st.messages += 1;
    st.bytes += u64::from(len);
    let next = st.pos.wrapping_add(record_size(u64::from(len)));
    st.pos = next;
    if next.wrapping_sub(st.published) >= st.check_bytes {
        advance_out_of_line(m, st, next);
    }
}

/// [`advance`] for [`release`].
#[inline(never)]
fn advance_out_of_line<M: RingMem>(m: &M, st: &mut SubState, next: u64) {
    advance(m, st, next);
}

/// Whether a subscriber's thread shares its only CPU with a publisher
/// pinned to that same CPU: then the publisher cannot run while the
/// subscriber polls, and polling only delays the message it waits for
/// (issue 15: 134 µs per message with both processes on one CPU, the
/// whole spin budget, instead of a few µs). Such a subscriber sleeps after
/// one poll that finds nothing.
///
/// Only a co-location the kernel will not undo counts: both affinity
/// masks hold that one CPU (read when each endpoint joined; the
/// publisher's is in [`PubSlot::cpu`]). Processes that may run on
/// several CPUs spin as before, whatever CPU they happen to share at the
/// moment: sleeping early there keeps the scheduler from moving them
/// apart, which is what two earlier trials (timing-based) ran into. The
/// publishers' words are a hint another process wrote: validated, and
/// at worst they make the subscriber sleep early or spin on, never miss
/// a message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSharing {
    /// The one CPU this subscriber's thread may run on, read when it
    /// joined; `None`: several (then nothing is ever scanned).
    cpu: Option<u32>,
    /// The last scan's answer.
    shared: bool,
    /// Whether the publisher slots were scanned yet.
    scanned: bool,
}

impl CpuSharing {
    /// For a subscriber whose thread may run only on `cpu` (or on several,
    /// `None`).
    pub(crate) const fn new(cpu: Option<u32>) -> CpuSharing {
        CpuSharing {
            cpu,
            shared: false,
            scanned: false,
        }
    }

    /// The wait's spin policy: at the first poll that finds nothing, stop
    /// polling if an active publisher was pinned to this subscriber's one
    /// CPU at the last scan. The publisher slots are scanned at the
    /// first wait and then only before a sleep (publishers come and go),
    /// so that a wait that finds its message by polling reads no
    /// publisher's line.
    pub(crate) fn check<M: RingMem>(&mut self, m: &M, at: SpinCheck) -> bool {
        let Some(cpu) = self.cpu else {
            return false;
        };
        if at == SpinCheck::Sleeping || !self.scanned {
            self.shared = pinned_publisher_on(m, cpu);
            self.scanned = true;
        }
        self.shared
    }
}

/// Whether an ACTIVE publisher slot says its owner is pinned to `cpu`.
fn pinned_publisher_on<M: RingMem>(m: &M, cpu: u32) -> bool {
    (0..m.geometry().max_publishers).any(|i| {
        let slot = m.pub_slot(i);
        slot.state.load(Ordering::Relaxed) == SLOT_ACTIVE
            && pinned_cpu_hint(slot.cpu.load(Ordering::Relaxed)) == Some(cpu)
    })
}

/// Waits for a message until `deadline`; false on time-out. A `lossy`
/// subscriber also wakes when publishers have lapped it. Polls `spin`
/// times before it sleeps, or once when `sharing` says a publisher is
/// pinned to this subscriber's only CPU.
pub(crate) fn wait_for_data<M: RingMem>(
    m: &M,
    st: &mut SubState,
    spin: u32,
    deadline: Option<Instant>,
    lossy: bool,
    sharing: &mut CpuSharing,
) -> Result<bool, Corrupt> {
    let mut err = None;
    let ok = m.data_event().wait_until_or_stop_spin(
        m.futex(),
        m.geometry().barrier,
        spin,
        deadline,
        RECHECK,
        || {
            // A lapped lossy subscriber finds nothing at its position (the
            // bytes there belong to a later lap): wake it to say so.
            if lossy && behind(m, st.pos) {
                return true;
            }
            match peek(m, st) {
                Ok(Some(_)) => true,
                Ok(None) => false,
                Err(e) => {
                    err = Some(e);
                    true
                }
            }
        },
        |at| sharing.check(m, at),
    );
    match err {
        Some(e) => Err(e),
        None => Ok(ok),
    }
}

/// After a subscriber copied the payload of `rec` (found at its position
/// `p` by [`peek`]) out of the ring: whether the record's stamp and meta
/// words still say what they said, so that the copy is of the record that
/// was validated. The Acquire fence orders the payload reads before these
/// loads (the reading half of a sequence lock). An honest publisher never
/// rewrites a record a subscriber has yet to pass, so a difference is a
/// hostile write (or the zero page a truncated file left, which the
/// caller also checks for).
#[inline]
pub(crate) fn still_committed<M: RingMem>(m: &M, p: u64, rec: Record) -> bool {
    crate::sync::fence(Ordering::Acquire);
    let off = p & m.geometry().mask;
    m.stamp(off).load(Ordering::Relaxed) ^ STAMP_KEY == p
        && m.meta(off).load(Ordering::Relaxed) == u64::from(rec.len)
        && rec.payload_off == off + RECORD_HEADER
}

/// [`PubState::quiet`]: commits hold their wake-up back.
pub(crate) const QUIET_ON: u8 = 1;
/// [`PubState::quiet`]: as [`QUIET_ON`], and a commit held one back.
pub(crate) const QUIET_OWED: u8 = 2;

/// Makes the wake-up quiet commits held back, if any (the light barrier
/// and the waiters check of an ordinary notification, after the
/// stamps those commits stored); commits stay quiet.
pub(crate) fn wake_owed<M: RingMem>(m: &M, st: &mut PubState) {
    if st.quiet == QUIET_OWED {
        st.quiet = QUIET_ON;
        m.data_event()
            .notify_waiters(m.futex(), m.geometry().barrier);
    }
}

/// [`PubState::loan`]: a loan is out.
pub(crate) const LOAN_OUT: u8 = 1;
/// [`PubState::loan`]: an uninitialized loan is out (its bytes are zeroed
/// if it leaks).
pub(crate) const LOAN_OUT_UNINIT: u8 = 2;

/// The claim this publisher holds open according to its own write-ahead
/// record (validated: a peer with write access to the file may have
/// changed it), for settling a leaked loan: `None` if there is none or it
/// is not one this format can make.
pub(crate) fn own_open_claim<M: RingMem>(m: &M, st: &PubState) -> Option<Claim> {
    let g = *m.geometry();
    let s = m.pub_slot(st.slot);
    let total = s.pending_total.load(Ordering::Relaxed) & !PENDING_OWNED;
    let p = s.pending_pos.load(Ordering::Relaxed);
    let len = s.pending_len.load(Ordering::Relaxed);
    if total == 0 || len > u64::from(g.max_message) || total > g.capacity || p % 16 != 0 {
        return None;
    }
    let rec = record_size(len);
    if rec > total {
        return None;
    }
    let pad = total - rec;
    if pad > 0 && (p & g.mask) + pad != g.capacity {
        return None;
    }
    Some(Claim::new(p.wrapping_add(pad), len as u32, pad))
}

/// Shortens claim `c` to a payload of `len <= c.len()` bytes before its
/// [`commit`] (a loan committed in part). The claim reserved
/// `record_size(c.len())` bytes; the tail the shorter record no longer
/// covers (a multiple of 16, possibly none) becomes a discarded record of
/// its own, committed here: its meta, then its stamp with Release, before
/// the caller's commit stores the shortened record's stamp (Release). So a
/// subscriber that sees the shortened record (Acquire) and steps past it
/// finds the filler committed and skips it to the next claim.
///
/// The publisher's write-ahead record keeps describing the whole claim: a
/// publisher that dies before its commit has the whole claim discarded by
/// [`repair_dead_publisher`](super::repair::repair_dead_publisher) (the filler's header is then payload of that
/// discarded record), and one that dies after it has a record committed
/// at the claim's position, which repair leaves alone.
pub(crate) fn shorten_claim<M: RingMem>(m: &M, c: Claim, len: u32) -> Claim {
    assert!(len <= c.len(), "a claim is only ever shortened");
    let old = record_size(u64::from(c.len()));
    let new = record_size(u64::from(len));
    if new < old {
        let g = m.geometry();
        let fpos = c.pos.wrapping_add(new);
        let foff = fpos & g.mask;
        // Inside the claimed record (`c.off() + old <= capacity`), and the
        // filler's payload (`old - new - 16` bytes) is shorter than the
        // claim's, so within `max_message`.
        m.meta(foff).store(
            (old - new - RECORD_HEADER) | (u64::from(FLAG_DISCARD) << 32),
            Ordering::Relaxed,
        );
        m.stamp(foff).store(fpos ^ STAMP_KEY, Ordering::Release);
    }
    Claim {
        pos: c.pos,
        len_pad: u64::from(len) | (c.len_pad & !u64::from(u32::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    /// A record is prefetched only when it ends inside its first line.
    #[test]
    fn one_line_is_a_record_inside_one_cache_line() {
        // 8 B payloads (32-byte records) at either half of a line.
        assert!(one_line(0, 32) && one_line(32, 32) && one_line(4096 + 32, 32));
        // Straddling the line's end.
        assert!(!one_line(48, 32) && !one_line(16, 64));
        // A whole line, and more than a line.
        assert!(one_line(64, 64) && !one_line(0, 80) && !one_line(0, 1040));
    }
}

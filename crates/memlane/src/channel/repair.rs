//! Crash repair, next to the ring protocol it repairs: completing the claim
//! a dead publisher left open ([`repair_dead_publisher`], from its
//! write-ahead record) and freeing dead endpoints' slots. The caller holds
//! the dead endpoint's liveness lock (see `channel/liveness.rs`), so no
//! live process owns the slot; the rules that make the stores safe (the
//! caller's own position pins the bytes) are on [`repair_dead_publisher`]
//! and in docs/ARCHITECTURE.md ("Write-ahead claims and recovery").

use super::layout::{record_size, FLAG_DISCARD, FLAG_PAD, SLOT_ACTIVE, SLOT_FREE, STAMP_KEY};
use super::ring::{RingMem, PENDING_OWNED};
use crate::sync::Ordering;

/// What [`repair_dead_publisher`] did with a dead publisher's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repair {
    /// There was no open claim, or none that anybody still needs: the slot
    /// may be freed.
    NotNeeded,
    /// The claim was completed as a discarded record: the slot may be freed.
    Repaired,
    /// A subscriber still needs the claim completed, but the caller could
    /// not pin its bytes (see [`repair_dead_publisher`]): the slot must stay
    /// as it is (its write-ahead record is what a later repair works from),
    /// for a subscriber that needs it to repair.
    Pending,
}

/// Completes, as discarded, the claim a dead publisher left uncommitted,
/// so that subscribers are not blocked by it for good. The caller holds
/// the dead publisher's liveness lock (so no live process owns slot
/// `slot`) and frees the slot afterwards unless this returns
/// [`Repair::Pending`].
///
/// `pin` is the caller's own published position if the caller is an
/// ACTIVE subscriber (it stays there for the whole call), else `None`.
/// The repair writes only bytes that position pins: publishers never claim
/// beyond the lowest published subscriber position plus a ring, so while
/// the caller stays at `pin <= x`, the bytes of position `x` cannot be
/// reused by a later lap, whoever else leaves meanwhile. (A repair that
/// only checked that *some* subscriber still needed the bytes could have
/// that subscriber leave, and a live publisher lap onto them, between its
/// check and its stores.) A caller that cannot pin the claim only finds
/// out whether anybody needs it.
///
/// The claim is known from the slot's write-ahead fields (position,
/// length, total; the `PENDING_OWNED` bit once its CAS succeeded). It is
/// repaired only if:
/// * the head is past it (somebody's CAS claimed those bytes);
/// * the CAS was the dead publisher's: the owned bit is set, or no other
///   publisher slot records a claim at the same position;
/// * some subscriber still has to read it (a position at most a ring
///   before the record) — otherwise nobody waits on it: [`Repair::NotNeeded`];
/// * the caller's `pin` is at or before the record (the pad before it is
///   written only if `pin` is at or before the pad, too);
/// * nothing is committed at its position but, possibly, its own pad.
pub(crate) fn repair_dead_publisher<M: RingMem>(
    m: &M,
    slot: u32,
    others_at: impl Fn(u64) -> bool,
    pin: Option<u64>,
) -> Repair {
    let g = *m.geometry();
    let s = m.pub_slot(slot);
    let raw = s.pending_total.load(Ordering::Acquire);
    let owned = raw & PENDING_OWNED != 0;
    let total = raw & !PENDING_OWNED;
    if total == 0 {
        return Repair::NotNeeded;
    }
    let p = s.pending_pos.load(Ordering::Acquire);
    let len = s.pending_len.load(Ordering::Relaxed);
    if len > u64::from(g.max_message) || total > g.capacity || p % 16 != 0 {
        return Repair::NotNeeded; // not a claim this format can make: leave it
    }
    let rec = record_size(len);
    if rec > total {
        return Repair::NotNeeded;
    }
    let pad = total - rec;
    if pad > 0 && (p & g.mask) + pad != g.capacity {
        return Repair::NotNeeded;
    }
    let rpos = p.wrapping_add(pad);
    let head = m.claim().load(Ordering::Acquire);
    let ahead = head.wrapping_sub(p);
    if ahead < total || ahead >= 1 << 63 {
        return Repair::NotNeeded; // nobody claimed these bytes (yet)
    }
    if !owned && others_at(p) {
        return Repair::NotNeeded; // another publisher claimed this position
    }
    // Whether some subscriber has yet to read position `rpos`. Publishers
    // never write past a ring beyond the lowest (published) subscriber
    // position, so bytes some subscriber still needs are never reused.
    // Once no ACTIVE subscriber needs them, none ever will again: a joiner
    // starts at the head, which is past them.
    let needed = (0..g.max_subscribers).any(|i| {
        let sub = m.sub_slot(i);
        sub.state.load(Ordering::Acquire) == SLOT_ACTIVE
            && rpos.wrapping_sub(sub.position.load(Ordering::Acquire)) <= g.capacity
    });
    if !needed {
        return Repair::NotNeeded;
    }
    // Whether the caller's own position pins position `at` (is at or
    // before it, by less than a ring).
    let pinned = |at: u64| pin.is_some_and(|q| at.wrapping_sub(q) < g.capacity);
    if !pinned(rpos) {
        return Repair::Pending;
    }
    let off = p & g.mask;
    let roff = rpos & g.mask;
    let committed = |pos: u64, o: u64| m.stamp(o).load(Ordering::Acquire) ^ STAMP_KEY == pos;
    if committed(p, off) {
        let pad_record = (m.meta(off).load(Ordering::Acquire) >> 32) as u32 & FLAG_PAD != 0;
        if pad == 0 || !pad_record {
            return Repair::NotNeeded; // a record is committed here: not an open claim
        }
    }
    if pad > 0 && committed(rpos, roff) {
        return Repair::NotNeeded; // committed before it died
    }
    crate::fault::point("repair_checked");
    m.meta(roff)
        .store(len | (u64::from(FLAG_DISCARD) << 32), Ordering::Relaxed);
    // The pad: only if the caller has yet to pass it (then its bytes are
    // pinned too). A caller past it has read it: it was committed.
    if pad > 0 && pinned(p) && !committed(p, off) {
        m.meta(off)
            .store(u64::from(FLAG_PAD) << 32, Ordering::Relaxed);
        m.stamp(off).store(p ^ STAMP_KEY, Ordering::Release);
    }
    m.stamp(roff).store(rpos ^ STAMP_KEY, Ordering::Release);
    s.pending_total.store(0, Ordering::Release);
    m.data_event()
        .notify_waiters(m.futex(), m.geometry().barrier);
    Repair::Repaired
}

/// Frees a dead publisher's slot (its liveness lock held by the caller).
pub(crate) fn free_dead_publisher<M: RingMem>(m: &M, slot: u32) {
    let s = m.pub_slot(slot);
    let j = m.join();
    j.retired_messages
        .fetch_add(s.messages.load(Ordering::Relaxed), Ordering::Relaxed);
    j.retired_bytes
        .fetch_add(s.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
    s.messages.store(0, Ordering::Relaxed);
    s.bytes.store(0, Ordering::Relaxed);
    s.pending_total.store(0, Ordering::Relaxed);
    s.state.store(SLOT_FREE, Ordering::Release);
}

/// Frees a dead subscriber's slot (its liveness lock held by the caller), so it
/// no longer holds publishers back.
pub(crate) fn free_dead_subscriber<M: RingMem>(m: &M, slot: u32) {
    m.sub_slot(slot).state.store(SLOT_FREE, Ordering::Release);
    m.space_event()
        .notify_waiters(m.futex(), m.geometry().barrier);
}

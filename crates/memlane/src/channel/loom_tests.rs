//! Loom model checks of the ring protocol (`RUSTFLAGS="--cfg loom"`):
//! every interleaving of publishers and subscribers within loom's bounds.
//! Payload bytes live in loom `UnsafeCell`s, so a subscriber reading bytes
//! a publisher is still writing (or may write) is reported as a data race;
//! a lost wake-up shows as a deadlock.

use loom::cell::UnsafeCell;
use loom::sync::Arc;

use super::layout::{Geometry, JoinLine, PubSlot, SubSlot};
use super::repair;
use super::ring::{self, RingMem};
use crate::sync::event_word::EventWord;
use crate::sync::{AtomicU32, AtomicU64, Barrier, LoomFutex, Ordering};

struct LoomRing {
    geo: Geometry,
    claim: AtomicU64,
    join: JoinLine,
    data: EventWord,
    space: EventWord,
    pubs: Vec<PubSlot>,
    subs: Vec<SubSlot>,
    stamps: Vec<AtomicU64>,
    metas: Vec<AtomicU64>,
    bytes: Vec<UnsafeCell<u8>>,
    /// Payload bytes as relaxed atomics instead of `bytes`: for lossy
    /// subscribers, which read bytes publishers may be overwriting (by
    /// design: they validate afterwards), so that loom checks the
    /// validation's orderings instead of reporting the race itself.
    racy: Option<Vec<loom::sync::atomic::AtomicU8>>,
    futex: LoomFutex,
}

fn event() -> EventWord {
    EventWord {
        seq: AtomicU32::new(0),
        waiters: AtomicU32::new(0),
    }
}

impl LoomRing {
    fn new(capacity: u64, max_message: u32, pubs: u32, subs: u32, start: u64) -> LoomRing {
        Self::with_barrier(capacity, max_message, pubs, subs, start, Barrier::Fences)
    }

    /// With [`Barrier::Membarrier`] and one publisher slot the claim is a
    /// plain store (`Geometry::single_writer`); loom checks that protocol
    /// with SeqCst fences standing in for both barriers.
    fn with_barrier(
        capacity: u64,
        max_message: u32,
        pubs: u32,
        subs: u32,
        start: u64,
        barrier: Barrier,
    ) -> LoomRing {
        let geo = Geometry {
            capacity,
            mask: capacity - 1,
            max_message,
            max_publishers: pubs,
            max_subscribers: subs,
            ring_offset: 0,
            initial_position: start,
            barrier,
            type_len: 0,
        };
        LoomRing {
            geo,
            claim: AtomicU64::new(start),
            join: JoinLine {
                sub_gen: AtomicU32::new(0),
                want_space: AtomicU32::new(0),
                retired_messages: AtomicU64::new(0),
                retired_bytes: AtomicU64::new(0),
            },
            data: event(),
            space: event(),
            pubs: (0..pubs)
                .map(|_| PubSlot {
                    state: AtomicU32::new(0),
                    pid: AtomicU32::new(0),
                    messages: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                    pending_pos: AtomicU64::new(0),
                    pending_total: AtomicU64::new(0),
                    pending_len: AtomicU64::new(0),
                    cpu: AtomicU32::new(0),
                })
                .collect(),
            subs: (0..subs)
                .map(|_| SubSlot {
                    state: AtomicU32::new(0),
                    pid: AtomicU32::new(0),
                    position: AtomicU64::new(0),
                    messages: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                    lost_messages: AtomicU64::new(0),
                    lost_bytes: AtomicU64::new(0),
                })
                .collect(),
            stamps: (0..capacity / 16).map(|_| AtomicU64::new(0)).collect(),
            metas: (0..capacity / 16).map(|_| AtomicU64::new(0)).collect(),
            bytes: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
            racy: None,
            futex: LoomFutex::default(),
        }
    }

    /// A ring whose payload bytes are relaxed atomics (see `racy`).
    fn racy(capacity: u64, max_message: u32, pubs: u32, subs: u32) -> LoomRing {
        let mut r = Self::new(capacity, max_message, pubs, subs, 0);
        r.racy = Some(
            (0..capacity)
                .map(|_| loom::sync::atomic::AtomicU8::new(0))
                .collect(),
        );
        r
    }

    /// A lossy subscriber's copy: relaxed loads of bytes that may be
    /// being overwritten.
    fn read_racy(&self, off: u64, len: u32) -> Vec<u8> {
        let bytes = self.racy.as_ref().expect("a racy ring");
        (0..u64::from(len))
            .map(|i| bytes[(off + i) as usize].load(Ordering::Relaxed))
            .collect()
    }

    fn read(&self, off: u64, len: u32) -> Vec<u8> {
        (0..u64::from(len))
            .map(|i| self.bytes[(off + i) as usize].with(|p| unsafe { *p }))
            .collect()
    }
}

impl RingMem for LoomRing {
    type F = LoomFutex;
    fn futex(&self) -> &LoomFutex {
        &self.futex
    }
    fn geometry(&self) -> &Geometry {
        &self.geo
    }
    fn claim(&self) -> &AtomicU64 {
        &self.claim
    }
    fn join(&self) -> &JoinLine {
        &self.join
    }
    fn data_event(&self) -> &EventWord {
        &self.data
    }
    fn space_event(&self) -> &EventWord {
        &self.space
    }
    fn pub_slot(&self, i: u32) -> &PubSlot {
        &self.pubs[i as usize]
    }
    fn sub_slot(&self, i: u32) -> &SubSlot {
        &self.subs[i as usize]
    }
    fn stamp(&self, off: u64) -> &AtomicU64 {
        &self.stamps[(off / 16) as usize]
    }
    fn meta(&self, off: u64) -> &AtomicU64 {
        &self.metas[(off / 16) as usize]
    }
    unsafe fn write(&self, off: u64, src: &[u8]) {
        if let Some(bytes) = &self.racy {
            for (i, b) in src.iter().enumerate() {
                bytes[off as usize + i].store(*b, Ordering::Relaxed);
            }
            return;
        }
        for (i, b) in src.iter().enumerate() {
            // SAFETY: loom checks the exclusivity this relies on.
            self.bytes[off as usize + i].with_mut(|p| unsafe { *p = *b });
        }
    }
}

/// As `Publisher::send`: the single writer's straight path when it
/// applies, else claim (waiting for space), copy, commit.
fn send(r: &LoomRing, st: &mut ring::PubState, msg: &[u8]) {
    if ring::send_single(r, st, msg) {
        return;
    }
    let c = loop {
        if let Some(c) = ring::try_claim(r, st, msg.len() as u32).expect("never corrupt") {
            break c;
        }
        ring::wait_for_space(r, st, msg.len() as u32, None);
    };
    // SAFETY: the claim covers the payload.
    unsafe { ring::write_payload(r, c.off(r.geometry()), msg) };
    ring::commit(r, st, c, false);
}

fn recv(r: &LoomRing, st: &mut ring::SubState) -> Vec<u8> {
    loop {
        if let Some(rec) = ring::peek(r, st).expect("never corrupt") {
            let v = r.read(rec.payload_off, rec.len);
            ring::release(r, st, rec.len);
            return v;
        }
        ring::wait_for_data(r, st, 0, None, false, &mut ring::CpuSharing::new(None))
            .expect("never corrupt");
    }
}

/// Receives (polling) until `done` was set before a poll that found
/// nothing: every message published before `done`, in order.
fn drain_until(
    r: &LoomRing,
    sub: &mut ring::SubState,
    done: &loom::sync::atomic::AtomicBool,
) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    loop {
        let finished = done.load(crate::sync::Ordering::Acquire);
        match ring::peek(r, sub).expect("never overrun") {
            Some(rec) => {
                got.push(r.read(rec.payload_off, rec.len));
                ring::release(r, sub, rec.len);
            }
            None if finished => return got,
            None => loom::thread::yield_now(),
        }
    }
}

/// `got` is the last `got.len()` of the messages `[b; 16]` for `b` in
/// `0..n`, in order: a joiner's whole, in-order run ending with the last.
fn assert_suffix(got: &[Vec<u8>], n: u8) {
    let first = n - got.len() as u8;
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, &vec![first + i as u8; 16]);
    }
}

/// Two publishers, one blocking subscriber: both messages arrive whole,
/// each once.
#[test]
fn loom_two_publishers_one_subscriber() {
    loom::model(|| {
        let r = Arc::new(LoomRing::new(64, 16, 2, 1, 0));
        let mut sub = ring::join_subscriber(&*r, 1).unwrap();
        let handles: Vec<_> = [1u8, 2u8]
            .into_iter()
            .map(|b| {
                let r = r.clone();
                loom::thread::spawn(move || {
                    let mut st = ring::join_publisher(&*r, 2).unwrap();
                    send(&r, &mut st, &[b; 4]);
                })
            })
            .collect();
        let mut got = vec![recv(&r, &mut sub), recv(&r, &mut sub)];
        got.sort();
        assert_eq!(got, vec![vec![1u8; 4], vec![2u8; 4]]);
        for h in handles {
            h.join().unwrap();
        }
    });
}

/// One publisher sends three messages through a ring that holds two, so
/// it must wait for the subscriber (space event) and wrap around; the
/// counters start just below 2^64. With both barrier kinds (with
/// `Membarrier` the publisher moves the claim by a plain store).
#[test]
fn loom_back_pressure_and_wrap() {
    for barrier in [Barrier::Fences, Barrier::Membarrier] {
        loom::model(move || {
            let start = u64::MAX - 63;
            let r = Arc::new(LoomRing::with_barrier(64, 16, 1, 1, start, barrier));
            let mut sub = ring::join_subscriber(&*r, 1).unwrap();
            let r2 = r.clone();
            let t = loom::thread::spawn(move || {
                let mut st = ring::join_publisher(&*r2, 2).unwrap();
                for b in 1..=3u8 {
                    send(&r2, &mut st, &[b; 16]);
                }
            });
            for b in 1..=3u8 {
                assert_eq!(recv(&r, &mut sub), vec![b; 16]);
            }
            t.join().unwrap();
        });
    }
}

/// A subscriber joins while a publisher runs with nobody to hold it back
/// (four messages through a ring that holds two, so that the publisher's
/// bound moves past a joiner that read an old head, unless the join pair
/// makes one of them see the other): whatever it receives is
/// a whole, in-order run of messages ending with the last one, never an
/// overwritten one, and the publisher then waits for it. With both
/// barrier kinds: with `Membarrier` the single publisher's claim is a
/// plain store, ordered against the join only by the barriers.
#[test]
fn loom_join_while_publishing() {
    use loom::sync::atomic::AtomicBool;
    for barrier in [Barrier::Fences, Barrier::Membarrier] {
        loom::model(move || {
            let r = Arc::new(LoomRing::with_barrier(64, 16, 1, 1, 0, barrier));
            let done = Arc::new(AtomicBool::new(false));
            let (r2, done2) = (r.clone(), done.clone());
            let t = loom::thread::spawn(move || {
                let mut st = ring::join_publisher(&*r2, 2).unwrap();
                for b in 0..4u8 {
                    send(&r2, &mut st, &[b; 16]);
                }
                done2.store(true, crate::sync::Ordering::Release);
            });
            let mut sub = ring::join_subscriber(&*r, 1).unwrap();
            let got = drain_until(&r, &mut sub, &done);
            t.join().unwrap();
            // A suffix of 0..4 (empty if it joined after the last claim).
            assert_suffix(&got, 4);
        });
    }
}

/// A subscriber joins while its only publisher evicts every subscriber
/// still mid-join before each of its sends (as a publisher does once it
/// has waited `ring::JOIN_GRACE` for a join to finish): an evicted joiner
/// starts its join over, and whatever it receives once joined is a whole,
/// in-order run of messages ending with the last one (a position read
/// before an eviction is never used).
#[test]
fn loom_evicted_joiner_joins_again() {
    use loom::sync::atomic::AtomicBool;
    loom::model(|| {
        let r = Arc::new(LoomRing::new(64, 16, 1, 1, 0));
        let done = Arc::new(AtomicBool::new(false));
        let (r2, done2) = (r.clone(), done.clone());
        let t = loom::thread::spawn(move || {
            let mut st = ring::join_publisher(&*r2, 2).unwrap();
            for b in 0..3u8 {
                ring::evict_joiners(&*r2);
                send(&r2, &mut st, &[b; 16]);
            }
            done2.store(true, crate::sync::Ordering::Release);
        });
        let mut sub = ring::join_subscriber(&*r, 1).expect("joins within its attempts");
        let got = drain_until(&r, &mut sub, &done);
        t.join().unwrap();
        assert_suffix(&got, 3);
    });
}

/// Sets up publisher slot `slot` as a publisher that died right after
/// claiming a 16-byte record at the head (its write-ahead record says
/// so; nothing of the record was written), and moves the head past it.
fn dead_publisher_claim(r: &LoomRing, slot: u32) -> u64 {
    use crate::sync::Ordering::Relaxed;
    let p = r.claim.load(Relaxed);
    let s = r.pub_slot(slot);
    s.state.store(super::layout::SLOT_ACTIVE, Relaxed);
    s.pending_len.store(16, Relaxed);
    s.pending_total.store(32 | ring::PENDING_OWNED, Relaxed);
    s.pending_pos.store(p, Relaxed);
    r.claim.store(p + 32, Relaxed);
    p
}

/// A publisher died with an open claim at position 0 that two subscribers
/// wait on. While the second subscriber leaves and a live publisher sends
/// (it may lap onto those bytes once nobody needs them), the first repairs
/// the claim pinned by its own position, then reads on: it sees the
/// repaired (discarded) record and both live messages whole. Loom reports
/// a repair store racing with the live publisher's bytes as a data race
/// (payload) or as a wrong record (stamp, meta).
#[test]
fn loom_pinned_repair_races_with_a_leaving_subscriber_and_a_live_publisher() {
    loom::model(|| {
        let r = Arc::new(LoomRing::new(64, 16, 2, 2, 0));
        let mut sub = ring::join_subscriber(&*r, 1).unwrap();
        let other = ring::join_subscriber(&*r, 2).unwrap();
        let _ = dead_publisher_claim(&r, 0);
        let r2 = r.clone();
        let leaver = loom::thread::spawn(move || ring::leave_subscriber(&*r2, &other));
        let r3 = r.clone();
        let live = loom::thread::spawn(move || {
            let mut st = ring::take_publisher_slot(&*r3, 1, 3).unwrap();
            for b in 1..=2u8 {
                send(&r3, &mut st, &[b; 16]);
            }
        });
        let outcome = repair::repair_dead_publisher(&*r, 0, |_| false, Some(sub.published));
        assert_eq!(
            outcome,
            repair::Repair::Repaired,
            "pinned by this subscriber"
        );
        repair::free_dead_publisher(&*r, 0);
        assert_eq!(recv(&r, &mut sub), vec![1u8; 16]);
        assert_eq!(recv(&r, &mut sub), vec![2u8; 16]);
        leaver.join().unwrap();
        live.join().unwrap();
    });
}

/// A reaper that pins nothing (a publisher, a monitor) never writes a
/// dead publisher's claim: while a subscriber needs it the repair is left
/// pending for that subscriber; once nobody does, it is not needed.
#[test]
fn loom_unpinned_reaper_leaves_the_repair_to_a_subscriber() {
    loom::model(|| {
        let r = Arc::new(LoomRing::new(64, 16, 2, 1, 0));
        let sub = ring::join_subscriber(&*r, 1).unwrap();
        let _ = dead_publisher_claim(&r, 0);
        let r2 = r.clone();
        let leaver = loom::thread::spawn(move || ring::leave_subscriber(&*r2, &sub));
        let outcome = repair::repair_dead_publisher(&*r, 0, |_| false, None);
        assert_ne!(outcome, repair::Repair::Repaired, "nothing pins the claim");
        leaver.join().unwrap();
        assert_eq!(
            repair::repair_dead_publisher(&*r, 0, |_| false, None),
            repair::Repair::NotNeeded,
            "nobody needs it once the subscriber left"
        );
    });
}

/// A subscriber joins from the oldest record while the only publisher
/// sends four messages around a two-record ring: it receives a whole,
/// in-order run ending with the last message, and — once the ring has
/// wrapped before it joined — the history still in the ring (at least the
/// message before the last); its held position keeps the publisher out of
/// the records it looks at (an overwritten record would fail `peek`).
#[test]
fn loom_join_from_oldest_while_publishing() {
    use loom::sync::atomic::AtomicBool;
    loom::model(|| {
        let r = Arc::new(LoomRing::new(64, 16, 1, 1, 0));
        let done = Arc::new(AtomicBool::new(false));
        let (r2, done2) = (r.clone(), done.clone());
        let t = loom::thread::spawn(move || {
            let mut st = ring::join_publisher(&*r2, 2).unwrap();
            for b in 0..4u8 {
                send(&r2, &mut st, &[b; 16]);
            }
            done2.store(true, crate::sync::Ordering::Release);
        });
        let mut sub = ring::join_subscriber_at(&*r, 1, ring::Start::Oldest).unwrap();
        let joined_at = sub.pos;
        let got = drain_until(&r, &mut sub, &done);
        t.join().unwrap();
        assert_suffix(&got, 4);
        // Joined at the first record, or found one within the last ring:
        // with two records a ring, never fewer than two messages once
        // something was there to replay.
        if joined_at != 0 {
            assert!(got.len() >= 2, "joined at {joined_at}, got {got:?}");
        }
    });
}

/// Two publishers and no subscriber (or only lossy ones, which publishers
/// pass by): while one holds a claim it has not written yet, the other
/// sends around the two-record ring and must not claim those bytes again:
/// it waits for the commit (which wakes it). Payload bytes are loom
/// `UnsafeCell`s, so a write into the other's claimed bytes is reported as
/// a data race, and a lost wake-up as a deadlock.
#[test]
fn loom_a_publisher_never_laps_a_claim_being_written() {
    loom::model(|| {
        let r = Arc::new(LoomRing::new(64, 16, 2, 1, 0));
        let r2 = r.clone();
        let slow = loom::thread::spawn(move || {
            let mut st = ring::join_publisher(&*r2, 2).unwrap();
            send(&r2, &mut st, &[7; 16]);
        });
        let mut st = ring::join_publisher(&*r, 1).unwrap();
        for b in 0..3u8 {
            send(&r, &mut st, &[b; 16]);
        }
        slow.join().unwrap();
    });
}

/// As a lossy `Subscriber::try_recv`: `Ok(Some)` a message validated after
/// its copy, `Ok(None)` nothing yet, `Err(())` lapped (the subscriber went
/// on from the oldest intact record, as `lapped_now` does).
fn try_recv_lossy(r: &LoomRing, st: &mut ring::SubState) -> Result<Option<Vec<u8>>, ()> {
    let check_from = st.pos;
    if ring::behind(r, check_from) {
        st.pos = ring::resync(r);
        return Err(());
    }
    let found = ring::peek(r, st);
    let rec = match found {
        Ok(Some(rec)) => rec,
        // Nothing, or a header overwritten while it was read.
        _ => {
            if ring::lapped(r, check_from) {
                st.pos = ring::resync(r);
                return Err(());
            }
            found.expect("a corrupt record that was not lapped");
            return Ok(None);
        }
    };
    let p = st.pos;
    let v = r.read_racy(rec.payload_off, rec.len);
    let intact = ring::still_committed(r, p, rec);
    if ring::lapped(r, check_from) {
        st.pos = ring::resync(r);
        return Err(());
    }
    assert!(intact, "a record rewritten without a lap");
    ring::release(r, st, rec.len);
    Ok(Some(v))
}

/// A lossy subscriber (it holds nobody back) polls while a publisher laps
/// the two-record ring: every message it accepts after validation is whole
/// (`[b; 2]`) and they come in order; laps are reported instead. Payload
/// bytes are relaxed atomics here, so a message accepted although it was
/// overwritten while copied shows as a mixed or out-of-order message, not
/// as a data race. (A stopped publisher writing into a newer record is
/// ruled out by the open-claim bound: `loom_a_publisher_never_laps_a_claim_being_written`.)
#[test]
fn loom_a_lossy_subscriber_never_accepts_an_overwritten_message() {
    loom::model(|| {
        let r = Arc::new(LoomRing::racy(64, 16, 1, 1));
        let mut sub = ring::take_subscriber_slot(&*r, 0, 9, ring::Start::Now, true)
            .unwrap()
            .unwrap();
        let r2 = r.clone();
        let publisher = loom::thread::spawn(move || {
            let mut st = ring::join_publisher(&*r2, 1).unwrap();
            for b in 1..=3u8 {
                send(&r2, &mut st, &[b; 2]);
            }
        });
        let mut last = 0u8;
        for _ in 0..2 {
            if let Ok(Some(m)) = try_recv_lossy(&r, &mut sub) {
                assert!(m.iter().all(|&x| x == m[0]), "a torn message: {m:?}");
                assert!(m[0] > last, "{} after {last}", m[0]);
                last = m[0];
            }
        }
        publisher.join().unwrap();
    });
}

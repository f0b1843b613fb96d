//! The channel's shared-memory layout (the data region of a segment of
//! kind [`Kind::Channel`](crate::Kind::Channel)). Mirrored in
//! `docs/ARCHITECTURE.md`.
//!
//! ```text
//! offset            size              what
//!      0            128               Config: written once by the creator before the header's
//!                                     ready word; copied and validated by every opener
//!    128            128               claim line: claim (u64) — the next free byte position
//!    256            128               join line: sub_gen (u32), want_space (u32 @ +4),
//!                                     retired_messages (u64 @ +8), retired_bytes (u64 @ +16)
//!    384            128               data event (EventWord): publishers → subscribers
//!    512            128               space event (EventWord): subscribers → publishers
//!    640            128 × P           publisher slots (PubSlot)
//!    640 + 128P     128 × S           subscriber slots (SubSlot)
//!    640 + 128(P+S) type_len          the type record of a typed channel (`Config::type_len`
//!                                     bytes, 0 when untyped; `crate::typed::record`)
//!    ring_offset    capacity          the ring (ring_offset = the above rounded up to 4096)
//! ```
//!
//! Every line is [`LINE`] (128) bytes so that words written by different
//! parties never share a cache line (nor an adjacent-line prefetch pair).
//!
//! Records in the ring start at 16-byte aligned positions:
//!
//! ```text
//! offset size field
//!      0    8 stamp  position ^ STAMP_KEY, stored last (Release) = "committed"
//!      8    4 len    payload length (0 for a pad record)
//!     12    4 flags  FLAG_PAD: skip to the end of the ring; FLAG_DISCARD: skip this record
//!     16  len payload, padded to a multiple of 16
//! ```
//! (`len` and `flags` are one 64-bit word, `meta`, written before the stamp.)

use crate::sync::{AtomicU32, AtomicU64};

use crate::sync::event_word::EventWord;
use crate::sync::Barrier;

/// The cache-line padding unit.
pub(crate) const LINE: u64 = 128;
/// Bytes of a record header.
pub(crate) const RECORD_HEADER: u64 = 16;
/// XOR-ed into every stamp so that zeroed memory never reads as committed.
pub(crate) const STAMP_KEY: u64 = 0x6d65_6d6c_616e_6521; // "memlane!"
/// The record is padding up to the end of the ring.
pub(crate) const FLAG_PAD: u32 = 1;
/// The record was loaned and dropped without commit: skip it.
pub(crate) const FLAG_DISCARD: u32 = 2;
/// Every flag bit this version knows.
pub(crate) const KNOWN_FLAGS: u32 = FLAG_PAD | FLAG_DISCARD;

/// Magic of the config block ("CHAN").
pub(crate) const CONFIG_MAGIC: u32 = 0x4e41_4843;
/// Version of the channel layout.
/// (5: the lossy subscriber slot state and its loss counters; 6: the
/// type record, `Config::type_len`.)
pub(crate) const LAYOUT_VERSION: u32 = 6;
/// Largest type record (`Config::type_len`).
pub(crate) const MAX_TYPE_LEN: u32 = 64 << 10;

/// Smallest ring capacity.
pub const MIN_CAPACITY: u64 = 4096;
/// Largest ring capacity (16 GiB).
pub const MAX_CAPACITY: u64 = 1 << 34;
/// Largest number of publishers or subscribers.
pub const MAX_ENDPOINTS: u32 = 1024;

/// Slot states.
pub(crate) const SLOT_FREE: u32 = 0;
/// A subscriber is joining: its position is not yet set.
pub(crate) const SLOT_CLAIMED: u32 = 1;
/// In use.
pub(crate) const SLOT_ACTIVE: u32 = 2;
/// A lossy subscriber: in use, but it never holds publishers back (their
/// scan counts only [`SLOT_ACTIVE`] positions), and nothing it needs is
/// ever repaired on its behalf.
pub(crate) const SLOT_LOSSY: u32 = 3;

/// Offsets of the fixed lines.
pub(crate) const CLAIM_OFFSET: u64 = 128;
pub(crate) const JOIN_OFFSET: u64 = 256;
pub(crate) const DATA_EVENT_OFFSET: u64 = 384;
pub(crate) const SPACE_EVENT_OFFSET: u64 = 512;
pub(crate) const SLOTS_OFFSET: u64 = 640;

/// The configuration block at offset 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Config {
    /// [`CONFIG_MAGIC`].
    pub(crate) magic: u32,
    /// [`LAYOUT_VERSION`].
    pub(crate) version: u32,
    /// Ring capacity in bytes: a power of two in [MIN_CAPACITY, MAX_CAPACITY].
    pub(crate) capacity: u64,
    /// Largest payload; RECORD_HEADER + round16(max_message) <= capacity / 2.
    pub(crate) max_message: u32,
    /// Publisher slots, 1..=MAX_ENDPOINTS.
    pub(crate) max_publishers: u32,
    /// Subscriber slots, 1..=MAX_ENDPOINTS.
    pub(crate) max_subscribers: u32,
    /// 0 = lossless (blocking) mode; other values are reserved.
    pub(crate) mode: u32,
    /// The claim position the channel started at.
    pub(crate) initial_position: u64,
    /// Offset of the ring; must equal [`ring_offset`] of the fields above.
    pub(crate) ring_offset: u64,
    /// How the Dekker pairs are ordered: [`BARRIERS_FENCES`] or
    /// [`BARRIERS_MEMBARRIER`] (every process using the channel must
    /// then be registered for `membarrier`).
    pub(crate) barriers: u32,
    /// Bytes of the type record after the subscriber slots: 0 (an
    /// untyped channel) or a multiple of 16 up to [`MAX_TYPE_LEN`].
    pub(crate) type_len: u32,
    /// Reserved, 0.
    pub(crate) reserved: [u64; 9],
}

/// `Config::barriers`: SeqCst fences on both sides ([`Barrier::Fences`]).
pub(crate) const BARRIERS_FENCES: u32 = 0;
/// `Config::barriers`: [`Barrier::Membarrier`].
pub(crate) const BARRIERS_MEMBARRIER: u32 = 1;

const _: () = {
    assert!(std::mem::size_of::<Config>() == 128);
    assert!(std::mem::offset_of!(Config, magic) == 0);
    assert!(std::mem::offset_of!(Config, version) == 4);
    assert!(std::mem::offset_of!(Config, capacity) == 8);
    assert!(std::mem::offset_of!(Config, max_message) == 16);
    assert!(std::mem::offset_of!(Config, max_publishers) == 20);
    assert!(std::mem::offset_of!(Config, max_subscribers) == 24);
    assert!(std::mem::offset_of!(Config, mode) == 28);
    assert!(std::mem::offset_of!(Config, initial_position) == 32);
    assert!(std::mem::offset_of!(Config, ring_offset) == 40);
    assert!(std::mem::offset_of!(Config, barriers) == 48);
    assert!(std::mem::offset_of!(Config, type_len) == 52);
    assert!(std::mem::offset_of!(Config, reserved) == 56);
};

/// The join line.
#[repr(C)]
pub(crate) struct JoinLine {
    /// Bumped (SeqCst) by every subscriber that joins, before it reads
    /// `claim`; publishers compare it around their claim (see ring.rs).
    pub(crate) sub_gen: AtomicU32,
    /// Non-zero while a publisher has found the ring full and waits for
    /// space: subscribers then publish their progress every `capacity / 64`
    /// bytes instead of every `capacity / 16` (see `ring::advance`).
    pub(crate) want_space: AtomicU32,
    /// Messages sent by publishers that have left.
    pub(crate) retired_messages: AtomicU64,
    /// Payload bytes sent by publishers that have left.
    pub(crate) retired_bytes: AtomicU64,
}

// Checked in production builds (loom atomics have another size).
#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::offset_of!(JoinLine, sub_gen) == 0);
    assert!(std::mem::offset_of!(JoinLine, want_space) == 4);
    assert!(std::mem::offset_of!(JoinLine, retired_messages) == 8);
    assert!(std::mem::offset_of!(JoinLine, retired_bytes) == 16);
    assert!(std::mem::size_of::<JoinLine>() <= LINE as usize);
    assert!(std::mem::size_of::<EventWord>() <= LINE as usize);
};

/// A publisher slot (one line).
#[repr(C)]
pub(crate) struct PubSlot {
    /// SLOT_FREE or SLOT_ACTIVE.
    pub(crate) state: AtomicU32,
    /// Owner's pid (informational: pids are reused).
    pub(crate) pid: AtomicU32,
    /// Messages sent (written only by the owner).
    pub(crate) messages: AtomicU64,
    /// Payload bytes sent (written only by the owner).
    pub(crate) bytes: AtomicU64,
    /// Write-ahead record of the claim in progress: the head position the
    /// owner is about to claim (stored Release before its claim CAS).
    pub(crate) pending_pos: AtomicU64,
    /// Bytes of that claim (pad + record); 0 when no claim is in progress
    /// (cleared, Release, after the commit).
    pub(crate) pending_total: AtomicU64,
    /// Payload length of that claim.
    pub(crate) pending_len: AtomicU64,
    /// A hint, see [`pinned_cpu_hint`]: 0, or 1 + the one CPU the owner's
    /// affinity allowed when it joined (so subscribers pinned to that CPU
    /// stop spinning early, see `ring::wait_for_data`). Written by the
    /// owner when it takes the slot; bytes that older versions left
    /// reserved (zero), so a slot of an older publisher reads "no hint".
    pub(crate) cpu: AtomicU32,
}

/// [`PubSlot::cpu`] of a publisher pinned to `cpu` (0 = no hint).
pub(crate) const fn cpu_hint(cpu: Option<u32>) -> u32 {
    match cpu {
        Some(c) if c < MAX_CPUS => c + 1,
        _ => 0,
    }
}

/// CPU numbers a [`PubSlot::cpu`] hint may name: below Linux's largest
/// `NR_CPUS` (8192). Anything else in the word is ignored.
pub(crate) const MAX_CPUS: u32 = 8192;

/// The CPU a [`PubSlot::cpu`] word names, validated: `None` for 0 (no
/// hint) and for a value no memlane writes (another process may have
/// written anything there). Only ever a hint for how long to spin.
pub(crate) const fn pinned_cpu_hint(word: u32) -> Option<u32> {
    match word.checked_sub(1) {
        Some(c) if c < MAX_CPUS => Some(c),
        _ => None,
    }
}

// Checked in production builds (loom atomics have another size).
#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::offset_of!(PubSlot, state) == 0);
    assert!(std::mem::offset_of!(PubSlot, pid) == 4);
    assert!(std::mem::offset_of!(PubSlot, messages) == 8);
    assert!(std::mem::offset_of!(PubSlot, bytes) == 16);
    assert!(std::mem::offset_of!(PubSlot, pending_pos) == 24);
    assert!(std::mem::offset_of!(PubSlot, pending_total) == 32);
    assert!(std::mem::offset_of!(PubSlot, pending_len) == 40);
    assert!(std::mem::offset_of!(PubSlot, cpu) == 48);
    assert!(std::mem::size_of::<PubSlot>() <= LINE as usize);
};

/// A subscriber slot (one line).
#[repr(C)]
pub(crate) struct SubSlot {
    /// SLOT_FREE, SLOT_CLAIMED, SLOT_ACTIVE or SLOT_LOSSY.
    pub(crate) state: AtomicU32,
    /// Owner's pid (informational).
    pub(crate) pid: AtomicU32,
    /// The next byte position this subscriber will read; everything before
    /// it has been consumed. Stored (Release) by the owner after reading;
    /// loaded by publishers to bound their claims (ACTIVE slots only).
    pub(crate) position: AtomicU64,
    /// Messages received (written only by the owner).
    pub(crate) messages: AtomicU64,
    /// Payload bytes received (written only by the owner).
    pub(crate) bytes: AtomicU64,
    /// A lossy subscriber's messages lost to publishers that lapped it
    /// (written only by the owner; informational).
    pub(crate) lost_messages: AtomicU64,
    /// Its ring bytes lost (written only by the owner; informational).
    pub(crate) lost_bytes: AtomicU64,
}

// Checked in production builds (loom atomics have another size).
#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::offset_of!(SubSlot, state) == 0);
    assert!(std::mem::offset_of!(SubSlot, pid) == 4);
    assert!(std::mem::offset_of!(SubSlot, position) == 8);
    assert!(std::mem::offset_of!(SubSlot, messages) == 16);
    assert!(std::mem::offset_of!(SubSlot, bytes) == 24);
    assert!(std::mem::offset_of!(SubSlot, lost_messages) == 32);
    assert!(std::mem::offset_of!(SubSlot, lost_bytes) == 40);
    assert!(std::mem::size_of::<SubSlot>() <= LINE as usize);
};

/// Rounds `n` up to a multiple of 16.
#[inline]
pub(crate) const fn round16(n: u64) -> u64 {
    (n + 15) & !15
}

/// The ring bytes a message of `len` takes.
#[inline]
pub(crate) const fn record_size(len: u64) -> u64 {
    RECORD_HEADER + round16(len)
}

/// Offset of publisher slot `i`.
pub(crate) const fn pub_slot_offset(i: u64) -> u64 {
    SLOTS_OFFSET + i * LINE
}

/// Offset of subscriber slot `i`.
pub(crate) const fn sub_slot_offset(max_publishers: u64, i: u64) -> u64 {
    SLOTS_OFFSET + max_publishers * LINE + i * LINE
}

/// Offset of the ring.
pub(crate) const fn ring_offset(max_publishers: u64, max_subscribers: u64) -> u64 {
    let end = sub_slot_offset(max_publishers, max_subscribers);
    (end + 4095) & !4095
}

/// The validated geometry every endpoint works from (a local copy: never
/// re-read from shared memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) capacity: u64,
    pub(crate) mask: u64,
    pub(crate) max_message: u32,
    pub(crate) max_publishers: u32,
    pub(crate) max_subscribers: u32,
    pub(crate) ring_offset: u64,
    pub(crate) initial_position: u64,
    /// How the wait/notify and join pairs are ordered (`Config::barriers`).
    pub(crate) barrier: Barrier,
    /// Bytes of the type record (`Config::type_len`; 0: untyped).
    pub(crate) type_len: u32,
}

impl Geometry {
    /// Checks the creator's parameters; returns the geometry or what is wrong.
    pub(crate) fn new(
        capacity: u64,
        max_message: u64,
        max_publishers: u32,
        max_subscribers: u32,
        initial_position: u64,
    ) -> Result<Geometry, String> {
        if capacity == 0 {
            return Err(
                "the capacity is 0; use a power of two from 4KiB to 16GiB, e.g. 1MiB".into(),
            );
        }
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(format!(
                "the capacity {capacity} is not a power of two from {MIN_CAPACITY} (4KiB) to {MAX_CAPACITY} (16GiB)"
            ));
        }
        // A record that does not fit before the end of the ring is preceded
        // by padding up to it: pad + record < 2 records. So that the largest
        // message fits an empty ring wherever the head is, a record may
        // take at most half the capacity.
        if max_message > u64::from(u32::MAX) || record_size(max_message) > capacity / 2 {
            return Err(format!(
                "the maximum message size {max_message} is too large for the capacity {capacity}: at most {} bytes (half the capacity, less a 16-byte record header)",
                capacity / 2 - RECORD_HEADER
            ));
        }
        if initial_position % 16 != 0 {
            return Err(format!(
                "the initial position {initial_position} is not a multiple of 16"
            ));
        }
        for (what, n) in [
            ("publishers", max_publishers),
            ("subscribers", max_subscribers),
        ] {
            if n == 0 || n > MAX_ENDPOINTS {
                return Err(format!(
                    "the maximum number of {what} is {n}; use 1 to {MAX_ENDPOINTS}"
                ));
            }
        }
        Ok(Geometry {
            capacity,
            mask: capacity - 1,
            max_message: max_message as u32,
            max_publishers,
            max_subscribers,
            ring_offset: ring_offset(u64::from(max_publishers), u64::from(max_subscribers)),
            initial_position,
            barrier: Barrier::Fences,
            type_len: 0,
        })
    }

    /// The same geometry with a type record of `type_len` bytes (a
    /// multiple of 16 up to [`MAX_TYPE_LEN`]) before the ring.
    pub(crate) fn with_type_len(self, type_len: u32) -> Result<Geometry, String> {
        if type_len % 16 != 0 || type_len > MAX_TYPE_LEN {
            return Err(format!(
                "the type record length {type_len} is not a multiple of 16 up to {MAX_TYPE_LEN}"
            ));
        }
        let end = self.type_offset() + u64::from(type_len);
        Ok(Geometry {
            type_len,
            ring_offset: (end + 4095) & !4095,
            ..self
        })
    }

    /// Offset of the type record: right after the subscriber slots.
    pub(crate) fn type_offset(&self) -> u64 {
        sub_slot_offset(
            u64::from(self.max_publishers),
            u64::from(self.max_subscribers),
        )
    }

    /// The same geometry with `barrier`.
    pub(crate) fn with_barrier(self, barrier: Barrier) -> Geometry {
        Geometry { barrier, ..self }
    }

    /// Whether the claim is moved by a plain store instead of a CAS: a
    /// channel with one publisher slot, whose join pair is then ordered by
    /// the publisher's light barrier and the joiner's membarrier.
    #[inline]
    pub(crate) fn single_writer(&self) -> bool {
        self.max_publishers == 1 && self.barrier == Barrier::Membarrier
    }

    /// How many consumed bytes a subscriber may leave unpublished before
    /// it publishes its position (see `ring::advance`).
    pub(crate) fn publish_lazy_bytes(&self) -> u64 {
        self.capacity / 16
    }

    /// How many consumed bytes a subscriber may leave unpublished while a
    /// publisher waits for space (`want_space`). Publishing at every message
    /// then made the subscriber's slot line bounce between the cores once
    /// per message for as long as the ring ran full; in chunks of
    /// `capacity / 64` it bounces once per chunk (64 B throughput: 17 → 24 M
    /// messages/s in the same runs, see `docs/benchmarks/`). In a 4 KiB
    /// ring every record of 64 bytes or more is still published at once.
    pub(crate) fn publish_wanted_bytes(&self) -> u64 {
        self.capacity / 64
    }

    /// Whether a subscriber must publish as soon as it catches up (the
    /// next record is not committed) rather than when it next finds the
    /// ring empty. Less than `publish_lazy_bytes` are ever left
    /// unpublished, so a caught-up subscriber can make a publisher see the
    /// ring full only if two of the largest records and that slack exceed
    /// the capacity.
    pub(crate) fn publish_on_catch_up(&self) -> bool {
        2 * record_size(u64::from(self.max_message)) + self.publish_lazy_bytes() > self.capacity
    }

    /// The data-region length the geometry needs.
    pub(crate) fn data_len(&self) -> u64 {
        self.ring_offset + self.capacity
    }

    /// The config block describing this geometry.
    pub(crate) fn config(&self) -> Config {
        Config {
            magic: CONFIG_MAGIC,
            version: LAYOUT_VERSION,
            capacity: self.capacity,
            max_message: self.max_message,
            max_publishers: self.max_publishers,
            max_subscribers: self.max_subscribers,
            mode: 0,
            initial_position: self.initial_position,
            ring_offset: self.ring_offset,
            barriers: match self.barrier {
                Barrier::Fences => BARRIERS_FENCES,
                Barrier::Membarrier => BARRIERS_MEMBARRIER,
            },
            type_len: self.type_len,
            reserved: [0; 9],
        }
    }

    /// Validates a config block copied out of shared memory against the
    /// mapped data length (from `fstat`, not from any header).
    pub(crate) fn from_config(c: &Config, data_len: u64) -> Result<Geometry, String> {
        if c.magic != CONFIG_MAGIC {
            return Err("the channel config has the wrong magic".into());
        }
        if c.version != LAYOUT_VERSION {
            return Err(format!(
                "channel layout version {} (this memlane reads {LAYOUT_VERSION})",
                c.version
            ));
        }
        if c.mode != 0 {
            return Err(format!("unknown channel mode {}", c.mode));
        }
        let barrier = match c.barriers {
            BARRIERS_FENCES => Barrier::Fences,
            BARRIERS_MEMBARRIER => Barrier::Membarrier,
            other => return Err(format!("unknown barrier kind {other}")),
        };
        let g = Geometry::new(
            c.capacity,
            u64::from(c.max_message),
            c.max_publishers,
            c.max_subscribers,
            c.initial_position,
        )?
        .with_barrier(barrier)
        .with_type_len(c.type_len)?;
        if c.ring_offset != g.ring_offset {
            return Err(format!(
                "ring offset {} (expected {})",
                c.ring_offset, g.ring_offset
            ));
        }
        if g.data_len() != data_len {
            return Err(format!(
                "the channel needs {} bytes but {data_len} are mapped",
                g.data_len()
            ));
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_rejects_bad_parameters() {
        assert!(Geometry::new(0, 16, 1, 1, 0)
            .unwrap_err()
            .contains("capacity is 0"));
        assert!(Geometry::new(5000, 16, 1, 1, 0).is_err());
        assert!(Geometry::new(2048, 16, 1, 1, 0).is_err());
        assert!(Geometry::new(4096, 4096, 1, 1, 0).is_err());
        assert!(Geometry::new(4096, 4080, 1, 1, 0).is_err());
        assert!(Geometry::new(4096, 2033, 1, 1, 0).is_err());
        assert!(Geometry::new(4096, 2032, 1, 1, 0).is_ok());
        assert!(Geometry::new(4096, 16, 0, 1, 0).is_err());
        assert!(Geometry::new(4096, 16, 1, MAX_ENDPOINTS + 1, 0).is_err());
    }

    /// A publisher slot's CPU word is a hint another process wrote: only
    /// `1 + cpu` for a CPU below `MAX_CPUS` names a CPU; 0 and anything
    /// out of range name none (and never panic).
    #[test]
    fn cpu_hints_are_range_checked() {
        assert_eq!(pinned_cpu_hint(0), None);
        assert_eq!(pinned_cpu_hint(1), Some(0));
        assert_eq!(pinned_cpu_hint(8), Some(7));
        assert_eq!(pinned_cpu_hint(MAX_CPUS), Some(MAX_CPUS - 1));
        assert_eq!(pinned_cpu_hint(MAX_CPUS + 1), None);
        assert_eq!(pinned_cpu_hint(u32::MAX), None);
        for cpu in [0, 1, 63, MAX_CPUS - 1] {
            assert_eq!(pinned_cpu_hint(cpu_hint(Some(cpu))), Some(cpu));
        }
        assert_eq!(cpu_hint(None), 0);
        assert_eq!(cpu_hint(Some(MAX_CPUS)), 0);
        assert_eq!(cpu_hint(Some(u32::MAX)), 0);
    }

    #[test]
    fn layout_offsets() {
        assert_eq!(record_size(0), 16);
        assert_eq!(record_size(1), 32);
        assert_eq!(record_size(16), 32);
        assert_eq!(pub_slot_offset(0), 640);
        assert_eq!(sub_slot_offset(4, 0), 640 + 512);
        assert_eq!(ring_offset(4, 4), 4096);
        assert_eq!(ring_offset(16, 16), 8192);
        let g = Geometry::new(1 << 20, 65536, 4, 8, 0).unwrap();
        assert_eq!(g.data_len(), 4096 + (1 << 20));
        assert_eq!(Geometry::from_config(&g.config(), g.data_len()), Ok(g));
    }

    #[test]
    fn config_validation_catches_each_fault() {
        let g = Geometry::new(1 << 16, 1024, 2, 2, 0).unwrap();
        let len = g.data_len();
        let mut c = g.config();
        c.magic = 0;
        assert!(Geometry::from_config(&c, len).is_err());
        let mut c = g.config();
        c.version = 9;
        assert!(Geometry::from_config(&c, len).is_err());
        let mut c = g.config();
        c.capacity = 3;
        assert!(Geometry::from_config(&c, len).is_err());
        let mut c = g.config();
        c.ring_offset = 0;
        assert!(Geometry::from_config(&c, len).is_err());
        let mut c = g.config();
        c.max_message = u32::MAX;
        assert!(Geometry::from_config(&c, len).is_err());
        assert!(Geometry::from_config(&g.config(), len + 4096).is_err());
        let mut c = g.config();
        c.mode = 1;
        assert!(Geometry::from_config(&c, len).is_err());
        let mut c = g.config();
        c.type_len = 8;
        assert!(Geometry::from_config(&c, len).is_err());
        let mut c = g.config();
        c.type_len = MAX_TYPE_LEN + 16;
        assert!(Geometry::from_config(&c, len).is_err());
        let mut c = g.config();
        c.barriers = 2;
        assert!(Geometry::from_config(&c, len)
            .unwrap_err()
            .contains("unknown barrier kind 2"));
    }

    #[test]
    fn type_record_sits_between_the_slots_and_the_ring() {
        // P = S = 8: the slots end at 2688, so a record of up to 1408
        // bytes leaves the ring at 4096; one more line moves it to 8192.
        let g = Geometry::new(1 << 16, 1024, 8, 8, 0).unwrap();
        assert_eq!((g.type_offset(), g.ring_offset), (2688, 4096));
        let t = g.with_type_len(1408).unwrap();
        assert_eq!(
            (t.type_offset(), t.ring_offset, t.type_len),
            (2688, 4096, 1408)
        );
        assert_eq!(Geometry::from_config(&t.config(), t.data_len()), Ok(t));
        let t = g.with_type_len(1424).unwrap();
        assert_eq!(t.ring_offset, 8192);
        assert_eq!(Geometry::from_config(&t.config(), t.data_len()), Ok(t));
        assert!(g.with_type_len(20).is_err());
    }

    #[test]
    fn barrier_kind_round_trips_through_the_config() {
        for b in [Barrier::Fences, Barrier::Membarrier] {
            let g = Geometry::new(1 << 16, 1024, 1, 2, 0)
                .unwrap()
                .with_barrier(b);
            assert_eq!(Geometry::from_config(&g.config(), g.data_len()), Ok(g));
            assert_eq!(g.single_writer(), b == Barrier::Membarrier);
        }
        let multi = Geometry::new(1 << 16, 1024, 2, 2, 0)
            .unwrap()
            .with_barrier(Barrier::Membarrier);
        assert!(!multi.single_writer(), "two publisher slots need the CAS");
    }
}

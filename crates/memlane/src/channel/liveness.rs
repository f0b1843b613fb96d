//! Endpoint liveness without trusting pids.
//!
//! Every publisher and subscriber slot has a token file in the directory
//! of the channel's name: `.memlane-ep.<name>.p<slot>` or `.s<slot>`. An
//! endpoint takes an exclusive `flock` on its slot's token *before* it
//! takes the slot, holds it for as long as it is joined, and marks the
//! slot FREE before letting go. `flock` locks belong to the open file
//! description (opened `O_CLOEXEC`, so a child never inherits one) and the
//! kernel drops them when the process dies, even by SIGKILL.
//!
//! So whoever holds slot `i`'s token has exclusive rights to slot `i`: a
//! process that manages to lock the token of a slot that is not FREE knows
//! its owner is dead, and may reclaim the slot (repairing a publisher's
//! uncommitted claim first). A stopped (SIGSTOP) endpoint still holds its
//! token and is never reclaimed.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;

use super::layout::SLOT_FREE;
use super::ring::{self, RingMem};
use super::shm::ShmRing;
use crate::sync::Ordering;
use crate::sys::{self, Dir};

/// Which kind of endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Publisher,
    Subscriber,
}

/// The token file name of `role`'s slot `slot` of channel `name`.
pub(crate) fn token_name(name: &str, role: Role, slot: u32) -> String {
    let r = match role {
        Role::Publisher => 'p',
        Role::Subscriber => 's',
    };
    format!(".memlane-ep.{name}.{r}{slot}")
}

/// Token files of one channel.
pub(crate) struct Tokens {
    dir: Option<Dir>,
    name: String,
}

impl Tokens {
    /// Tokens in `dir` for channel `name` (without a usable directory,
    /// liveness is unknown and nothing is ever reclaimed).
    pub(crate) fn new(dir: &Path, name: &str) -> Tokens {
        Tokens {
            dir: Dir::open(dir).ok(),
            name: name.to_string(),
        }
    }

    /// Whether tokens can be used (the directory of the name is open).
    pub(crate) fn available(&self) -> bool {
        self.dir.is_some()
    }

    /// Locks slot `slot`'s token: `Some(file)` (the lock lives as long as
    /// the file) if no live process holds it.
    ///
    /// The lock counts only if the file is still the one at the name
    /// (tokens are unlinked when released), so each try checks the identity
    /// of the locked file against the name.
    pub(crate) fn try_lock(&self, role: Role, slot: u32) -> Option<File> {
        let dir = self.dir.as_ref()?;
        let name = token_name(&self.name, role, slot);
        for _ in 0..4 {
            let file = dir.open_token(OsStr::new(&name), true).ok()?;
            if !sys::try_lock_exclusive(&file).ok()? {
                return None;
            }
            let id = sys::file_info(&file).ok()?.id;
            if dir.identity(OsStr::new(&name)) == Some(id) {
                return Some(file);
            }
            // Released and unlinked meanwhile: try the new file.
        }
        None
    }

    /// Releases a token held by the caller: removes the file (while still
    /// locked), then unlocks it by closing it.
    pub(crate) fn release(&self, role: Role, slot: u32, token: File) {
        if let Some(dir) = self.dir.as_ref() {
            let _ = dir.unlink(OsStr::new(&token_name(&self.name, role, slot)));
        }
        drop(token);
    }
}

/// What is known of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Its process holds its token and runs.
    Alive,
    /// Its process holds its token but is stopped (SIGSTOP) or traced.
    Stalled,
    /// No process holds its token: it died without leaving; its slot can
    /// be reclaimed (`Channel::reap`).
    Dead,
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Liveness::Alive => "alive",
            Liveness::Stalled => "stalled",
            Liveness::Dead => "dead",
        })
    }
}

/// The liveness of `role`'s slot `slot` whose recorded pid is `pid`.
pub(crate) fn probe(ring: &ShmRing, role: Role, slot: u32, pid: u32) -> Liveness {
    match ring.tokens().try_lock(role, slot) {
        Some(_released_on_drop) => Liveness::Dead,
        None if sys::process_stopped(pid) => Liveness::Stalled,
        None => Liveness::Alive,
    }
}

/// Reclaims the slots of dead endpoints. Returns (publishers, subscribers)
/// reclaimed. `pin` is the caller's published position if it is an ACTIVE
/// subscriber: only such a caller repairs a dead publisher's open claim
/// that a subscriber still needs (see `ring::repair_dead_publisher`); any
/// other leaves that publisher's slot for it.
pub(crate) fn reap(ring: &ShmRing, pin: Option<u64>) -> (u32, u32) {
    let g = *ring.geometry();
    let mut reaped = (0, 0);
    for i in 0..g.max_publishers {
        if ring.pub_slot(i).state.load(Ordering::Acquire) == SLOT_FREE {
            continue;
        }
        if let Some(token) = ring.tokens().try_lock(Role::Publisher, i) {
            // Re-check under the lock: the slot may have been freed by its
            // owner just before we locked.
            if ring.pub_slot(i).state.load(Ordering::Acquire) != SLOT_FREE
                && reclaim_publisher(ring, i, pin)
            {
                reaped.0 += 1;
            }
            ring.tokens().release(Role::Publisher, i, token);
        }
    }
    for i in 0..g.max_subscribers {
        if ring.sub_slot(i).state.load(Ordering::Acquire) == SLOT_FREE {
            continue;
        }
        if let Some(token) = ring.tokens().try_lock(Role::Subscriber, i) {
            if ring.sub_slot(i).state.load(Ordering::Acquire) != SLOT_FREE {
                ring::free_dead_subscriber(ring, i);
                reaped.1 += 1;
            }
            ring.tokens().release(Role::Subscriber, i, token);
        }
    }
    reaped
}

/// Repairs and frees dead publisher slot `slot` (its token held by the
/// caller); `pin` as for [`reap`]. Returns false, leaving the slot as it
/// is, if its open claim still needs a repair the caller could not make.
pub(crate) fn reclaim_publisher(ring: &ShmRing, slot: u32, pin: Option<u64>) -> bool {
    let g = *ring.geometry();
    let repair = ring::repair_dead_publisher(
        ring,
        slot,
        |p| {
            (0..g.max_publishers).any(|j| {
                if j == slot {
                    return false;
                }
                // Any other slot, live or dead, that records a claim at the
                // same position: the CAS may have been its.
                let s = ring.pub_slot(j);
                s.state.load(Ordering::Acquire) != SLOT_FREE
                    && s.pending_total.load(Ordering::Acquire) != 0
                    && s.pending_pos.load(Ordering::Acquire) == p
            })
        },
        pin,
    );
    if repair == ring::Repair::Pending {
        return false;
    }
    ring::free_dead_publisher(ring, slot);
    true
}

/// How often a blocked endpoint looks for dead peers.
pub(crate) const REAP_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Joins `role` on the first slot whose token can be locked (reclaiming
/// it first if its owner died). Without a usable token directory, joins
/// without a token (liveness then unknown).
pub(crate) fn join<T>(
    ring: &ShmRing,
    role: Role,
    slots: u32,
    take: impl Fn(u32) -> Option<T>,
) -> Option<(T, Option<File>)> {
    if !ring.tokens().available() {
        return (0..slots).find_map(|i| take(i).map(|st| (st, None)));
    }
    for i in 0..slots {
        let Some(token) = ring.tokens().try_lock(role, i) else {
            continue;
        };
        let state = match role {
            Role::Publisher => ring.pub_slot(i).state.load(Ordering::Acquire),
            Role::Subscriber => ring.sub_slot(i).state.load(Ordering::Acquire),
        };
        if state != SLOT_FREE {
            match role {
                Role::Publisher => {
                    // Not freed while a subscriber still needs its open
                    // claim repaired: `take` then fails on this slot.
                    reclaim_publisher(ring, i, None);
                }
                Role::Subscriber => ring::free_dead_subscriber(ring, i),
            }
        }
        if let Some(st) = take(i) {
            return Some((st, Some(token)));
        }
        ring.tokens().release(role, i, token);
    }
    None
}

/// Rate-limits reaping for one endpoint.
#[derive(Debug)]
pub(crate) struct ReapTimer {
    last: Option<std::time::Instant>,
    polls: u32,
}

impl ReapTimer {
    pub(crate) fn new() -> ReapTimer {
        ReapTimer {
            last: None,
            polls: 0,
        }
    }

    /// For a busy-polling receiver: every 64th call, if a reap is due,
    /// evaluates `cond` and reaps if it holds. The condition is not
    /// evaluated on the other calls, so a receiver that polls an empty
    /// channel touches no line a publisher writes.
    pub(crate) fn maybe_reap_if(
        &mut self,
        ring: &ShmRing,
        pin: Option<u64>,
        cond: impl FnOnce() -> bool,
    ) -> bool {
        self.tick() && self.reap_if(ring, pin, cond)
    }

    /// Counts a poll; true every 64th (when [`reap_if`](Self::reap_if)
    /// should be called).
    #[inline]
    pub(crate) fn tick(&mut self) -> bool {
        self.polls = self.polls.wrapping_add(1);
        self.polls % 64 == 0
    }

    /// If a reap is due, evaluates `cond` and reaps if it holds.
    pub(crate) fn reap_if(
        &mut self,
        ring: &ShmRing,
        pin: Option<u64>,
        cond: impl FnOnce() -> bool,
    ) -> bool {
        self.due() && cond() && reap(ring, pin) != (0, 0)
    }

    /// Reaps if the last reap was at least [`REAP_EVERY`] ago; `pin` as
    /// for [`reap`].
    pub(crate) fn maybe_reap(&mut self, ring: &ShmRing, pin: Option<u64>) -> bool {
        self.due() && reap(ring, pin) != (0, 0)
    }

    /// Whether [`REAP_EVERY`] has passed since the last reap; if so, starts
    /// a new interval.
    fn due(&mut self) -> bool {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < REAP_EVERY)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

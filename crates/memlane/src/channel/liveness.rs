//! Endpoint liveness without trusting pids.
//!
//! Every publisher and subscriber slot has one lock byte on the channel's
//! own file, far past its data: [`lock_offset`] is [`LOCK_BASE`] plus
//! `role * MAX_ENDPOINTS + slot` (publishers role 0, subscribers role 1).
//! An endpoint opens the file again as an open file description of its
//! own ([`sys::reopen`]), takes an exclusive lock on its slot's byte
//! *before* it takes the slot, holds it for as long as it is joined, and
//! marks the slot FREE before letting go. The locks are
//! open-file-description locks (`F_OFD_SETLK`) on Linux and `LockFileEx`
//! byte-range locks on Windows: they belong to that description (or
//! handle), conflict between two endpoints of one process too, never pass
//! to a child (`O_CLOEXEC`), and the kernel drops them when the process
//! dies, even by SIGKILL.
//!
//! So whoever holds slot `i`'s lock has exclusive rights to slot `i`: a
//! process that manages to lock the byte of a slot that is not FREE knows
//! its owner is dead, and may reclaim the slot (repairing a publisher's
//! uncommitted claim first). A stopped (SIGSTOP) endpoint still holds its
//! lock and is never reclaimed.
//!
//! The locks live on the file that was opened with its owner checked, so
//! nothing in the (world-writable) directory can be squatted. Taking a
//! write lock needs write access to the file; a process with only read
//! access can test the locks and take *read* locks: it can make a free slot
//! unjoinable and a dead endpoint look alive (a denial of service that
//! joins report as [`JoinError::SlotsLocked`]), but it can never make a live
//! endpoint look dead nor take a slot (see `docs/RELIABILITY.md`).
//!
//! On Windows a page-file segment has no file: its locks live on a lock
//! file `.memlane-lk.<name>` in the segment directory (a per-user
//! directory there), which `gc` removes once no mapping of that name
//! exists and nobody holds a lock on it.

use std::fs::File;
use std::io;

use super::layout::{MAX_ENDPOINTS, SLOT_FREE};
use super::repair;
use super::ring::RingMem;
use super::shm::ShmRing;
use crate::error::JoinError;
use crate::file::RawSegment;
use crate::sync::Ordering;
use crate::sys;

/// Which kind of endpoint (the public [`EndpointRole`](crate::EndpointRole)).
pub(crate) use crate::error::EndpointRole as Role;

/// Offset of the first lock byte: 2^62, far beyond any channel's data
/// (locks past the end of a file are allowed, and on Windows, where
/// byte-range locks are mandatory for `ReadFile`/`WriteFile`, nothing ever
/// reads there). The holders' lock of Windows sits at `u64::MAX - 1`.
pub(crate) const LOCK_BASE: u64 = 1 << 62;

/// The lock byte of `role`'s slot `slot`.
pub(crate) fn lock_offset(role: Role, slot: u32) -> u64 {
    let r = match role {
        Role::Publisher => 0,
        Role::Subscriber => 1,
    };
    LOCK_BASE + r * u64::from(MAX_ENDPOINTS) + u64::from(slot)
}

/// The range of every slot's lock byte: (first byte, length).
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn lock_range() -> (u64, u64) {
    (LOCK_BASE, 2 * u64::from(MAX_ENDPOINTS))
}

/// An open file description (Windows: a handle) of the file a channel's
/// locks live on, of its own: the locks taken through it are its own.
pub(crate) struct LockFile {
    file: File,
    /// For a Windows page-file channel's lock file: its directory and name,
    /// to check after locking that it is still the file at the name.
    #[cfg(windows)]
    side: Option<(sys::Dir, String)>,
}

impl LockFile {
    /// Opens a description of its own of `ring`'s lock file.
    fn open(ring: &ShmRing) -> io::Result<LockFile> {
        LockFile::open_segment(ring.segment())
    }

    /// Opens a description of its own of `seg`'s lock file (the file
    /// itself, or on Windows a page-file segment's side lock file).
    pub(crate) fn open_segment(seg: &RawSegment) -> io::Result<LockFile> {
        if let Some(file) = seg.file() {
            return Ok(LockFile {
                file: sys::reopen(file, seg.path())?,
                #[cfg(windows)]
                side: None,
            });
        }
        #[cfg(windows)]
        {
            let dir = sys::Dir::open(seg.name_dir())?;
            let name = crate::name::lock_file_name(seg.name());
            let file = dir.open_token(std::ffi::OsStr::new(&name), true)?;
            Ok(LockFile {
                file,
                side: Some((dir, name)),
            })
        }
        #[cfg(not(windows))]
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the channel has no file to hold its endpoints' locks",
        ))
    }

    /// Tries to lock `role`'s slot `slot`: `Ok(true)` if taken, `Ok(false)`
    /// if another description holds a lock on it.
    fn try_lock(&self, role: Role, slot: u32) -> io::Result<bool> {
        self.try_lock_at(lock_offset(role, slot))
    }

    /// Tries to lock the byte at `off`: `Ok(true)` if taken, `Ok(false)`
    /// if another description holds a lock on it.
    pub(crate) fn try_lock_at(&self, off: u64) -> io::Result<bool> {
        if !sys::try_lock_byte(&self.file, off)? {
            return Ok(false);
        }
        #[cfg(windows)]
        if let Some((dir, name)) = &self.side {
            // `gc` removed the lock file meanwhile (it does so only while it
            // holds every slot's lock): this lock counts for nothing.
            let id = sys::file_info(&self.file)?.id;
            if dir.identity(std::ffi::OsStr::new(name)) != Some(id) {
                let _ = sys::unlock_byte(&self.file, off);
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "the lock file was replaced",
                ));
            }
        }
        Ok(true)
    }

    /// Releases this description's lock on `role`'s slot `slot`.
    fn unlock(&self, role: Role, slot: u32) {
        self.unlock_at(lock_offset(role, slot));
    }

    /// Releases this description's lock on the byte at `off`.
    pub(crate) fn unlock_at(&self, off: u64) {
        let _ = sys::unlock_byte(&self.file, off);
    }
}

/// An endpoint's liveness lock: held for as long as this value lives (it
/// is released on drop, and by the kernel if the process dies).
pub(crate) struct SlotLock {
    file: LockFile,
    role: Role,
    slot: u32,
}

impl Drop for SlotLock {
    fn drop(&mut self) {
        // Closing the description releases the lock too; unlocking first
        // makes it immediate on Windows as well.
        self.file.unlock(self.role, self.slot);
    }
}

/// Locks `role`'s slot `slot` through a new description: `Some(lock)` if
/// no live process holds it. Failures count as held (nothing is reclaimed
/// on a doubt).
fn try_lock_slot(ring: &ShmRing, role: Role, slot: u32) -> Option<SlotLock> {
    let file = LockFile::open(ring).ok()?;
    match file.try_lock(role, slot) {
        Ok(true) => Some(SlotLock { file, role, slot }),
        _ => None,
    }
}

/// Whether some process holds a lock on `role`'s slot `slot`, tested
/// without taking it where the OS allows (Linux `F_OFD_GETLK`, through the
/// channel's own descriptor, which never holds slot locks). An error
/// counts as held.
fn slot_held(ring: &ShmRing, role: Role, slot: u32) -> bool {
    byte_held(ring.segment(), lock_offset(role, slot))
}

/// Whether some process holds a lock on `seg`'s lock byte `off` (as
/// [`slot_held`] for any segment kind). An error counts as held.
pub(crate) fn byte_held(seg: &RawSegment, off: u64) -> bool {
    match seg.file() {
        Some(file) => sys::byte_locked(file, off).unwrap_or(true),
        None => {
            #[cfg(windows)]
            {
                let Ok(dir) = sys::Dir::open(seg.name_dir()) else {
                    return true;
                };
                let name = crate::name::lock_file_name(seg.name());
                match dir.open_token(std::ffi::OsStr::new(&name), false) {
                    Ok(f) => sys::byte_locked(&f, off).unwrap_or(true),
                    // No lock file: nobody ever locked a byte.
                    Err(e) => e.kind() != io::ErrorKind::NotFound,
                }
            }
            #[cfg(not(windows))]
            true
        }
    }
}

/// What is known of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    if !slot_held(ring, role, slot) {
        Liveness::Dead
    } else if sys::process_stopped(pid) {
        Liveness::Stalled
    } else {
        Liveness::Alive
    }
}

/// Reclaims the slots of dead endpoints. Returns (publishers, subscribers)
/// reclaimed. `pin` is the caller's published position if it is an ACTIVE
/// subscriber: only such a caller repairs a dead publisher's open claim
/// that a subscriber still needs (see `repair::repair_dead_publisher`); any
/// other leaves that publisher's slot for it.
pub(crate) fn reap(ring: &ShmRing, pin: Option<u64>) -> (u32, u32) {
    let g = *ring.geometry();
    let mut reaped = (0, 0);
    for i in 0..g.max_publishers {
        if ring.pub_slot(i).state.load(Ordering::Acquire) == SLOT_FREE {
            continue;
        }
        if slot_held(ring, Role::Publisher, i) {
            continue;
        }
        if let Some(_lock) = try_lock_slot(ring, Role::Publisher, i) {
            // Re-check under the lock: the slot may have been freed by its
            // owner just before we locked.
            if ring.pub_slot(i).state.load(Ordering::Acquire) != SLOT_FREE
                && reclaim_publisher(ring, i, pin)
            {
                reaped.0 += 1;
            }
        }
    }
    for i in 0..g.max_subscribers {
        if ring.sub_slot(i).state.load(Ordering::Acquire) == SLOT_FREE {
            continue;
        }
        if slot_held(ring, Role::Subscriber, i) {
            continue;
        }
        if let Some(_lock) = try_lock_slot(ring, Role::Subscriber, i) {
            if ring.sub_slot(i).state.load(Ordering::Acquire) != SLOT_FREE {
                repair::free_dead_subscriber(ring, i);
                reaped.1 += 1;
            }
        }
    }
    reaped
}

/// Repairs and frees dead publisher slot `slot` (its lock held by the
/// caller); `pin` as for [`reap`]. Returns false, leaving the slot as it
/// is, if its open claim still needs a repair the caller could not make.
pub(crate) fn reclaim_publisher(ring: &ShmRing, slot: u32, pin: Option<u64>) -> bool {
    let g = *ring.geometry();
    let repair = repair::repair_dead_publisher(
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
    if repair == repair::Repair::Pending {
        return false;
    }
    repair::free_dead_publisher(ring, slot);
    true
}

/// How often a blocked endpoint looks for dead peers.
pub(crate) const REAP_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// The state word of `role`'s slot `slot`.
fn slot_state(ring: &ShmRing, role: Role, slot: u32) -> u32 {
    match role {
        Role::Publisher => ring.pub_slot(slot).state.load(Ordering::Acquire),
        Role::Subscriber => ring.sub_slot(slot).state.load(Ordering::Acquire),
    }
}

/// How many passes a join makes over the slots while some FREE slot's
/// lock is held (a joiner between its lock and its slot, or a leaver
/// between freeing its slot and unlocking, lets go within microseconds).
const JOIN_PASSES: u32 = 5;

/// Joins `role` on the first slot whose lock can be taken (reclaiming it
/// first if its owner died), through a description of its own, which the
/// returned [`SlotLock`] keeps.
///
/// # Errors
///
/// `full()` when every slot is taken; [`JoinError::SlotsLocked`] when no
/// slot could be taken but some FREE slot's lock is held by a process that
/// has not joined; [`JoinError::Liveness`] when the lock file cannot be
/// opened again or locked for another reason than a holder.
pub(crate) fn join<T>(
    ring: &ShmRing,
    role: Role,
    slots: u32,
    take: impl Fn(u32) -> Option<T>,
    full: impl FnOnce() -> JoinError,
) -> Result<(T, SlotLock), JoinError> {
    let path = || ring.segment().path().to_path_buf();
    let liveness_err = |e: io::Error| JoinError::Liveness {
        path: path(),
        reason: e.to_string(),
    };
    let mut replaced = 0;
    let mut pass = 0;
    loop {
        let file = LockFile::open(ring).map_err(liveness_err)?;
        let mut locked_free = 0;
        let mut retry_open = false;
        for i in 0..slots {
            match file.try_lock(role, i) {
                Ok(true) => {}
                Ok(false) => {
                    if slot_state(ring, role, i) == SLOT_FREE {
                        locked_free += 1;
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted && replaced < 4 => {
                    replaced += 1;
                    retry_open = true;
                    break;
                }
                Err(e) => return Err(liveness_err(e)),
            }
            if slot_state(ring, role, i) != SLOT_FREE {
                match role {
                    Role::Publisher => {
                        // Not freed while a subscriber still needs its
                        // open claim repaired: `take` then fails on it.
                        reclaim_publisher(ring, i, None);
                    }
                    Role::Subscriber => repair::free_dead_subscriber(ring, i),
                }
            }
            if let Some(st) = take(i) {
                return Ok((
                    st,
                    SlotLock {
                        file,
                        role,
                        slot: i,
                    },
                ));
            }
            file.unlock(role, i);
        }
        if retry_open {
            continue;
        }
        if locked_free == 0 {
            return Err(full());
        }
        pass += 1;
        if pass >= JOIN_PASSES {
            return Err(JoinError::SlotsLocked {
                role,
                path: path(),
                free_locked: locked_free,
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
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

    /// [`due`](Self::due), returning the time it read when a check is due
    /// (so that a caller with more rate-limited checks reads the clock
    /// once).
    pub(crate) fn due_now(&mut self) -> Option<std::time::Instant> {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < REAP_EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(now)
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

/// How many publishers are joined, for a subscriber deciding whether it is
/// disconnected: the publisher slots that are not FREE, after reclaiming
/// those whose process died (`pin` as for [`reap`]). A stopped publisher
/// still holds its lock and counts as joined; so does a dead one whose
/// open claim still needs a repair the caller could not make. Reads every
/// publisher slot's state and tests the lock of each slot in use (a system
/// call each): for slow paths only.
pub(crate) fn joined_publishers(ring: &ShmRing, pin: Option<u64>) -> u32 {
    let g = *ring.geometry();
    let mut joined = 0;
    for i in 0..g.max_publishers {
        if ring.pub_slot(i).state.load(Ordering::Acquire) == SLOT_FREE {
            continue;
        }
        if !slot_held(ring, Role::Publisher, i) {
            if let Some(_lock) = try_lock_slot(ring, Role::Publisher, i) {
                // Under the lock, as in `reap`: freed by its owner meanwhile,
                // or dead and reclaimed now.
                if ring.pub_slot(i).state.load(Ordering::Acquire) == SLOT_FREE
                    || reclaim_publisher(ring, i, pin)
                {
                    continue;
                }
            }
        }
        joined += 1;
    }
    joined
}

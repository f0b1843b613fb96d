//! The wait/notify protocol on a pair of shared words.
//!
//! ```text
//! offset size field
//!      0    4 seq      notification counter (wrapping); the futex word
//!      4    4 waiters  number of threads, in any process, about to sleep or asleep
//! ```
//!
//! Protocol (a Dekker pair; see [`Barrier`] for the two ways of ordering it):
//!
//! * notifier: make the condition true (a Release store or RMW), then the
//!   light barrier (`fence(SeqCst)`, or with [`Barrier::Membarrier`] a
//!   compiler fence only), then `waiters.load(Relaxed)`; only if it is
//!   non-zero: `seq.fetch_add(1, Release)` and `FUTEX_WAKE` all. With
//!   nobody waiting that is (at most) a fence and one load: no syscall.
//! * waiter: `waiters.fetch_add(1)`, the heavy barrier (`fence(SeqCst)`,
//!   and with [`Barrier::Membarrier`] also `membarrier(GLOBAL_EXPEDITED)`),
//!   then in a loop `s = seq.load(Acquire)`, check the condition, and only
//!   if it is false `FUTEX_WAIT(seq, s)`; finally `waiters.fetch_sub(1)`.
//!
//! The two barriers are ordered one way or the other: if the notifier's
//! comes first, the waiter's condition check sees the condition; if the
//! waiter's comes first, the notifier sees `waiters > 0` and bumps `seq`,
//! so the waiter's `FUTEX_WAIT` either finds `seq != s` and returns at
//! once or is asleep and woken. No wake-up is lost. `EINTR`, `EAGAIN`,
//! time-outs and spurious wake-ups just loop. (Fences rather than SeqCst
//! accesses: the protocol is model-checked with loom, which models SeqCst
//! fences exactly but SeqCst accesses only as AcqRel.) The membarrier
//! costs the waiter a few microseconds once per sleep, which it is about
//! to spend in `FUTEX_WAIT` anyway, and saves every notification an
//! `mfence`.

use std::time::{Duration, Instant};

use super::{AtomicU32, Barrier, Futex, Ordering};

/// Two shared words: a futex counter and a waiter count.
#[repr(C)]
pub(crate) struct EventWord {
    /// Notification counter; the futex word.
    pub(crate) seq: AtomicU32,
    /// Threads registered as (about to be) asleep.
    pub(crate) waiters: AtomicU32,
}

// Checked in production builds (loom atomics have another size).
#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<EventWord>() == 8);
    assert!(std::mem::offset_of!(EventWord, seq) == 0);
    assert!(std::mem::offset_of!(EventWord, waiters) == 4);
};

/// Where [`EventWord::wait_until_or_stop_spin`] consults its spin policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpinCheck {
    /// The first poll found nothing: return true to sleep at once.
    FirstMiss,
    /// The wait is about to sleep (the answer is ignored).
    Sleeping,
}

/// How many times a waiter polls its condition before it sleeps.
#[cfg_attr(loom, allow(dead_code))] // the loom build has no channel users
pub(crate) const DEFAULT_SPIN: u32 = 4000;

impl EventWord {
    /// Wakes sleepers if there are any. Call after making the condition
    /// true (with a Release store or RMW). With [`Barrier::Membarrier`]
    /// (every process that notifies registered) this is one load.
    #[inline]
    pub(crate) fn notify_waiters(&self, futex: &impl Futex, barrier: Barrier) {
        barrier.light();
        let waiters = self.waiters.load(Ordering::Relaxed);
        if waiters != 0 {
            let old = self.seq.fetch_add(1, Ordering::Release);
            futex.wake_all(&self.seq, old, waiters);
        }
    }

    /// [`notify_waiters`](Self::notify_waiters) without its barrier, for a
    /// notifier that has just passed the light barrier of another
    /// notification after making this event's condition true too (one
    /// barrier orders both Dekker pairs).
    #[inline]
    pub(crate) fn notify_waiters_after_barrier(&self, futex: &impl Futex) {
        let waiters = self.waiters.load(Ordering::Relaxed);
        if waiters != 0 {
            let old = self.seq.fetch_add(1, Ordering::Release);
            futex.wake_all(&self.seq, old, waiters);
        }
    }

    /// Counts a notification unconditionally (a sticky, counting event:
    /// the condition is `seq` itself) and wakes sleepers if there are any.
    #[inline]
    #[cfg_attr(loom, allow(dead_code))] // the loom build has no event users
    pub(crate) fn notify_count(&self, futex: &impl Futex, barrier: Barrier) {
        let old = self.seq.fetch_add(1, Ordering::Release);
        barrier.light();
        let waiters = self.waiters.load(Ordering::Relaxed);
        if waiters != 0 {
            futex.wake_all(&self.seq, old, waiters);
        }
    }

    /// Waits until `ready()` returns true or `deadline` passes; returns
    /// whether `ready()` became true. Polls `spin` times first, then
    /// sleeps, waking at least every `recheck` to re-test the condition
    /// (so a peer that died or a lost word can never hang it for good).
    pub(crate) fn wait_until(
        &self,
        futex: &impl Futex,
        barrier: Barrier,
        spin: u32,
        deadline: Option<Instant>,
        recheck: Duration,
        ready: impl FnMut() -> bool,
    ) -> bool {
        self.wait_until_or_stop_spin(futex, barrier, spin, deadline, recheck, ready, |_| false)
    }

    /// [`wait_until`](Self::wait_until), asking `spin_policy` at two
    /// points: after the first poll that finds nothing
    /// ([`SpinCheck::FirstMiss`]) whether polling on is pointless (the
    /// process that would make `ready()` true cannot run while this
    /// thread polls), and if it says so the wait sleeps at once; and once
    /// before it sleeps ([`SpinCheck::Sleeping`], answer ignored), the
    /// slow path where the policy may look at shared state. Sleeping early
    /// is always safe: it is the same registered futex wait.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn wait_until_or_stop_spin(
        &self,
        futex: &impl Futex,
        barrier: Barrier,
        spin: u32,
        deadline: Option<Instant>,
        recheck: Duration,
        mut ready: impl FnMut() -> bool,
        mut spin_policy: impl FnMut(SpinCheck) -> bool,
    ) -> bool {
        for i in 0..super::spins(spin) {
            if ready() {
                return true;
            }
            if i == 0 && spin_policy(SpinCheck::FirstMiss) {
                break;
            }
            if i % 64 == 63 && deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            super::spin_loop();
        }
        spin_policy(SpinCheck::Sleeping);
        self.waiters.fetch_add(1, Ordering::Relaxed);
        // If the barrier failed, a notifier may miss this waiter: re-check
        // every millisecond rather than sleep for `recheck`.
        let recheck = if barrier.heavy() {
            recheck
        } else {
            recheck.min(Duration::from_millis(1))
        };
        let ok = loop {
            let s = self.seq.load(Ordering::Acquire);
            if ready() {
                break true;
            }
            let timeout = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break false;
                    }
                    (d - now).min(recheck)
                }
                None => recheck,
            };
            futex.wait(&self.seq, s, Some(timeout));
        };
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        ok
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::LoomFutex;
    use loom::sync::Arc;

    struct Shared {
        ev: EventWord,
        flag: AtomicU32,
        futex: LoomFutex,
    }

    /// A waiter and a notifier: the waiter must always see the flag (a lost
    /// wake-up would leave it blocked, which loom reports as a deadlock).
    /// Both barrier kinds (loom models `Membarrier` with fences).
    #[test]
    fn no_lost_wakeup() {
        for barrier in [Barrier::Fences, Barrier::Membarrier] {
            loom::model(move || {
                let s = Arc::new(Shared {
                    ev: EventWord {
                        seq: AtomicU32::new(0),
                        waiters: AtomicU32::new(0),
                    },
                    flag: AtomicU32::new(0),
                    futex: LoomFutex::default(),
                });
                let s2 = s.clone();
                let t = loom::thread::spawn(move || {
                    s2.flag.store(1, Ordering::Release);
                    s2.ev.notify_waiters(&s2.futex, barrier);
                });
                let ok = s.ev.wait_until(
                    &s.futex,
                    barrier,
                    0,
                    None,
                    Duration::from_secs(3600),
                    || s.flag.load(Ordering::Acquire) == 1,
                );
                assert!(ok);
                t.join().unwrap();
            });
        }
    }
}

/// Cross-process wake-ups ordered with `membarrier`: a child process
/// notifies and a parent sleeps (no spin, no time-out to fall back on)
/// tens of thousands of times, the child's store landing at random
/// moments around the parent's registration as a waiter; a single lost
/// wake-up hangs the parent and fails the test.
#[cfg(all(test, not(loom), target_os = "linux"))]
mod membarrier_tests {
    use super::*;
    use crate::segment::map::Map;
    use crate::sync::OsFutex;
    use std::fs::{File, OpenOptions};
    use std::path::Path;

    const FILE_ENV: &str = "MEMLANE_EVENT_TEST_FILE";
    const ROUNDS: u32 = 30_000;
    /// As good as no time-out: only a wake-up ends a sleep.
    const FOREVER: Duration = Duration::from_secs(3600);

    /// The shared words: the event at 0, the child's counter at 64, the
    /// parent's acknowledgement at 128.
    struct Words {
        _file: File,
        map: Map,
    }

    impl Words {
        fn open(path: &Path) -> Words {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .unwrap();
            let map = Map::shared(&file, 0, 4096, true).unwrap();
            Words { _file: file, map }
        }
        fn event(&self) -> &EventWord {
            // SAFETY: the mapping is 4096 bytes and page-aligned; offset 0
            // holds an 8-byte EventWord (alignment 4), only accessed
            // atomically, mapped as long as `self`.
            unsafe { &*self.map.ptr().cast::<EventWord>() }
        }
        fn word(&self, off: usize) -> &AtomicU32 {
            // SAFETY: as above, for the words at 64 and 128.
            unsafe { &*self.map.ptr().add(off).cast::<AtomicU32>() }
        }
    }

    /// The child: for each round, waits (spinning) for the parent's
    /// acknowledgement of the previous one, idles a random few dozen
    /// spins, then bumps the counter and notifies.
    #[test]
    fn child_notifies() {
        let Some(path) = std::env::var_os(FILE_ENV) else {
            return;
        };
        assert!(crate::sys::membarrier_register());
        let w = Words::open(Path::new(&path));
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 1..=ROUNDS {
            while w.word(128).load(Ordering::Acquire) < round - 1 {
                std::hint::spin_loop();
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for _ in 0..x % 48 {
                std::hint::spin_loop();
            }
            w.word(64).store(round, Ordering::Release);
            w.event().notify_waiters(&OsFutex, Barrier::Membarrier);
        }
    }

    #[test]
    fn no_wake_up_is_lost_between_processes() {
        if std::env::var_os(FILE_ENV).is_some() || !crate::sys::membarrier_register() {
            return; // the child, or a system without membarrier
        }
        let words = crate::test_support::SharedWords::new("mb-wake");
        let path = words.path.clone();
        let mut child = words.spawn_child(
            "sync::event_word::membarrier_tests::child_notifies",
            FILE_ENV,
        );
        let sleeper = {
            let path = path.clone();
            std::thread::spawn(move || {
                let w = Words::open(&path);
                for round in 1..=ROUNDS {
                    let ok = w.event().wait_until(
                        &OsFutex,
                        Barrier::Membarrier,
                        0,
                        None,
                        FOREVER,
                        || w.word(64).load(Ordering::Acquire) >= round,
                    );
                    assert!(ok);
                    w.word(128).store(round, Ordering::Release);
                }
            })
        };
        let start = Instant::now();
        while !sleeper.is_finished() {
            if start.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                panic!("a wake-up was lost: the parent sleeps on a notified event");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        sleeper.join().unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "child: {status}");
    }
}

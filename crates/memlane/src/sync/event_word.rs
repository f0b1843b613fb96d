//! The wait/notify protocol on a pair of shared words.
//!
//! ```text
//! offset size field
//!      0    4 seq      notification counter (wrapping); the futex word
//!      4    4 waiters  number of threads, in any process, about to sleep or asleep
//! ```
//!
//! Protocol (a Dekker pair separated by SeqCst fences):
//!
//! * notifier: make the condition true (a Release store or RMW), then
//!   `fence(SeqCst)`, then `waiters.load(Relaxed)`; only if it is non-zero:
//!   `seq.fetch_add(1, Release)` and `FUTEX_WAKE` all. With nobody waiting
//!   that is a fence and one load: no syscall.
//! * waiter: `waiters.fetch_add(1)`, `fence(SeqCst)`, then in a loop
//!   `s = seq.load(Acquire)`, check the condition, and only if it is false
//!   `FUTEX_WAIT(seq, s)`; finally `waiters.fetch_sub(1)`.
//!
//! The two fences are ordered one way or the other: if the notifier's
//! comes first, the waiter's condition check sees the condition; if the
//! waiter's comes first, the notifier sees `waiters > 0` and bumps `seq`,
//! so the waiter's `FUTEX_WAIT` either finds `seq != s` and returns at
//! once or is asleep and woken. No wake-up is lost. `EINTR`, `EAGAIN`,
//! time-outs and spurious wake-ups just loop. (Fences rather than SeqCst
//! accesses: the protocol is model-checked with loom, which models SeqCst
//! fences exactly but SeqCst accesses only as AcqRel.)

use std::time::{Duration, Instant};

use super::{fence, AtomicU32, Futex, Ordering};

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

/// How many times a waiter polls its condition before it sleeps.
pub(crate) const DEFAULT_SPIN: u32 = 4000;

impl EventWord {
    /// Wakes sleepers if there are any. Call after making the condition
    /// true (with a Release store or RMW).
    #[inline]
    pub(crate) fn notify_waiters(&self, futex: &impl Futex) {
        fence(Ordering::SeqCst);
        let waiters = self.waiters.load(Ordering::Relaxed);
        if waiters != 0 {
            let old = self.seq.fetch_add(1, Ordering::Release);
            futex.wake_all(&self.seq, old, waiters);
        }
    }

    /// Counts a notification unconditionally (a sticky, counting event:
    /// the condition is `seq` itself) and wakes sleepers if there are any.
    #[inline]
    pub(crate) fn notify_count(&self, futex: &impl Futex) {
        let old = self.seq.fetch_add(1, Ordering::Release);
        fence(Ordering::SeqCst);
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
        spin: u32,
        deadline: Option<Instant>,
        recheck: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        for i in 0..super::spins(spin) {
            if ready() {
                return true;
            }
            if i % 64 == 63 && deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            super::spin_loop();
        }
        self.waiters.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
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
    #[test]
    fn no_lost_wakeup() {
        loom::model(|| {
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
                s2.ev.notify_waiters(&s2.futex);
            });
            let ok =
                s.ev.wait_until(&s.futex, 0, None, Duration::from_secs(3600), || {
                    s.flag.load(Ordering::Acquire) == 1
                });
            assert!(ok);
            t.join().unwrap();
        });
    }
}

//! Atomics shim and the wait/notify protocol.
//!
//! Under `--cfg loom` the atomics are loom's and the futex is modelled
//! with a loom mutex and condition variable, so the protocols written
//! against this module can be model-checked without shared memory.

pub(crate) mod event_word;
// The async layer's split of the waiter's protocol, model-checked.
#[cfg(all(test, loom))]
mod loom_async;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// A spin-loop hint (a yield under loom, so model checking terminates).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// `n` polls in production, none under loom (whose state space would
/// explode with busy-waiting).
#[inline]
pub(crate) const fn spins(n: u32) -> u32 {
    if cfg!(loom) {
        0
    } else {
        n
    }
}

/// How the two sides of a Dekker pair (a store followed by a load of the
/// word the other side stores) are ordered: the wait/notify pair of
/// [`event_word`], and a channel's join handshake.
///
/// ```text
/// Fences      both sides:      fence(SeqCst)           (an `mfence` each on x86-64)
/// Membarrier  frequent side:   compiler fence only     (notify, a single publisher's claim)
///             rare side:       membarrier(GLOBAL_EXPEDITED)  (a thread about to sleep, a joiner)
/// ```
///
/// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` (Linux 4.16+) runs a full
/// memory barrier on every CPU that is running a thread of a process
/// registered with `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED` (a thread
/// that is not running passed one at its context switch) before it
/// returns. So if the frequent side's load missed the rare side's store,
/// its own earlier store was made visible by that barrier before the rare
/// side's load: one of the two always sees the other, as with two fences.
/// It is only sound if every process on the frequent side registered:
/// a channel records the choice in its config, and a process that cannot
/// register cannot open it (`OpenError::MembarrierUnavailable`).
///
/// Under loom both variants are modelled with `fence(SeqCst)` on both
/// sides, the ordering the membarrier argument above provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Barrier {
    /// A SeqCst fence on both sides.
    Fences,
    /// A compiler fence on the frequent side; `membarrier` on the rare one.
    Membarrier,
}

impl Barrier {
    /// The frequent side's barrier, between its store and its load.
    #[inline(always)]
    pub(crate) fn light(self) {
        if cfg!(loom) || self == Barrier::Fences {
            fence(Ordering::SeqCst);
        } else {
            // Keeps the compiler from moving the load above the store; the
            // CPU's reordering is undone by the rare side's membarrier.
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
        }
    }

    /// The rare side's barrier, between its store and its load. Returns
    /// false if a membarrier failed (it cannot once this process has
    /// registered, short of a seccomp rule added later): the caller must
    /// then not rely on the pair, and re-checks on a short timer instead.
    pub(crate) fn heavy(self) -> bool {
        fence(Ordering::SeqCst);
        #[cfg(not(loom))]
        if self == Barrier::Membarrier {
            return crate::sys::membarrier_global();
        }
        true
    }

    /// Whether a [`heavy`](Self::heavy) barrier has failed in this
    /// process (to tell why a join gave up, without trying again).
    pub(crate) fn failed(self) -> bool {
        #[cfg(not(loom))]
        if self == Barrier::Membarrier {
            return crate::sys::membarrier_failed();
        }
        false
    }
}

/// Sleeping and waking on a 32-bit word.
pub(crate) trait Futex {
    /// Sleeps while `word == expected` (may return early for any reason).
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<std::time::Duration>);
    /// Wakes every sleeper on `word`, which held `old` before the caller
    /// changed it; at most `waiters` threads sleep on it. (Linux's futex
    /// needs neither; the Windows emulation names its semaphore after
    /// `old` and releases it `waiters` times.)
    fn wake_all(&self, word: &AtomicU32, old: u32, waiters: u32);
}

/// The OS futex (shared, cross-process).
#[cfg(not(loom))]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OsFutex;

#[cfg(not(loom))]
impl Futex for OsFutex {
    #[inline]
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<std::time::Duration>) {
        crate::sys::futex_wait(word, expected, timeout);
    }
    #[inline]
    fn wake_all(&self, word: &AtomicU32, old: u32, waiters: u32) {
        crate::sys::futex_wake_all(word, old, waiters);
    }
}

/// A loom model of a futex: check-and-sleep is atomic with respect to
/// wake because both hold the mutex.
#[cfg(loom)]
#[derive(Default)]
pub(crate) struct LoomFutex {
    lock: loom::sync::Mutex<()>,
    cv: loom::sync::Condvar,
}

#[cfg(loom)]
impl Futex for LoomFutex {
    fn wait(&self, word: &AtomicU32, expected: u32, _timeout: Option<std::time::Duration>) {
        let g = self.lock.lock().unwrap();
        if word.load(Ordering::SeqCst) == expected {
            drop(self.cv.wait(g).unwrap());
        }
    }
    fn wake_all(&self, _word: &AtomicU32, _old: u32, _waiters: u32) {
        let _g = self.lock.lock().unwrap();
        self.cv.notify_all();
    }
}

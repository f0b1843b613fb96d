//! Atomics shim and the wait/notify protocol.
//!
//! Under `--cfg loom` the atomics are loom's and the futex is modelled
//! with a loom mutex and condition variable, so the protocols written
//! against this module can be model-checked without shared memory.

pub(crate) mod event_word;

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

//! Surviving a peer that truncates a shared file.
//!
//! Touching a page of a `MAP_SHARED` mapping past the end of its file
//! raises SIGBUS, which kills the process by default. Another process with
//! write access can shrink a segment's file at any moment (file seals,
//! which would forbid it, exist only for memfds), so memlane guards every
//! mapping it makes: a process-wide SIGBUS handler looks the faulting
//! address up among the registered mappings and, if it lies in one,
//! replaces that page with a private zero page (`mmap(MAP_FIXED |
//! MAP_ANONYMOUS)`), marks the mapping as truncated and returns, so the
//! access completes with zeros instead of killing the process. memlane
//! checks the mark after its accesses and reports the segment as corrupt.
//! Faults elsewhere go to the previous handler (or the default action).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;

/// How many mappings can be guarded at once; more are mapped unguarded.
const SLOTS: usize = 512;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};

static SLOTS_TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
/// SIGBUS faults absorbed so far, process-wide (a cheap "anything
/// happened?" check for the hot paths).
pub(crate) static FAULTS: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();
static mut PREVIOUS: Option<libc::sigaction> = None;

/// A registered mapping; unregistered on drop.
#[derive(Debug)]
pub(crate) struct Guard {
    slot: Option<usize>,
}

impl Guard {
    /// Registers `[start, start + len)`.
    pub(crate) fn register(start: *mut u8, len: usize) -> Guard {
        install();
        for (i, s) in SLOTS_TABLE.iter().enumerate() {
            if s.len
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                s.faulted.store(false, Ordering::Relaxed);
                s.start.store(start as usize, Ordering::Release);
                s.len.store(len, Ordering::Release);
                return Guard { slot: Some(i) };
            }
        }
        Guard { slot: None }
    }

    /// Whether a truncation was caught in this mapping.
    #[inline]
    pub(crate) fn faulted(&self) -> bool {
        // The common case (no fault absorbed in this process, ever) is one
        // load and a branch not taken, inline on every receive.
        FAULTS.load(Ordering::Relaxed) != 0 && self.slot_faulted()
    }

    /// Whether this mapping's slot recorded a fault.
    #[cold]
    #[inline(never)]
    fn slot_faulted(&self) -> bool {
        self.slot
            .is_some_and(|i| SLOTS_TABLE[i].faulted.load(Ordering::Acquire))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            SLOTS_TABLE[i].len.store(0, Ordering::Release);
        }
    }
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask"
        // value; we fill in the handler and flags before use. Installing a
        // SIGBUS handler is process-global; the previous action is kept and
        // chained to for faults outside memlane's mappings.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = handler as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &new, &mut old) == 0 {
                PREVIOUS = Some(old);
            }
        }
    });
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers;
    // si_addr is the faulting address for SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    for s in SLOTS_TABLE.iter() {
        let len = s.len.load(Ordering::Acquire);
        if len == 0 || len == usize::MAX {
            continue;
        }
        let start = s.start.load(Ordering::Acquire);
        if addr >= start && addr - start < len {
            // SAFETY: sysconf and mmap are async-signal-safe system calls.
            // The page lies inside a mapping memlane owns (registered until
            // it is unmapped); replacing it with a private zero page only
            // changes what this process reads there from now on.
            let ok = unsafe {
                let page = libc::sysconf(libc::_SC_PAGESIZE).max(4096) as usize;
                let base = addr & !(page - 1);
                libc::mmap(
                    base as *mut libc::c_void,
                    page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                ) != libc::MAP_FAILED
            };
            if ok {
                s.faulted.store(true, Ordering::Release);
                FAULTS.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    // Not ours: behave as before memlane was loaded.
    // SAFETY: PREVIOUS is written once, before the handler is installed.
    let prev = unsafe { (*std::ptr::addr_of!(PREVIOUS)).as_ref().copied() };
    match prev {
        Some(p) if p.sa_sigaction != libc::SIG_DFL && p.sa_sigaction != libc::SIG_IGN => {
            if p.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed for SIGBUS with
                // SA_SIGINFO, so it takes these three arguments.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(p.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a plain handler takes the signal number.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(p.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // SAFETY: restoring the default action and returning re-runs the
            // faulting access, which then terminates the process as usual.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            }
        }
    }
}

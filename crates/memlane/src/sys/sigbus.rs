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
//!
//! Only a fault the kernel raised for an access past the end of a file
//! (`si_code == BUS_ADRERR`) inside a registered mapping is absorbed.
//! Everything else keeps the meaning it had before memlane was loaded: it
//! goes to the previous handler, or, if there was none, the default action
//! happens (a fault is left to repeat with the default action restored; a
//! SIGBUS sent by a process, `kill -BUS`, or an asynchronous machine-check
//! report is raised again with the default action). A previous handler
//! that restores the default action and returns, counting on the access
//! to fault again (Rust's standard library installs one for stack
//! overflows), gets a sent signal raised again after it, since a sent
//! signal does not repeat by itself.
//!
//! The table of guarded mappings is a list of fixed chunks that only
//! grows: `register` allocates a new chunk when every slot is taken and
//! publishes it with a compare-and-swap; chunks are never freed, so the
//! handler walks them with atomic loads alone (no allocation, no lock).
//! Every mapping is guarded, however many a process has.
//!
//! A mapping is unregistered before it is unmapped (see `segment::map`),
//! so a fault at an address that is no longer memlane's is never taken
//! for one of its mappings.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;

/// Slots per chunk of the table of guarded mappings.
const CHUNK_SLOTS: usize = 256;

/// A slot's `len` while its registration is being written.
const CLAIMED: usize = usize::MAX;

/// One guarded mapping.
///
/// `len` is the slot's state: 0 free, [`CLAIMED`] being registered,
/// anything else the length of the registered mapping starting at
/// `start`. `register` claims a free slot with a CAS (0 → CLAIMED),
/// stores `start`, then `len` with Release; the handler loads `len`
/// (Acquire, pairs with that store), then `start`, then `len` again and
/// uses the pair only if both loads of `len` agree.
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

/// A block of slots and the next block (null until the table grows past
/// this one). Chunks live for the rest of the process.
struct Chunk {
    slots: [Slot; CHUNK_SLOTS],
    /// Set once, with a Release CAS by `register`; loaded with Acquire.
    next: AtomicPtr<Chunk>,
}

static FIRST: Chunk = Chunk {
    slots: [EMPTY; CHUNK_SLOTS],
    next: AtomicPtr::new(std::ptr::null_mut()),
};

/// SIGBUS faults absorbed so far, process-wide (a cheap "anything
/// happened?" check for the hot paths).
pub(crate) static FAULTS: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();
/// The page size, read once at installation (`sysconf` is not
/// async-signal-safe).
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// The SIGBUS action in place before memlane's handler: null for "none
/// known" (treated as the default action), else a leaked `Box` published
/// with Release before the handler is installed and never freed.
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());

/// A registered mapping; unregistered on drop.
#[derive(Debug)]
pub(crate) struct Guard {
    /// `None` only for an empty mapping, which cannot fault.
    slot: Option<&'static Slot>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("start", &self.start.load(Ordering::Relaxed))
            .field("len", &self.len.load(Ordering::Relaxed))
            .finish()
    }
}

impl Chunk {
    fn next(&self) -> Option<&'static Chunk> {
        let next = self.next.load(Ordering::Acquire);
        // SAFETY: a non-null `next` comes from `Box::into_raw` of a fully
        // built chunk (published with Release, loaded with Acquire) that is
        // never freed.
        unsafe { next.as_ref() }
    }
}

impl Guard {
    /// Registers `[start, start + len)`.
    pub(crate) fn register(start: *mut u8, len: usize) -> Guard {
        install();
        if len == 0 || len == CLAIMED {
            return Guard { slot: None };
        }
        let mut chunk: &'static Chunk = &FIRST;
        loop {
            for s in &chunk.slots {
                if s.len
                    .compare_exchange(0, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    s.faulted.store(false, Ordering::Relaxed);
                    s.start.store(start as usize, Ordering::Release);
                    s.len.store(len, Ordering::Release);
                    return Guard { slot: Some(s) };
                }
            }
            chunk = match chunk.next() {
                Some(next) => next,
                None => grow(chunk),
            };
        }
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
        self.slot.is_some_and(|s| s.faulted.load(Ordering::Acquire))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(s) = self.slot {
            s.len.store(0, Ordering::Release);
        }
    }
}

/// Appends a chunk after `last` (or finds the one another thread appended
/// first) and returns it.
#[cold]
fn grow(last: &'static Chunk) -> &'static Chunk {
    let new = Box::into_raw(Box::new(Chunk {
        slots: [EMPTY; CHUNK_SLOTS],
        next: AtomicPtr::new(std::ptr::null_mut()),
    }));
    match last.next.compare_exchange(
        std::ptr::null_mut(),
        new,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // SAFETY: `new` came from `Box::into_raw` just above and is now
        // published: it is never freed.
        Ok(_) => unsafe { &*new },
        Err(other) => {
            // SAFETY: `new` was never published; we still own it.
            drop(unsafe { Box::from_raw(new) });
            // SAFETY: `other` is a published chunk (see `Chunk::next`).
            unsafe { &*other }
        }
    }
}

/// Publishes `action` as the previous action (the handler may be reading
/// an earlier one at this moment, so that one is leaked, not freed).
fn publish_previous(action: libc::sigaction) {
    PREVIOUS.store(Box::into_raw(Box::new(action)), Ordering::Release);
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sysconf with a valid name has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE.store(page as usize, Ordering::Relaxed);
        }
        // SAFETY: a zeroed sigaction is a valid "no handler, no flags,
        // empty mask" value, filled in before use; the pointers passed to
        // sigaction are valid for the calls. The previous action is read
        // and published before our handler is installed, so the handler
        // never runs without it; if another handler was installed between
        // the two calls, the one actually replaced is published instead.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                return; // Cannot read it: leave SIGBUS alone.
            }
            publish_previous(old);
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = handler as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            let mut replaced: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &new, &mut replaced) == 0
                && (replaced.sa_sigaction != old.sa_sigaction || replaced.sa_flags != old.sa_flags)
            {
                publish_previous(replaced);
            }
        }
    });
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: `__errno_location` returns this thread's errno, valid for
    // the thread's lifetime; the handler restores what the interrupted
    // code had there (the calls below may change it).
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved = unsafe { *errno };
    if !absorb(info) {
        forward(sig, info, ctx);
    }
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// The `si_code` of a SIGBUS, or 0 (`SI_USER`) if there is no siginfo.
fn code_of(info: *const libc::siginfo_t) -> libc::c_int {
    // SAFETY: a non-null `info` is the siginfo the kernel passed to this
    // SA_SIGINFO handler, valid for its duration.
    unsafe { info.as_ref() }.map_or(0, |i| i.si_code)
}

/// Handles a truncation fault inside a registered mapping: whether it was
/// one (and the access can now complete).
fn absorb(info: *mut libc::siginfo_t) -> bool {
    // Only the kernel sets BUS_ADRERR (another process can only send
    // negative codes, or SI_USER): only then is si_addr a faulting address.
    if code_of(info) != libc::BUS_ADRERR {
        return false;
    }
    // SAFETY: `info` is non-null (code_of returned BUS_ADRERR) and, for a
    // kernel-raised SIGBUS, si_addr is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let mut chunk: &'static Chunk = &FIRST;
    loop {
        for s in &chunk.slots {
            let len = s.len.load(Ordering::Acquire);
            if len == 0 || len == CLAIMED {
                continue;
            }
            let start = s.start.load(Ordering::Acquire);
            if s.len.load(Ordering::Acquire) != len {
                continue; // Unregistered or re-registered meanwhile.
            }
            if addr >= start && addr - start < len {
                let page = PAGE.load(Ordering::Relaxed);
                let base = addr & !(page - 1);
                // SAFETY: mmap is async-signal-safe. The page lies inside a
                // mapping memlane owns (registered until just before it is
                // unmapped, and the faulting access proves it is in use);
                // replacing it with a private zero page only changes what
                // this process reads there from now on.
                let ok = unsafe {
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
                }
                return ok;
            }
        }
        match chunk.next() {
            Some(next) => chunk = next,
            None => return false,
        }
    }
}

/// Whether SIGBUS's action is now the default one.
fn default_restored() -> bool {
    // SAFETY: sigaction is async-signal-safe; with a null new action it
    // only writes the current one into `cur`, a valid zeroed sigaction.
    unsafe {
        let mut cur: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut cur) == 0
            && cur.sa_sigaction == libc::SIG_DFL
    }
}

/// Gives a SIGBUS that is not memlane's the meaning it had before memlane
/// was loaded.
fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let code = code_of(info);
    // A fault the kernel raised for an access (it repeats when the handler
    // returns); not an asynchronous machine-check report, and not a signal
    // a process sent (si_code <= 0).
    let synchronous = code > 0 && code != libc::BUS_MCEERR_AO;
    // SAFETY: a non-null PREVIOUS is a leaked, fully written Box
    // (published with Release, loaded with Acquire), never freed.
    let prev = unsafe { PREVIOUS.load(Ordering::Acquire).as_ref() };
    let action = prev.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if action == libc::SIG_IGN {
        if !synchronous {
            return; // Ignored before memlane: still ignored.
        }
        // The kernel does not let a fault be ignored: default action.
    } else if action != libc::SIG_DFL {
        if prev.is_some_and(|p| p.sa_flags & libc::SA_SIGINFO != 0) {
            // SAFETY: the previous handler was installed for SIGBUS with
            // SA_SIGINFO, so it takes these three arguments.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(action) };
            f(sig, info, ctx);
        } else {
            // SAFETY: a handler installed without SA_SIGINFO takes the
            // signal number only.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(action) };
            f(sig);
        }
        // A handler that restored the default action and returned (as the
        // standard library's stack-overflow handler does for a SIGBUS that
        // is not a stack overflow) relies on the access faulting again; a
        // sent signal does not repeat, so it is raised again, now with the
        // default action.
        if !synchronous && default_restored() {
            // SAFETY: raise is async-signal-safe; SIGBUS is not blocked
            // here (SA_NODEFER).
            unsafe { libc::raise(libc::SIGBUS) };
        }
        return;
    }
    // The default action (terminate with a core dump). sigaction and raise
    // are async-signal-safe; a zeroed sigaction with SIG_DFL is valid.
    // SAFETY: see above; the pointer passed is valid for the call.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
    }
    if !synchronous {
        // SIGBUS is not blocked here (SA_NODEFER), so it is delivered, with
        // the default action, before raise returns.
        // SAFETY: raise is async-signal-safe.
        unsafe { libc::raise(libc::SIGBUS) };
    }
    // A synchronous fault: returning re-runs the access, which faults
    // again and now ends the process with the true faulting context.
}

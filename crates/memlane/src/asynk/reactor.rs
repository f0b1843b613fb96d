//! The reactor: a few threads per process that sleep on every shared word
//! an async task waits for, and wake the tasks when one changes.
//!
//! A task that finds nothing to do registers a [`Waiting`] on an
//! [`EventWord`] (the word a blocking waiter would sleep on) and returns
//! `Pending`; a reactor thread sleeps on all registered words at once
//! (`futex_waitv` on Linux 5.16+, `WaitForMultipleObjects` on Windows) and
//! calls the tasks' wakers when their word moves. The wake-up protocol is
//! the blocking waiter's (see `sync::event_word`), split across the task
//! and the reactor:
//!
//! 1. task, once per [`Waiting`]: `waiters.fetch_add(1)`, then the heavy
//!    barrier; from now on every notifier that made its condition true
//!    after the barrier sees `waiters > 0` and bumps `seq`.
//! 2. task, on every `Pending` poll ([`Waiting::arm`]): `s =
//!    seq.load(Acquire)`, hand `(s, waker)` to the reactor, *then* re-check
//!    the condition. A notification after the load bumps `seq` past `s`;
//!    one before it made the condition true before the re-check.
//! 3. reactor: under its lock, for each armed entry, wake it if
//!    `seq != s`; for the rest, sleep on `(seq, s)` (every remaining entry
//!    of a word has the same `s`, the value just read). A bump after that
//!    read makes the sleep return at once (the kernel compares) or wakes it.
//!
//! So no wake-up is lost. The entry keeps the memory of its word alive
//! (an `Arc` of the channel or slot), so the reactor never reads unmapped
//! memory, even if a future is leaked.
//!
//! Threads: one per group of up to [`sys::WAIT_ANY_MAX`]` - 1` distinct
//! words (127 on Linux, 63 on Windows; the last place is the group's own
//! control word, bumped when a word it does not sleep on is registered).
//! Started lazily, kept for the life of the process. Without
//! `futex_waitv` (kernels before 5.16, or a seccomp filter) a group holds
//! a single word and sleeps on it with a 100 ms re-check, so that a
//! thread per distinct word waited on is the cost there.
//!
//! Fork: a child process inherits the parent's groups but none of their
//! threads. The first registration in the child sees that the groups
//! belong to another process ([`Groups::of_this_process`]), sets them
//! aside and starts threads of its own, so a child forked after its parent
//! awaited can await too (as Python's multiprocessing "fork" start method
//! does). Futures the child inherited mid-wait belong to the parent's
//! tasks: they are never woken in the child. As with any fork of a
//! threaded process, a fork while another thread registers a waiter may
//! leave a lock held in the child.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::sync::event_word::EventWord;
use crate::sync::Barrier;
use crate::sys;

/// Something that holds a shared [`EventWord`] in memory for as long as it
/// lives (a channel's ring, a latest-value slot's segment).
pub(crate) trait WaitSource: Send + Sync {
    /// The event.
    fn event(&self) -> &EventWord;
}

/// The fallback's re-check period (no `futex_waitv`): how late a group
/// thread may notice a registration it was not woken for.
const FALLBACK_RECHECK: Duration = Duration::from_millis(100);

/// A registered waiter (one per waiting future).
struct Entry {
    id: u64,
    src: Arc<dyn WaitSource>,
    /// The `seq` value loaded before the condition check.
    expected: u32,
    /// `None`: fired (or not armed yet); the task re-arms when it polls.
    waker: Option<Waker>,
    /// Wake the task at this time even if nothing was notified (the
    /// periodic checks of a blocking wait: dead peers, disconnection).
    deadline: Option<Instant>,
}

/// A group: its entries, and what its thread sleeps on.
#[derive(Default)]
struct GroupState {
    entries: Vec<Entry>,
    /// Addresses of the words the thread sleeps on now (or is about to).
    sleeping: Vec<usize>,
    /// The earliest deadline the thread sleeps until.
    until: Option<Instant>,
}

struct Group {
    state: Mutex<GroupState>,
    /// Bumped (and woken) when the thread must rebuild its sleep set.
    control: AtomicU32,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kick(&self) {
        let old = self.control.fetch_add(1, Ordering::Release);
        sys::futex_wake_all(&self.control, old, 1);
    }

    /// Distinct words of the armed entries.
    fn words(st: &GroupState) -> usize {
        let mut seen: Vec<usize> = Vec::new();
        for e in &st.entries {
            let a = addr(e);
            if !seen.contains(&a) {
                seen.push(a);
            }
        }
        seen.len()
    }

    /// The thread's loop.
    fn run(&self, cap: usize, waitv: bool) {
        let mut wake: Vec<Waker> = Vec::new();
        loop {
            let ctl;
            let mut words: Vec<(Arc<dyn WaitSource>, u32)> = Vec::new();
            let until;
            {
                let mut st = self.lock();
                ctl = self.control.load(Ordering::Acquire);
                let now = Instant::now();
                let mut next: Option<Instant> = None;
                let mut addrs: Vec<usize> = Vec::new();
                for e in st.entries.iter_mut() {
                    if e.waker.is_none() {
                        continue;
                    }
                    let seq = e.src.event().seq.load(Ordering::Acquire);
                    let due = e.deadline.is_some_and(|d| d <= now);
                    if seq != e.expected || due {
                        wake.extend(e.waker.take());
                        continue;
                    }
                    if let Some(d) = e.deadline {
                        next = Some(next.map_or(d, |n: Instant| n.min(d)));
                    }
                    let a = addr(e);
                    if !addrs.contains(&a) && addrs.len() < cap {
                        addrs.push(a);
                        words.push((e.src.clone(), e.expected));
                    }
                }
                st.sleeping = addrs;
                st.until = next;
                until = next;
            }
            for w in wake.drain(..) {
                w.wake();
            }
            let timeout = until.map(|u| u.saturating_duration_since(Instant::now()));
            if waitv {
                let mut list: Vec<(&AtomicU32, u32)> = Vec::with_capacity(words.len() + 1);
                list.push((&self.control, ctl));
                list.extend(words.iter().map(|(s, v)| (&s.event().seq, *v)));
                sys::futex_wait_any(&list, timeout);
            } else if let Some((src, v)) = words.first() {
                let t = timeout.map_or(FALLBACK_RECHECK, |t| t.min(FALLBACK_RECHECK));
                sys::futex_wait(&src.event().seq, *v, Some(t));
            } else {
                sys::futex_wait(&self.control, ctl, timeout);
            }
        }
    }
}

/// The grid deadlines are rounded up to, so that the periodic re-checks
/// of many idle tasks wake the reactor once, together.
const DEADLINE_GRID: Duration = Duration::from_millis(250);

/// `d` rounded up to the next point of [`DEADLINE_GRID`].
fn coarse(d: Instant) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let since = d.saturating_duration_since(epoch).as_nanos();
    let grid = DEADLINE_GRID.as_nanos();
    let ticks = since.div_ceil(grid);
    let nanos = u64::try_from(ticks * grid).unwrap_or(u64::MAX);
    epoch + Duration::from_nanos(nanos)
}

fn e_deadline(st: &GroupState, id: u64) -> Option<Instant> {
    st.entries
        .iter()
        .find(|e| e.id == id)
        .and_then(|e| e.deadline)
}

fn addr(e: &Entry) -> usize {
    &e.src.event().seq as *const AtomicU32 as usize
}

/// The process's reactor.
struct Reactor {
    groups: Mutex<Groups>,
    /// Distinct words per group.
    cap: usize,
    /// Whether `futex_waitv` (or Windows' multi-wait) is available.
    waitv: bool,
    next_id: AtomicU64,
}

/// The reactor's groups, and the process they belong to.
struct Groups {
    /// The process that started the threads of `list`: a process forked
    /// from it inherits the list but none of the threads.
    pid: u32,
    list: Vec<Arc<Group>>,
}

impl Groups {
    /// The groups of this process: after a fork, the parent's are set
    /// aside (leaked: their entries belong to the parent's tasks, and
    /// their threads do not exist here), so that this process starts
    /// threads of its own.
    fn of_this_process(&mut self) -> &mut Vec<Arc<Group>> {
        let pid = std::process::id();
        if self.pid != pid {
            std::mem::forget(std::mem::take(&mut self.list));
            self.pid = pid;
        }
        &mut self.list
    }
}

fn reactor() -> &'static Reactor {
    static R: OnceLock<Reactor> = OnceLock::new();
    R.get_or_init(|| {
        let waitv = !force_fallback() && sys::futex_wait_any(&[], Some(Duration::ZERO));
        Reactor {
            groups: Mutex::new(Groups {
                pid: std::process::id(),
                list: Vec::new(),
            }),
            cap: if waitv { sys::WAIT_ANY_MAX - 1 } else { 1 },
            waitv,
            next_id: AtomicU64::new(1),
        }
    })
}

/// Tests stand in for a kernel without `futex_waitv`.
fn force_fallback() -> bool {
    cfg!(feature = "fault-injection") && std::env::var_os("MEMLANE_ASYNC_FALLBACK").is_some()
}

/// How many reactor threads this process has started, and whether they
/// use the multi-word wait (for tests and the docs' cost figures).
pub(crate) fn threads() -> (usize, bool) {
    let r = reactor();
    let n = r
        .groups
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .of_this_process()
        .len();
    (n, r.waitv)
}

/// One task's registration as a waiter on an event (see the module docs).
/// Dropping it unregisters it.
pub(crate) struct Waiting {
    id: u64,
    src: Arc<dyn WaitSource>,
    group: Arc<Group>,
}

impl Waiting {
    /// Step 1: counts this task among the event's waiters and passes the
    /// heavy barrier. Returns `None` if the barrier failed (then re-check
    /// on a short timer instead; see [`Waiting::arm`]).
    pub(crate) fn new(src: Arc<dyn WaitSource>, barrier: Barrier) -> (Waiting, bool) {
        src.event().waiters.fetch_add(1, Ordering::Relaxed);
        let ok = barrier.heavy();
        let r = reactor();
        let id = r.next_id.fetch_add(1, Ordering::Relaxed);
        let a = &src.event().seq as *const AtomicU32 as usize;
        // The entry is added under the reactor's lock, so that two
        // registrations of new words cannot both fill a group's last place.
        let mut all = r.groups.lock().unwrap_or_else(|e| e.into_inner());
        let groups = all.of_this_process();
        let mut chosen = None;
        for g in groups.iter() {
            let st = g.lock();
            if st.entries.iter().any(|e| addr(e) == a) {
                chosen = Some(g.clone());
                break;
            }
        }
        if chosen.is_none() {
            chosen = groups
                .iter()
                .find(|g| Group::words(&g.lock()) < r.cap)
                .cloned();
        }
        let group = match chosen {
            Some(g) => g,
            None => {
                let g = Arc::new(Group {
                    state: Mutex::new(GroupState::default()),
                    control: AtomicU32::new(0),
                });
                let g2 = g.clone();
                let (cap, waitv) = (r.cap, r.waitv);
                std::thread::Builder::new()
                    .name(format!("memlane-reactor-{}", groups.len()))
                    .spawn(move || g2.run(cap, waitv))
                    .expect("cannot start memlane's reactor thread");
                groups.push(g.clone());
                g
            }
        };
        group.lock().entries.push(Entry {
            id,
            src: src.clone(),
            expected: 0,
            waker: None,
            deadline: None,
        });
        drop(all);
        (Waiting { id, src, group }, ok)
    }

    /// Step 2: loads `seq` and hands it with `waker` (and an optional
    /// deadline) to the reactor. The caller re-checks its condition
    /// *after* this and returns `Pending` only if it is still false.
    pub(crate) fn arm(&self, waker: &Waker, deadline: Option<Instant>) {
        let s = self.src.event().seq.load(Ordering::Acquire);
        let a = &self.src.event().seq as *const AtomicU32 as usize;
        let kick = {
            let mut st = self.group.lock();
            let Some(e) = st.entries.iter_mut().find(|e| e.id == self.id) else {
                return;
            };
            e.expected = s;
            match &mut e.waker {
                Some(w) => w.clone_from(waker),
                None => e.waker = Some(waker.clone()),
            }
            e.deadline = deadline.map(coarse);
            // The thread sleeps on this word already (a later bump wakes
            // it, and it then compares against `s`) and wakes no later
            // than the deadline: nothing to tell it.
            !st.sleeping.contains(&a)
                || e_deadline(&st, self.id).is_some_and(|d| st.until.is_none_or(|u| d < u))
        };
        if kick {
            self.group.kick();
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        {
            let mut st = self.group.lock();
            if let Some(i) = st.entries.iter().position(|e| e.id == self.id) {
                st.entries.swap_remove(i);
            }
        }
        self.src.event().waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

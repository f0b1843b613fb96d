//! Unix (Linux) backend: `/dev/shm`, mode 0600, `sched_setaffinity`,
//! `kill(SIGKILL)`, `PR_SET_PDEATHSIG`, a shared futex and
//! `CLOCK_MONOTONIC`, all through rustix.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Child;
use std::sync::atomic::AtomicU32;

use rustix::process::{Pid, Signal};
use rustix::thread::futex;

use crate::Job;

/// The tmpfs that a run's private directory is made in when it is
/// writable, so that the floor's shared files never touch a disk.
pub(crate) const SHM_DIR: Option<&str> = Some("/dev/shm");

/// What the blocking floor (`floor-futex`) sleeps and wakes with.
pub(crate) const BLOCKING_FLOOR: &str = "shared futex (FUTEX_WAIT / FUTEX_WAKE)";

/// Makes `opts` create files with mode 0600, whatever the umask.
pub(crate) fn private_file(opts: &mut OpenOptions) -> &mut OpenOptions {
    opts.mode(0o600)
}

/// Pins the calling thread (and the threads and processes it starts
/// later, which inherit its mask) to `cpu`. Returns whether it did.
pub(crate) fn pin_to_cpu(cpu: usize) -> bool {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).is_ok()
}

/// Ends a child from another thread than the one that owns its [`Child`].
pub(crate) struct Killer(u32);

impl Killer {
    /// A killer for `child`.
    pub(crate) fn new(child: &Child) -> io::Result<Killer> {
        Ok(Killer(child.id()))
    }

    /// Sends SIGKILL (best effort: the child may be gone already).
    pub(crate) fn kill(&self) {
        if let Some(pid) = i32::try_from(self.0).ok().and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
    }
}

/// Parent side of "the child dies with its parent": nothing to do on
/// Unix, where the child asks for it itself ([`die_with_parent`]).
pub(crate) fn contain_child(_child: &Child) {}

/// In the child: get SIGKILL when the parent dies (`PR_SET_PDEATHSIG`).
pub(crate) fn die_with_parent() {
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
}

/// The blocking floor's wake-up: the shared sequence word itself is the
/// futex, so this holds nothing.
pub(crate) struct Wakeup;

impl Wakeup {
    /// Parent side, before the child starts.
    pub(crate) fn create(_job: &Job) -> io::Result<Wakeup> {
        Ok(Wakeup)
    }

    /// Child side.
    pub(crate) fn open(_job: &Job) -> io::Result<Wakeup> {
        Ok(Wakeup)
    }

    /// Wakes the peer sleeping on `word` (after the caller's Release store
    /// to it). The futex is shared: no `FUTEX_PRIVATE_FLAG`, which would
    /// keep the wake-up from reaching the other process.
    pub(crate) fn wake(&self, word: &AtomicU32) -> io::Result<()> {
        futex::wake(word, futex::Flags::empty(), 1)?;
        Ok(())
    }

    /// Sleeps while `word` still holds `seen`; may return spuriously (the
    /// caller re-checks the word).
    pub(crate) fn wait(&self, word: &AtomicU32, seen: u32) -> io::Result<()> {
        match futex::wait(word, futex::Flags::empty(), seen, None) {
            Ok(()) | Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Nanoseconds on a clock that every process of the machine shares
/// (`CLOCK_MONOTONIC`): a time taken in one process minus a time taken in
/// another is the time between them.
pub(crate) fn shared_clock_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64) * 1_000_000_000 + t.tv_nsec as u64
}

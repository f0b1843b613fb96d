//! Linux backend: `/dev/shm` files opened with `openat(O_NOFOLLOW)`, sized
//! with `ftruncate` + `fallocate`, mapped with `mmap(MAP_SHARED)` (through
//! memmap2), and shared (not private) futexes for waiting.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};

use super::{FileInfo, OpenFileError};

/// The directory anonymous segments live in unless overridden.
pub(crate) const DEFAULT_DIR: &str = "/dev/shm";

/// Environment variable that overrides [`DEFAULT_DIR`].
pub(crate) const DIR_ENV: &str = "MEMLANE_DIR";

/// Returns the directory for anonymous segments: the explicit one, else
/// `$MEMLANE_DIR`, else `/dev/shm`.
pub(crate) fn segment_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    match std::env::var_os(DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_DIR),
    }
}

/// An open directory, used as the anchor of every `*at` call so that a
/// name is always resolved inside it.
pub(crate) struct Dir {
    fd: OwnedFd,
}

impl Dir {
    /// Opens `path` as a directory (`O_DIRECTORY | O_CLOEXEC`).
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir { fd })
    }

    /// Creates `name` exclusively (`O_CREAT | O_EXCL | O_NOFOLLOW`) with
    /// exactly `mode` (the umask is overridden with `fchmod`).
    pub(crate) fn create_exclusive(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        Ok(File::from(fd))
    }

    /// Opens an existing `name` without following a symlink at it.
    /// A symlink gives `ELOOP`, reported as [`OpenFileError::Symlink`].
    pub(crate) fn open_existing(&self, name: &OsStr, write: bool) -> Result<File, OpenFileError> {
        let access = if write { OFlags::RDWR } else { OFlags::RDONLY };
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            access | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP => OpenFileError::Symlink,
            other => OpenFileError::Io(other.into()),
        })?;
        Ok(File::from(fd))
    }

    /// The identity (device, inode) of `name` in this directory, without
    /// following a symlink; `None` if there is nothing at the name.
    pub(crate) fn identity(&self, name: &OsStr) -> Option<(u64, u64)> {
        rustix::fs::statat(&self.fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|st| (st.st_dev, st.st_ino))
    }

    /// Renames `from` to `to` inside this directory. With `replace` false
    /// the rename fails with `EEXIST` if `to` exists (`RENAME_NOREPLACE`).
    pub(crate) fn rename(&self, from: &OsStr, to: &OsStr, replace: bool) -> io::Result<()> {
        let flags = if replace {
            rustix::fs::RenameFlags::empty()
        } else {
            rustix::fs::RenameFlags::NOREPLACE
        };
        rustix::fs::renameat_with(&self.fd, from, &self.fd, to, flags)?;
        Ok(())
    }

    /// Removes `name` from this directory (never follows a symlink: a
    /// symlink itself is what would be removed).
    pub(crate) fn unlink(&self, name: &OsStr) -> io::Result<()> {
        rustix::fs::unlinkat(&self.fd, name, rustix::fs::AtFlags::empty())?;
        Ok(())
    }
}

/// `fstat` on an open file.
pub(crate) fn file_info(file: &File) -> io::Result<FileInfo> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata()?;
    let age_secs = meta
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .map_or(0, |d| d.as_secs());
    Ok(FileInfo {
        len: meta.len(),
        is_file: meta.file_type().is_file(),
        uid: meta.uid(),
        nlink: meta.nlink(),
        id: (meta.dev(), meta.ino()),
        age_secs,
    })
}

/// Sets the file length and reserves its blocks, so that a full `/dev/shm`
/// is reported here as `ENOSPC` rather than as SIGBUS on first touch.
pub(crate) fn set_len_reserved(file: &File, len: u64) -> io::Result<()> {
    file.set_len(len)?;
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        // Some file systems cannot reserve; the length is set, go on.
        Err(rustix::io::Errno::OPNOTSUPP) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The effective user id of this process.
pub(crate) fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Tries to take an exclusive `flock` without blocking: `Ok(true)` if
/// taken, `Ok(false)` if another open file description holds a lock.
/// `flock` locks belong to the open file description, are released when
/// the process dies (even by SIGKILL), and conflict within one process too.
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    use rustix::fs::FlockOperation;
    match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Tries to take a shared `flock` without blocking: `Ok(true)` if taken,
/// `Ok(false)` if another open file description holds an exclusive one.
/// (Never a blocking lock: anyone who can open a file can hold an
/// exclusive lock on it for ever.)
pub(crate) fn try_lock_shared(file: &File) -> io::Result<bool> {
    use rustix::fs::FlockOperation;
    match rustix::fs::flock(file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The process holding an exclusive `flock` on `file`, from `/proc/locks`
/// (pids as this process's pid namespace sees them); `None` if unknown.
/// Informational only: pids are reused.
pub(crate) fn lock_holder(file: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let dev = meta.dev();
    // The kernel prints "major:minor:inode", major and minor in hex.
    let id = format!(
        "{:02x}:{:02x}:{}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev),
        meta.ino()
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"; waiters have
        // "->" after the number and are skipped.
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [_, "FLOCK", _, "WRITE", pid, dev_ino, ..] if *dev_ino == id => pid.parse().ok(),
            _ => None,
        }
    })
}

/// An open-file-description lock request on the one byte at `offset`.
fn ofd_flock(kind: libc::c_int, offset: u64) -> io::Result<libc::flock> {
    let start = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "lock offset out of range"))?;
    // SAFETY: `flock` is plain integers; all-zero is a valid value (and
    // `l_pid` must be 0 for OFD requests).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start;
    fl.l_len = 1;
    Ok(fl)
}

/// `fcntl(fd, cmd, &mut fl)`, retried on `EINTR`.
fn ofd_fcntl(file: &File, cmd: libc::c_int, fl: &mut libc::flock) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: the descriptor is open for the call's duration (borrowed
        // from `file`); `fl` is a valid, writable `struct flock`, which is
        // what F_OFD_SETLK and F_OFD_GETLK read and (GETLK) write.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), cmd, fl as *mut libc::flock) };
        if r != -1 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Tries to take an exclusive open-file-description lock
/// (`F_OFD_SETLK`, `F_WRLCK`) on the one byte at `offset` of `file`,
/// without blocking: `Ok(true)` if taken, `Ok(false)` if another open file
/// description holds a lock on it.
///
/// Unlike classic POSIX record locks, OFD locks belong to the open file
/// description: they conflict between two descriptions even in one
/// process, closing some other descriptor of the file does not drop them,
/// and the kernel releases them when the description's last descriptor
/// closes, also when the process dies (even by SIGKILL). They are
/// independent of `flock` locks. `file` must be open for writing; the byte
/// may lie past the end of the file.
#[doc(alias = "F_OFD_SETLK")]
pub(crate) fn try_lock_byte(file: &File, offset: u64) -> io::Result<bool> {
    let mut fl = ofd_flock(libc::F_WRLCK, offset)?;
    match ofd_fcntl(file, libc::F_OFD_SETLK, &mut fl) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases this description's lock on the byte at `offset`.
pub(crate) fn unlock_byte(file: &File, offset: u64) -> io::Result<()> {
    let mut fl = ofd_flock(libc::F_UNLCK, offset)?;
    ofd_fcntl(file, libc::F_OFD_SETLK, &mut fl)
}

/// Whether an open file description other than `file`'s holds a lock (of
/// either kind) on the byte at `offset` (`F_OFD_GETLK`). Takes no lock,
/// and works on a descriptor opened read-only.
#[doc(alias = "F_OFD_GETLK")]
pub(crate) fn byte_locked(file: &File, offset: u64) -> io::Result<bool> {
    let mut fl = ofd_flock(libc::F_WRLCK, offset)?;
    ofd_fcntl(file, libc::F_OFD_GETLK, &mut fl)?;
    Ok(i32::from(fl.l_type) != libc::F_UNLCK)
}

/// Opens `file` again, read-write, as a new open file description of the
/// same file (so that its OFD locks are its own): through
/// `/proc/self/fd/N`, which works even when the name was removed; without
/// `/proc`, by `path` (never following a symlink), checking that it is
/// still the same file.
pub(crate) fn reopen(file: &File, path: &Path) -> io::Result<File> {
    use std::os::fd::AsRawFd;
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    match rustix::fs::open(
        proc_path.as_str(),
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => return Ok(File::from(fd)),
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    let again = File::from(fd);
    if file_info(&again)?.id != file_info(file)?.id {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} is no longer the channel's file and /proc is not mounted to reach it otherwise",
                path.display()
            ),
        ));
    }
    Ok(again)
}

/// Whether the process `pid` is stopped (SIGSTOP, or traced), from
/// `/proc/<pid>/stat`. Informational only: pids are reused.
pub(crate) fn process_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        .is_some_and(|c| c == 'T' || c == 't')
}

/// The one CPU the calling thread may run on, if its affinity mask
/// (`sched_getaffinity`) allows exactly one: the thread was pinned
/// (`taskset -c 0`, `sched_setaffinity`), or only one CPU is online.
/// `None` when it may run on several, or the call failed. A snapshot: the
/// mask can change later.
#[doc(alias = "sched_getaffinity")]
pub(crate) fn pinned_cpu() -> Option<u32> {
    let set = rustix::thread::sched_getaffinity(None).ok()?;
    if set.count() != 1 {
        return None;
    }
    (0..rustix::thread::CpuSet::MAX_CPU)
        .find(|&i| set.is_set(i))
        .and_then(|i| u32::try_from(i).ok())
}

/// The current process id.
pub(crate) fn current_pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// A file name as raw bytes.
pub(crate) fn name_bytes(name: &OsStr) -> &[u8] {
    name.as_bytes()
}

/// Blocks while `word` holds `expected`, for at most `timeout` (forever
/// when `None`). Returns normally on wake-up, on a changed value
/// (`EAGAIN`), on a signal (`EINTR`) and on time-out: callers always
/// re-check their condition. A *shared* futex, so that wake-ups reach
/// other processes mapping the same memory.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    use rustix::thread::futex;
    let ts = timeout.map(|d| futex::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    // Errors are all "re-check and go on" outcomes (EAGAIN, EINTR,
    // ETIMEDOUT); anything else would be a bug in the arguments.
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Wakes every thread, in any process, blocked in [`futex_wait`] on `word`
/// (`old`, the value before the caller changed it, and `waiters`, an upper
/// bound on the sleepers, are for the Windows emulation).
pub(crate) fn futex_wake_all(word: &AtomicU32, _old: u32, _waiters: u32) {
    use rustix::thread::futex;
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}

/// How many words one [`futex_wait_any`] call can sleep on (the kernel's
/// `FUTEX_WAITV_MAX`).
#[cfg(feature = "async")]
pub(crate) const WAIT_ANY_MAX: usize = 128;

/// Sleeps until any of `words` no longer holds its expected value (or is
/// woken), for at most `timeout`: `futex_waitv` (Linux 5.16+), shared
/// futexes of 32 bits (no `FUTEX2_PRIVATE`, so that wake-ups from other
/// processes reach it). May return early for any reason: callers
/// re-check. Returns false if the kernel lacks `futex_waitv` (`ENOSYS`)
/// or a seccomp filter forbids it (`EPERM`): then nothing was waited for.
#[cfg(feature = "async")]
#[doc(alias = "futex_waitv")]
pub(crate) fn futex_wait_any(words: &[(&AtomicU32, u32)], timeout: Option<Duration>) -> bool {
    use rustix::thread::futex::{self, WaitFlags, WaitPtr, WaitvFlags};
    use rustix::time::{clock_gettime, ClockId, Timespec};
    debug_assert!(words.len() <= WAIT_ANY_MAX);
    let waiters: Vec<futex::Wait> = words
        .iter()
        .take(WAIT_ANY_MAX)
        .map(|(w, v)| {
            let mut wait = futex::Wait::new();
            wait.val = u64::from(*v);
            // The kernel only reads the word (and compares it).
            wait.uaddr = WaitPtr::new(w.as_ptr().cast());
            wait.flags = WaitFlags::SIZE_U32;
            wait
        })
        .collect();
    // The time-out is absolute, on CLOCK_MONOTONIC.
    let deadline = timeout.map(|d| {
        let now = clock_gettime(ClockId::Monotonic);
        let d = d.min(Duration::from_secs(86_400 * 365));
        let mut tv_sec = now.tv_sec + d.as_secs() as i64;
        let mut tv_nsec = now.tv_nsec + i64::from(d.subsec_nanos());
        if tv_nsec >= 1_000_000_000 {
            tv_sec += 1;
            tv_nsec -= 1_000_000_000;
        }
        Timespec { tv_sec, tv_nsec }
    });
    // Woken (the index of a word), EAGAIN (a word had changed), EINTR,
    // ETIMEDOUT, EINVAL (an empty list: the probe): all "re-check".
    match futex::waitv(
        &waiters,
        WaitvFlags::empty(),
        deadline.as_ref(),
        ClockId::Monotonic,
    ) {
        Err(e) => e != rustix::io::Errno::NOSYS && e != rustix::io::Errno::PERM,
        Ok(_) => true,
    }
}

/// Maps every page of `len` bytes at `ptr` (a shared mapping of a file
/// whose pages are allocated, writable if `writable`) into this process's
/// page tables now (`madvise(MADV_POPULATE_WRITE)`, or
/// `MADV_POPULATE_READ` for a read-only mapping; Linux 5.14+), so that the
/// first touch of each page on the hot path takes no page fault. Best
/// effort: on older kernels, or if the kernel refuses, the pages fault in
/// on first touch as before.
pub(crate) fn populate(ptr: *mut u8, len: usize, writable: bool) {
    let advice = if writable {
        rustix::mm::Advice::LinuxPopulateWrite
    } else {
        rustix::mm::Advice::LinuxPopulateRead
    };
    // SAFETY: MADV_POPULATE_{WRITE,READ} fault pages in as a write (read)
    // access would, without changing any byte; the caller's range is
    // mapped, writable when `writable` says so.
    let _ = unsafe { rustix::mm::madvise(ptr.cast(), len, advice) };
}

/// Registers this process for `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`
/// (once; later calls return the first answer): whether it is
/// registered. Only then may its threads order a wait/notify or join pair
/// with a compiler fence (see `sync::Barrier`). Fails on kernels before
/// 4.16 and where a seccomp filter forbids `membarrier`.
pub(crate) fn membarrier_register() -> bool {
    use rustix::thread::{membarrier, MembarrierCommand};
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // Tests stand in for a process that may not use membarrier.
        #[cfg(feature = "fault-injection")]
        if std::env::var_os("MEMLANE_FAULT_NO_MEMBARRIER").is_some() {
            return false;
        }
        membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
    })
}

/// Set once a [`membarrier_global`] call has failed in this process.
static MEMBARRIER_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`: a full memory barrier on
/// every CPU running a thread of a registered process. Whether it was done
/// (a failure is remembered: see [`membarrier_failed`]).
pub(crate) fn membarrier_global() -> bool {
    use rustix::thread::{membarrier, MembarrierCommand};
    let ok = membarrier(MembarrierCommand::GlobalExpedited).is_ok();
    if !ok {
        MEMBARRIER_FAILED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    ok
}

/// Whether a [`membarrier_global`] call has failed in this process.
pub(crate) fn membarrier_failed() -> bool {
    MEMBARRIER_FAILED.load(std::sync::atomic::Ordering::Relaxed)
}

/// A mapped window guarded against SIGBUS (see `sigbus.rs`).
pub(crate) struct MapGuard(super::sigbus::Guard);

impl MapGuard {
    /// Registers `len` bytes at `ptr` (a window of `_file`).
    pub(crate) fn register(ptr: *mut u8, len: usize, _file: &File, _file_offset: u64) -> MapGuard {
        MapGuard(super::sigbus::Guard::register(ptr, len))
    }

    /// Whether another process truncated the file under this window.
    #[inline]
    pub(crate) fn faulted(&self) -> bool {
        self.0.faulted()
    }
}

/// Ends this process at once with SIGKILL (crash-injection tests).
#[cfg(feature = "fault-injection")]
pub(crate) fn kill_self() -> ! {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    std::process::abort()
}

/// Stops this process with SIGSTOP (fault injection: a process stopped
/// by a debugger or `kill -STOP`); returns once it is continued.
#[cfg(feature = "fault-injection")]
pub(crate) fn stop_self() {
    // `raise` directs the signal at the calling thread, which takes it on
    // its way out of the system call. (A SIGSTOP sent to the process may be
    // taken by another thread, and the caller runs on meanwhile.)
    // SAFETY: raise has no memory-safety preconditions; SIGSTOP cannot be
    // caught, so no handler runs.
    unsafe { libc::raise(libc::SIGSTOP) };
}

/// A path from raw bytes (paths are bytes on Unix).
pub(crate) fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

/// Reads at `offset` without moving a shared file position.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

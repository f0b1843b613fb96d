//! Windows backend: the temporary directory, `SetProcessAffinityMask`,
//! `TerminateProcess`, a kill-on-close job object, and a pair of named
//! auto-reset events for the blocking floor (Windows has no futex that
//! works across processes: `WaitOnAddress` wakes only threads of the same
//! process).
#![allow(unsafe_code)]

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, OwnedHandle};
use std::process::Child;
use std::sync::atomic::AtomicU32;
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{GetLastError, ERROR_ALREADY_EXISTS, HANDLE, WAIT_FAILED};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
    SetInformationJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, GetCurrentProcess, OpenEventW, SetEvent, SetProcessAffinityMask,
    TerminateProcess, WaitForSingleObject, EVENT_MODIFY_STATE, INFINITE,
    SYNCHRONIZATION_SYNCHRONIZE,
};

use crate::Job;

/// No tmpfs to prefer: a run's private directory goes in the user's
/// temporary directory (`%TEMP%`).
pub(crate) const SHM_DIR: Option<&str> = None;

/// What the blocking floor (`floor-futex`) sleeps and wakes with.
pub(crate) const BLOCKING_FLOOR: &str =
    "named auto-reset events (SetEvent / WaitForSingleObject), not a futex";

/// Nothing to add: the file is made in the run's private directory inside
/// the user's profile, whose default ACL admits only the user (and
/// administrators).
pub(crate) fn private_file(opts: &mut OpenOptions) -> &mut OpenOptions {
    opts
}

/// Pins this process (all its threads, and the processes it starts later,
/// which inherit its mask) to `cpu`, if the machine has it and it is in
/// the first processor group. Returns whether it did. A child can pin
/// itself to another CPU: the mask only has to be a subset of the
/// system's, not of the parent's.
pub(crate) fn pin_to_cpu(cpu: usize) -> bool {
    let Some(mask) = 1usize.checked_shl(cpu as u32) else {
        return false;
    };
    // SAFETY: `GetCurrentProcess` returns a pseudo-handle that needs no
    // closing and is always valid in this process; the mask is a plain
    // integer (the call fails cleanly for CPUs that do not exist).
    unsafe { SetProcessAffinityMask(GetCurrentProcess(), mask) != 0 }
}

/// Ends a child from another thread than the one that owns its [`Child`]:
/// it holds its own duplicate of the process handle, so it can never hit
/// another process that reused the id.
pub(crate) struct Killer(OwnedHandle);

impl Killer {
    /// A killer for `child` (duplicates its process handle).
    pub(crate) fn new(child: &Child) -> io::Result<Killer> {
        Ok(Killer(child.as_handle().try_clone_to_owned()?))
    }

    /// `TerminateProcess` with exit code 1 (best effort: the child may be
    /// gone already).
    pub(crate) fn kill(&self) {
        // SAFETY: the handle is a live process handle owned by `self`
        // (duplicated from the `Child`, with the same full access).
        unsafe {
            TerminateProcess(self.0.as_raw_handle() as HANDLE, 1);
        }
    }
}

/// The job object that every child joins: `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`
/// ends them all when its last handle closes, which is when this process
/// exits, however it exits. `None` if it could not be made.
fn kill_on_close_job() -> Option<&'static OwnedHandle> {
    static JOB: OnceLock<Option<OwnedHandle>> = OnceLock::new();
    JOB.get_or_init(|| {
        // SAFETY: no security attributes and no name (both may be null);
        // the returned handle, if not null, is ours to own.
        let raw = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if raw.is_null() {
            return None;
        }
        // SAFETY: `raw` is a fresh, valid handle that nothing else owns.
        let job = unsafe { OwnedHandle::from_raw_handle(raw) };
        let mut info = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: `job` is a valid job handle; the pointer and length
        // describe `info`, the structure this information class expects,
        // which outlives the call.
        let ok = unsafe {
            SetInformationJobObject(
                job.as_raw_handle() as HANDLE,
                JobObjectExtendedLimitInformation,
                (&raw const info).cast(),
                size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        };
        (ok != 0).then_some(job)
    })
    .as_ref()
}

/// Parent side of "the child dies with its parent": puts `child` in a
/// kill-on-close job object (best effort, like `PR_SET_PDEATHSIG` on
/// Linux). The child runs unassigned for the moment between its start and
/// this call.
pub(crate) fn contain_child(child: &Child) {
    if let Some(job) = kill_on_close_job() {
        // SAFETY: both handles are valid for the call: the job is owned by
        // the static above, the process handle by `child`.
        unsafe {
            AssignProcessToJobObject(
                job.as_raw_handle() as HANDLE,
                child.as_raw_handle() as HANDLE,
            );
        }
    }
}

/// In the child: nothing to do, the parent put it in a kill-on-close job
/// ([`contain_child`]).
pub(crate) fn die_with_parent() {}

/// The blocking floor's wake-up: one named auto-reset event per direction,
/// in this session's `Local\` namespace. The sender always signals its
/// outgoing event after its Release store of the sequence word; the
/// receiver re-checks the word and waits on its incoming event. An event
/// signalled while nobody waits stays signalled, so no wake-up is lost; a
/// stale one only makes a wait return early.
pub(crate) struct Wakeup {
    out: OwnedHandle,
    inc: OwnedHandle,
}

impl Wakeup {
    /// Parent side, before the child starts: creates both events (an
    /// object that already exists under either name is an error).
    pub(crate) fn create(job: &Job) -> io::Result<Wakeup> {
        Ok(Wakeup {
            out: create_event(&event_name(job, "to-child"))?,
            inc: create_event(&event_name(job, "to-parent"))?,
        })
    }

    /// Child side: opens the parent's events.
    pub(crate) fn open(job: &Job) -> io::Result<Wakeup> {
        Ok(Wakeup {
            out: open_event(&event_name(job, "to-parent"))?,
            inc: open_event(&event_name(job, "to-child"))?,
        })
    }

    /// Wakes the peer (after the caller's Release store to the sequence
    /// word, which the event does not look at).
    pub(crate) fn wake(&self, _word: &AtomicU32) -> io::Result<()> {
        // SAFETY: `out` is a valid event handle opened with
        // EVENT_MODIFY_STATE, owned by `self`.
        if unsafe { SetEvent(self.out.as_raw_handle() as HANDLE) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sleeps until the peer's next wake-up; may return early (the caller
    /// re-checks the word, whose value `seen` it last saw).
    pub(crate) fn wait(&self, _word: &AtomicU32, _seen: u32) -> io::Result<()> {
        // SAFETY: `inc` is a valid event handle with SYNCHRONIZE access,
        // owned by `self`.
        if unsafe { WaitForSingleObject(self.inc.as_raw_handle() as HANDLE, INFINITE) }
            == WAIT_FAILED
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// `Local\memlane-bench.<hash of the run's directory>.<tag>.<direction>`,
/// NUL-terminated UTF-16. Both processes compute it from the job, so it
/// names the same object in both; the run's directory is unique to the
/// run, its tag to the job.
fn event_name(job: &Job, direction: &str) -> Vec<u16> {
    // The same executable on both sides, so the same (fixed-key) hasher.
    let mut h = std::hash::DefaultHasher::new();
    job.dir.hash(&mut h);
    // A backslash would be taken for a namespace separator.
    let tag = job.tag.replace('\\', "_");
    let name = format!("Local\\memlane-bench.{:016x}.{tag}.{direction}", h.finish());
    OsStr::new(&name).encode_wide().chain([0]).collect()
}

/// A new auto-reset event, not signalled.
fn create_event(name: &[u16]) -> io::Result<OwnedHandle> {
    // SAFETY: default security (null); `name` is NUL-terminated UTF-16
    // that outlives the call.
    let raw = unsafe { CreateEventW(std::ptr::null(), 0, 0, name.as_ptr()) };
    if raw.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: read right after the call whose status it reports.
    let existed = unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
    // SAFETY: `raw` is a fresh, valid handle that nothing else owns.
    let handle = unsafe { OwnedHandle::from_raw_handle(raw) };
    if existed {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "an event named {} already exists",
                String::from_utf16_lossy(&name[..name.len() - 1])
            ),
        ));
    }
    Ok(handle)
}

/// Opens an existing event to signal and wait on.
fn open_event(name: &[u16]) -> io::Result<OwnedHandle> {
    // SAFETY: `name` is NUL-terminated UTF-16 that outlives the call; the
    // handle is not inheritable.
    let raw = unsafe {
        OpenEventW(
            EVENT_MODIFY_STATE | SYNCHRONIZATION_SYNCHRONIZE,
            0,
            name.as_ptr(),
        )
    };
    if raw.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh, valid handle that nothing else owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(raw) })
}

/// Nanoseconds on a clock that every process of the machine shares: the
/// system time (`GetSystemTimePreciseAsFileTime` behind std's
/// `SystemTime`, 100 ns steps), since `Instant` cannot leave its process.
/// A time taken in one process minus a time taken in another is the time
/// between them, unless the clock was set in between.
pub(crate) fn shared_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

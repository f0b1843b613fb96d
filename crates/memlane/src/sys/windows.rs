//! Windows backend: segment files in a per-user directory, opened without
//! following reparse points (symlinks, junctions), mapped through Win32
//! file mappings (memmap2's `CreateFileMappingW` + `MapViewOfFile`),
//! `LockFileEx` locks for holders and endpoint liveness, and named
//! semaphores in the session's `Local\` namespace (or `Global\` on
//! request) for cross-process wake-ups, since `WaitOnAddress` does not
//! cross processes.
//!
//! The differences from Linux that callers see are listed in
//! `docs/WINDOWS.md`.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::os::windows::prelude::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::{FileInfo, OpenFileError};
use crate::name::WAIT_OBJECT_PREFIX;

use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, ERROR_ALREADY_EXISTS, ERROR_IO_PENDING, ERROR_LOCK_VIOLATION,
    FILETIME, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    GetFileInformationByHandle, LockFileEx, MoveFileExW, ReOpenFile, UnlockFileEx,
    BY_HANDLE_FILE_INFORMATION, FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_REPARSE_POINT,
    FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_SHARE_DELETE, FILE_SHARE_READ,
    FILE_SHARE_WRITE, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FlushViewOfFile, MapViewOfFile, OpenFileMappingW, UnmapViewOfFile,
    VirtualQuery, FILE_MAP_COPY, FILE_MAP_READ, FILE_MAP_WRITE, MEMORY_BASIC_INFORMATION,
    MEMORY_MAPPED_VIEW_ADDRESS, PAGE_READWRITE,
};
use windows_sys::Win32::System::Threading::{
    CreateSemaphoreW, OpenSemaphoreW, ReleaseSemaphore, WaitForSingleObject, INFINITE,
    SEMAPHORE_MODIFY_STATE,
};
use windows_sys::Win32::System::IO::OVERLAPPED;

/// The sub-directory of the user's temporary directory that anonymous
/// segments live in unless overridden.
pub(crate) const DEFAULT_SUBDIR: &str = "memlane";

/// Environment variable that overrides the segment directory.
pub(crate) const DIR_ENV: &str = "MEMLANE_DIR";

/// Environment variable that picks the kernel-object namespace of the
/// wake-up semaphores: `Local` (the default: this logon session) or
/// `Global` (all sessions; needs `SeCreateGlobalPrivilege` on Windows).
pub(crate) const NAMESPACE_ENV: &str = "MEMLANE_WINDOWS_NAMESPACE";

/// Returns the directory for anonymous segments: the explicit one, else
/// `%MEMLANE_DIR%`, else `%TEMP%\memlane` (created on first use, inside
/// the user's profile, so only the user and administrators can open it).
pub(crate) fn segment_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    match std::env::var_os(DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let dir = std::env::temp_dir().join(DEFAULT_SUBDIR);
            // Creating it is best effort: if it fails, opening the
            // directory reports the error with its path.
            let _ = std::fs::create_dir_all(&dir);
            dir
        }
    }
}

/// Share modes for every handle memlane opens: others may read, write,
/// rename and delete the file while it is open, as on Unix.
const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

/// Flags for every open: never follow a reparse point (a symlink or
/// junction is opened as itself and refused), and let directories open so
/// that they are reported as "not a file" rather than "access denied".
const NO_FOLLOW: u32 = FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS;

/// A directory that names are resolved in. Windows has no `*at` calls;
/// the directory is held by path and every open refuses reparse points.
pub(crate) struct Dir {
    path: PathBuf,
}

impl Dir {
    /// Checks that `path` is a directory and remembers it.
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        let meta = std::fs::metadata(path)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", path.display()),
            ));
        }
        Ok(Dir {
            path: path.to_path_buf(),
        })
    }

    fn join(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// Creates `name` exclusively (`CREATE_NEW`), without following a
    /// reparse point. `mode` has no meaning on Windows: the file inherits
    /// the directory's access control list.
    pub(crate) fn create_exclusive(&self, name: &OsStr, _mode: u32) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .share_mode(SHARE_ALL)
            .custom_flags(NO_FOLLOW)
            .open(self.join(name))
    }

    /// Opens an existing `name` without following a reparse point at it.
    pub(crate) fn open_existing(&self, name: &OsStr, write: bool) -> Result<File, OpenFileError> {
        let file = OpenOptions::new()
            .read(true)
            .write(write)
            .share_mode(SHARE_ALL)
            .custom_flags(NO_FOLLOW)
            .open(self.join(name))
            .map_err(OpenFileError::Io)?;
        let info = handle_info(&file).map_err(OpenFileError::Io)?;
        if info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return Err(OpenFileError::Symlink);
        }
        Ok(file)
    }

    /// Opens `name` read-write, creating it if missing and `create`,
    /// without following a reparse point: the lock file of a page-file
    /// channel, or a side file `gc` looks at.
    pub(crate) fn open_token(&self, name: &OsStr, create: bool) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .share_mode(SHARE_ALL)
            .custom_flags(NO_FOLLOW)
            .open(self.join(name))
    }

    /// The identity (volume, file index) of `name`, without following a
    /// reparse point; `None` if there is nothing at the name.
    pub(crate) fn identity(&self, name: &OsStr) -> Option<(u64, u64)> {
        let file = OpenOptions::new()
            .access_mode(0)
            .share_mode(SHARE_ALL)
            .custom_flags(NO_FOLLOW)
            .open(self.join(name))
            .ok()?;
        handle_info(&file).ok().map(|i| identity_of(&i))
    }

    /// Renames `from` to `to` inside this directory. With `replace` false
    /// the rename fails with `AlreadyExists` if `to` exists.
    ///
    /// Windows (and Wine) refuse to replace a file that is open, so with
    /// `replace` true an existing `to` is first moved aside to a hidden
    /// name (moving an open or mapped file is allowed) and deleted once
    /// `from` is in place; an opener in between finds no file, not a torn
    /// one.
    pub(crate) fn rename(&self, from: &OsStr, to: &OsStr, replace: bool) -> io::Result<()> {
        if !replace {
            return self.move_file(from, to);
        }
        let aside = crate::name::aside_name();
        let moved = match self.move_file(to, OsStr::new(&aside)) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        let r = self.move_file(from, to);
        if moved {
            if r.is_ok() {
                let _ = std::fs::remove_file(self.join(OsStr::new(&aside)));
            } else {
                // Put the old file back where it was.
                let _ = self.move_file(OsStr::new(&aside), to);
            }
        }
        r
    }

    fn move_file(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let from = wide(self.join(from).as_os_str());
        let to = wide(self.join(to).as_os_str());
        // SAFETY: both paths are NUL-terminated UTF-16 buffers that live
        // across the call.
        let ok = unsafe { MoveFileExW(from.as_ptr(), to.as_ptr(), 0) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Removes `name` from this directory (a reparse point itself is what
    /// would be removed, never its target). The file is first renamed to a
    /// unique hidden name, so the name is free at once even while other
    /// processes still hold the file open.
    pub(crate) fn unlink(&self, name: &OsStr) -> io::Result<()> {
        let trash = crate::name::aside_name();
        match self.move_file(name, OsStr::new(&trash)) {
            Ok(()) => {
                // The hidden name goes when the last handle closes; if the
                // delete itself fails the file is left under that name,
                // which `gc` does not list.
                let _ = std::fs::remove_file(self.join(OsStr::new(&trash)));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
            Err(_) => std::fs::remove_file(self.join(name)),
        }
    }
}

fn handle_info(file: &File) -> io::Result<BY_HANDLE_FILE_INFORMATION> {
    // SAFETY: the struct is plain data; all-zero is a valid value.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is open for the call's duration (borrowed from
    // `file`), and `info` is a valid, writable struct of the right type.
    let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle() as HANDLE, &mut info) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

fn identity_of(info: &BY_HANDLE_FILE_INFORMATION) -> (u64, u64) {
    (
        u64::from(info.dwVolumeSerialNumber),
        (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow),
    )
}

fn filetime_secs_ago(t: FILETIME) -> u64 {
    // FILETIME counts 100 ns ticks since 1601-01-01.
    const UNIX_EPOCH_TICKS: u64 = 116_444_736_000_000_000;
    let ticks = (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    let secs = ticks.saturating_sub(UNIX_EPOCH_TICKS) / 10_000_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    now.saturating_sub(secs)
}

/// File information of an open file.
pub(crate) fn file_info(file: &File) -> io::Result<FileInfo> {
    let info = handle_info(file)?;
    Ok(FileInfo {
        len: (u64::from(info.nFileSizeHigh) << 32) | u64::from(info.nFileSizeLow),
        is_file: info.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)
            == 0,
        uid: 0,
        nlink: u64::from(info.nNumberOfLinks),
        id: identity_of(&info),
        age_secs: filetime_secs_ago(info.ftLastWriteTime),
    })
}

/// Sets the file length (Windows allocates the blocks of a file extended
/// this way, so a full disk is reported here).
pub(crate) fn set_len_reserved(file: &File, len: u64) -> io::Result<()> {
    file.set_len(len)
}

/// Windows has no numeric user id; files are protected by the access
/// control list they inherit from the per-user segment directory. Both
/// this and [`FileInfo::uid`] are 0, so the owner check always passes.
pub(crate) fn current_uid() -> u32 {
    0
}

/// The byte range every lock covers: one byte far past any file's end.
/// `LockFileEx` locks are mandatory for `ReadFile`/`WriteFile` inside the
/// range, so the range must not overlap the bytes memlane reads.
const LOCK_OFFSET: u64 = u64::MAX - 1;

fn lock(file: &File, flags: u32) -> io::Result<()> {
    lock_at(file, flags, LOCK_OFFSET)
}

fn overlapped_at(offset: u64) -> OVERLAPPED {
    // SAFETY: the struct is plain data; all-zero is a valid value.
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.Anonymous.Anonymous.Offset = offset as u32;
    ov.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
    ov
}

fn lock_at(file: &File, flags: u32, offset: u64) -> io::Result<()> {
    lock_len_at(file, flags, offset, 1)
}

fn lock_len_at(file: &File, flags: u32, offset: u64, len: u64) -> io::Result<()> {
    let mut ov = overlapped_at(offset);
    // SAFETY: the handle is open (borrowed from `file`) and was opened for
    // synchronous I/O, so the call completes before it returns and `ov`
    // outlives it.
    let ok = unsafe {
        LockFileEx(
            file.as_raw_handle() as HANDLE,
            flags,
            0,
            len as u32,
            (len >> 32) as u32,
            &mut ov,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn is_held(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32)
        || e.raw_os_error() == Some(ERROR_IO_PENDING as i32)
}

/// Tries to take an exclusive `LockFileEx` lock on the one byte at
/// `offset` of `file` without blocking: `Ok(true)` if taken, `Ok(false)`
/// if another handle holds it. Locks belong to the handle (a handle made
/// by `ReOpenFile` or `CreateFileW`, not a duplicate), conflict within one
/// process too, and are released when the handle closes or the process
/// dies. The byte may lie past the end of the file.
pub(crate) fn try_lock_byte(file: &File, offset: u64) -> io::Result<bool> {
    match lock_at(
        file,
        LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY,
        offset,
    ) {
        Ok(()) => Ok(true),
        Err(e) if is_held(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Tries to lock `len` bytes at `offset` exclusively without blocking;
/// `Ok(true)` if taken (held until `file` closes).
pub(crate) fn try_lock_range(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    match lock_len_at(
        file,
        LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY,
        offset,
        len,
    ) {
        Ok(()) => Ok(true),
        Err(e) if is_held(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases this handle's lock on the byte at `offset` (Windows releases
/// the locks of a closed handle only "when resources allow", so memlane
/// unlocks explicitly before closing).
pub(crate) fn unlock_byte(file: &File, offset: u64) -> io::Result<()> {
    let mut ov = overlapped_at(offset);
    // SAFETY: as in `lock_at`.
    let ok = unsafe { UnlockFileEx(file.as_raw_handle() as HANDLE, 0, 1, 0, &mut ov) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether another handle holds a lock on the byte at `offset`. Windows
/// has no "test lock" call: this takes a shared lock through `file` (so it
/// also works on a read-only handle) and releases it at once; during that
/// moment a joiner would find the byte locked and try the next slot.
pub(crate) fn byte_locked(file: &File, offset: u64) -> io::Result<bool> {
    match lock_at(file, LOCKFILE_FAIL_IMMEDIATELY, offset) {
        Ok(()) => {
            unlock_byte(file, offset)?;
            Ok(false)
        }
        Err(e) if is_held(&e) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Opens `file` again, read-write, as a new handle of its own
/// (`ReOpenFile`), so that its byte-range locks are its own; if that
/// fails (Wine's fails for a file renamed since it was opened, as every
/// new segment is), opens `path` (never following a reparse point) and
/// checks that it is still the same file.
pub(crate) fn reopen(file: &File, path: &Path) -> io::Result<File> {
    use std::os::windows::io::FromRawHandle;
    // SAFETY: the handle is open for the call's duration (borrowed from
    // `file`); the flags ask for a synchronous handle like the original.
    let h = unsafe {
        ReOpenFile(
            file.as_raw_handle() as HANDLE,
            GENERIC_READ | GENERIC_WRITE,
            SHARE_ALL,
            0,
        )
    };
    if h != INVALID_HANDLE_VALUE && !h.is_null() {
        // SAFETY: `h` is a valid file handle just returned to us, owned by
        // nothing else; the `File` closes it exactly once.
        return Ok(unsafe { File::from_raw_handle(h as _) });
    }
    let again = OpenOptions::new()
        .read(true)
        .write(true)
        .share_mode(SHARE_ALL)
        .custom_flags(NO_FOLLOW)
        .open(path)?;
    let (a, b) = (file_info(&again)?.id, file_info(file)?.id);
    // Wine reports volume serial 0 for some handles (one opened under a
    // name the file was renamed from): the file index must match, the
    // volume where both are known.
    if a.1 != b.1 || (a.0 != b.0 && a.0 != 0 && b.0 != 0) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is no longer the channel's file", path.display()),
        ));
    }
    Ok(again)
}

/// Tries to take an exclusive lock without blocking: `Ok(true)` if taken,
/// `Ok(false)` if another handle holds a lock. Locks belong to the handle,
/// are released when the process dies, and conflict within one process.
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    match lock(file, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY) {
        Ok(()) => Ok(true),
        Err(e) if is_held(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Tries to take a shared lock without blocking: `Ok(true)` if taken,
/// `Ok(false)` if another handle holds an exclusive one.
pub(crate) fn try_lock_shared(file: &File) -> io::Result<bool> {
    match lock(file, LOCKFILE_FAIL_IMMEDIATELY) {
        Ok(()) => Ok(true),
        Err(e)
            if e.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32)
                || e.raw_os_error() == Some(ERROR_IO_PENDING as i32) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Windows does not tell which process holds a lock: always `None`.
pub(crate) fn lock_holder(_file: &File) -> Option<u32> {
    None
}

/// Windows processes cannot be stopped like SIGSTOP; a debugger break is
/// not visible from outside. Always `false`.
pub(crate) fn process_stopped(_pid: u32) -> bool {
    false
}

/// The one CPU the calling thread may run on (Linux only for now: on
/// Windows always `None`, so a blocking receive spins as it always did).
pub(crate) fn pinned_cpu() -> Option<u32> {
    None
}

/// The current process id.
pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

/// A file name as bytes (WTF-8, the standard library's encoding).
pub(crate) fn name_bytes(name: &OsStr) -> &[u8] {
    name.as_encoded_bytes()
}

/// A path from bytes read back from a link entry (UTF-8; anything else is
/// replaced, so a hostile entry names a file that does not exist).
pub(crate) fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

// --- Mapped windows and the names of their wait words --------------------

/// Where a mapped window of a file lives in this process, so that a wait
/// word inside it can be named the same way in every process.
struct Window {
    start: usize,
    len: usize,
    /// What is mapped, the same in every process: `f<volume>.<index>` for
    /// a file, `n<name>` for a named mapping.
    key: String,
    /// Offset of `start` in what is mapped.
    offset: u64,
}

/// Every mapped window of this process (looked up only on the sleeping
/// and waking paths, never on the fast path, and there only when a wait
/// word's name is not cached: see [`with_semaphore_name`]).
static WINDOWS: Mutex<Vec<Window>> = Mutex::new(Vec::new());

/// Bumped (under the `WINDOWS` lock) whenever a window is registered or
/// dropped: cached names of wait words resolved before are stale (an
/// address may now belong to another mapping).
static WINDOWS_GEN: AtomicU64 = AtomicU64::new(0);

/// Registers a mapped window until dropped (see [`futex_wait`]).
pub(crate) struct MapGuard {
    start: usize,
}

impl MapGuard {
    /// Records that `len` bytes at `ptr` map `file` from `file_offset`.
    pub(crate) fn register(ptr: *mut u8, len: usize, file: &File, file_offset: u64) -> MapGuard {
        match handle_info(file) {
            Ok(info) => {
                let (vol, idx) = identity_of(&info);
                MapGuard::register_key(ptr, len, format!("f{vol:x}.{idx:x}"), file_offset)
            }
            Err(_) => MapGuard {
                start: ptr as usize,
            },
        }
    }

    /// Records that `len` bytes at `ptr` map the named mapping `name` from
    /// its start.
    pub(crate) fn register_named(ptr: *mut u8, len: usize, name: &str) -> MapGuard {
        MapGuard::register_key(ptr, len, format!("n{name}"), 0)
    }

    fn register_key(ptr: *mut u8, len: usize, key: String, offset: u64) -> MapGuard {
        let start = ptr as usize;
        let w = Window {
            start,
            len,
            key,
            offset,
        };
        let mut windows = WINDOWS.lock().unwrap_or_else(|e| e.into_inner());
        windows.push(w);
        WINDOWS_GEN.fetch_add(1, std::sync::atomic::Ordering::Release);
        MapGuard { start }
    }

    /// Windows refuses to truncate a file with a mapped view, so a peer
    /// can never pull pages from under a window: always `false`.
    #[inline]
    pub(crate) fn faulted(&self) -> bool {
        false
    }
}

impl Drop for MapGuard {
    fn drop(&mut self) {
        let mut windows = WINDOWS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = windows.iter().position(|w| w.start == self.start) {
            windows.swap_remove(i);
            WINDOWS_GEN.fetch_add(1, std::sync::atomic::Ordering::Release);
        }
    }
}

/// The kernel-object name for sleepers on `word` while it holds `value`:
/// `Local\memlane-wait.<what is mapped>.<offset>.<value>`, the same
/// in every process mapping the file. A word outside any mapped window
/// (only in tests) gets a name private to this process. Calls `f` with the
/// name (NUL-terminated UTF-16) and returns what it returns.
///
/// Each thread caches the name prefix of the last [`NAME_CACHE_LEN`] words
/// it slept on or woke, with the window generation it was resolved at:
/// a sleeper or waker in a steady state takes no lock, reads no
/// environment variable and allocates nothing; only a word it has not seen
/// since the last map or unmap looks up the windows.
fn with_semaphore_name<R>(word: &AtomicU32, value: u32, f: impl FnOnce(*const u16) -> R) -> R {
    let addr = word as *const AtomicU32 as usize;
    let gen = WINDOWS_GEN.load(std::sync::atomic::Ordering::Acquire);
    NAME_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let NameCache { entries, buf } = &mut *cache;
        let i = match entries.iter().position(|e| e.0 == addr && e.1 == gen) {
            Some(i) => i,
            None => {
                if entries.len() >= NAME_CACHE_LEN {
                    entries.remove(0);
                }
                entries.push((addr, gen, semaphore_prefix(addr)));
                entries.len() - 1
            }
        };
        buf.clear();
        buf.extend_from_slice(&entries[i].2);
        push_hex(buf, value);
        buf.push(0);
        f(buf.as_ptr())
    })
}

/// Wait words whose name prefixes a thread keeps (see
/// [`with_semaphore_name`]).
const NAME_CACHE_LEN: usize = 8;

/// A thread's cached wait-word names: (address, window generation, name
/// prefix up to the value), and the buffer names are built in.
#[derive(Default)]
struct NameCache {
    entries: Vec<(usize, u64, Vec<u16>)>,
    buf: Vec<u16>,
}

thread_local! {
    static NAME_CACHE: RefCell<NameCache> = RefCell::new(NameCache::default());
}

/// `<namespace>\memlane-wait.<what is mapped>.<offset>.` for the word at
/// `addr`, as UTF-16 (the value's hex digits go after it).
fn semaphore_prefix(addr: usize) -> Vec<u16> {
    let ns = namespace();
    let windows = WINDOWS.lock().unwrap_or_else(|e| e.into_inner());
    let name = match windows
        .iter()
        .find(|w| addr >= w.start && addr - w.start < w.len)
    {
        Some(w) => format!(
            "{ns}\\{WAIT_OBJECT_PREFIX}{}.{:x}.",
            w.key,
            w.offset + (addr - w.start) as u64
        ),
        None => format!(
            "{ns}\\{WAIT_OBJECT_PREFIX}p{}.{addr:x}.",
            std::process::id()
        ),
    };
    OsStr::new(&name).encode_wide().collect()
}

/// Appends `v` in lower-case hex without leading zeros (as `{v:x}`).
fn push_hex(buf: &mut Vec<u16>, v: u32) {
    let mut digits = [0u16; 8];
    let (mut n, mut v) = (0, v);
    loop {
        digits[n] = u16::from(b"0123456789abcdef"[(v & 15) as usize]);
        n += 1;
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    buf.extend(digits[..n].iter().rev());
}

/// Linux maps a channel's pages into the page tables when an endpoint
/// joins (`populate`); here pages fault in on first touch.
pub(crate) fn populate(_ptr: *mut u8, _len: usize, _writable: bool) {}

/// Windows has no cross-process asymmetric barrier
/// (`FlushProcessWriteBuffers` reaches only this process): never
/// registered, so channels use fences (see `sync::Barrier`).
pub(crate) fn membarrier_register() -> bool {
    false
}

/// See [`membarrier_register`]: never done.
pub(crate) fn membarrier_global() -> bool {
    false
}

/// See [`membarrier_register`]: never called, so never failed.
pub(crate) fn membarrier_failed() -> bool {
    false
}

/// Blocks while `word` holds `expected`, for at most `timeout` (forever
/// when `None`); may return early for any reason, so callers re-check.
///
/// Sleepers on one value of the word share a named semaphore: the waiter
/// creates (or opens) it *before* re-checking the word, and the waker
/// changes the word *before* opening it, so either the waiter sees the new
/// value or the waker finds the semaphore and releases every sleeper.
/// Naming it after the value means a later sleeper (on the next value)
/// never takes a release meant for an earlier one.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    use std::sync::atomic::{fence, Ordering};
    let sem = with_semaphore_name(word, expected, |name| {
        // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives
        // the call; a null security-attributes pointer asks for the default.
        unsafe { CreateSemaphoreW(std::ptr::null(), 0, i32::MAX, name) }
    });
    if sem.is_null() {
        // No semaphore (out of handles, a name clash with another object
        // type): sleep briefly instead; the caller re-checks.
        std::thread::sleep(
            timeout
                .unwrap_or(Duration::from_millis(1))
                .min(Duration::from_millis(1)),
        );
        return;
    }
    fence(Ordering::SeqCst);
    if word.load(Ordering::SeqCst) == expected {
        let ms = timeout.map_or(INFINITE, |d| {
            u32::try_from(d.as_millis().max(1)).unwrap_or(INFINITE - 1)
        });
        // SAFETY: `sem` is a valid semaphore handle owned here.
        unsafe { WaitForSingleObject(sem, ms) };
    }
    // SAFETY: `sem` is a valid handle owned here, closed exactly once.
    unsafe { CloseHandle(sem) };
}

/// Wakes the sleepers on `word`, which held `old` before the caller
/// changed it; `waiters` bounds how many there can be. A no-op when no
/// process has the semaphore open (nobody sleeps on that value).
pub(crate) fn futex_wake_all(word: &AtomicU32, old: u32, waiters: u32) {
    use std::sync::atomic::{fence, Ordering};
    fence(Ordering::SeqCst);
    let sem = with_semaphore_name(word, old, |name| {
        // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives
        // the call.
        unsafe { OpenSemaphoreW(SEMAPHORE_MODIFY_STATE, 0, name) }
    });
    if sem.is_null() {
        // No semaphore of that name: nobody sleeps on this value.
        return;
    }
    let count = i32::try_from(waiters.max(1)).unwrap_or(i32::MAX);
    // SAFETY: `sem` is a valid semaphore handle owned here. Releasing more
    // than the maximum fails harmlessly (sleepers time out and re-check).
    unsafe { ReleaseSemaphore(sem, count, std::ptr::null_mut()) };
    // SAFETY: `sem` is a valid handle owned here, closed exactly once.
    unsafe { CloseHandle(sem) };
}

/// How many words one [`futex_wait_any`] call can sleep on
/// (`MAXIMUM_WAIT_OBJECTS`).
#[cfg(feature = "async")]
pub(crate) const WAIT_ANY_MAX: usize = 64;

/// Sleeps until any of `words` no longer holds its expected value (or is
/// woken), for at most `timeout`; may return early for any reason, so
/// callers re-check. As [`futex_wait`] for each word (its semaphore is
/// created before the word is re-checked), then one
/// `WaitForMultipleObjects` over all the semaphores. Always supported:
/// returns true.
#[cfg(feature = "async")]
pub(crate) fn futex_wait_any(words: &[(&AtomicU32, u32)], timeout: Option<Duration>) -> bool {
    use std::sync::atomic::{fence, Ordering};
    use windows_sys::Win32::System::Threading::WaitForMultipleObjects;
    let mut sems: Vec<HANDLE> = Vec::with_capacity(words.len());
    for (word, expected) in words.iter().take(WAIT_ANY_MAX) {
        let sem = with_semaphore_name(word, *expected, |name| {
            // SAFETY: `name` is a NUL-terminated UTF-16 string that
            // outlives the call; a null security-attributes pointer asks
            // for the default.
            unsafe { CreateSemaphoreW(std::ptr::null(), 0, i32::MAX, name) }
        });
        if !sem.is_null() {
            sems.push(sem);
        }
    }
    fence(Ordering::SeqCst);
    let changed = words
        .iter()
        .any(|(w, expected)| w.load(Ordering::SeqCst) != *expected);
    if sems.len() < words.len().min(WAIT_ANY_MAX) {
        // A semaphore could not be made: sleep briefly instead.
        std::thread::sleep(Duration::from_millis(1));
    } else if !changed && !sems.is_empty() {
        let ms = timeout.map_or(INFINITE, |d| {
            u32::try_from(d.as_millis().max(1)).unwrap_or(INFINITE - 1)
        });
        // SAFETY: `sems` holds `sems.len()` (1..=64) valid semaphore
        // handles owned here.
        unsafe { WaitForMultipleObjects(sems.len() as u32, sems.as_ptr(), 0, ms) };
    }
    for sem in sems {
        // SAFETY: a valid handle owned here, closed exactly once.
        unsafe { CloseHandle(sem) };
    }
    true
}

/// Ends this process at once, as `kill -9` would (crash-injection tests).
#[cfg(feature = "fault-injection")]
pub(crate) fn kill_self() -> ! {
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, TerminateProcess};
    // SAFETY: the pseudo-handle of the current process is always valid.
    unsafe { TerminateProcess(GetCurrentProcess(), 137) };
    std::process::abort()
}

/// Reads at `offset` (moves the handle's file position, which memlane
/// never relies on).
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

// --- Page-file-backed named mappings --------------------------------------

/// The kernel-object namespace: `Local` unless `MEMLANE_WINDOWS_NAMESPACE`
/// says `Global`.
///
/// Read once per process: the names every process of a channel uses must
/// not change under it.
fn namespace() -> &'static str {
    static NS: OnceLock<&'static str> = OnceLock::new();
    NS.get_or_init(|| match std::env::var(NAMESPACE_ENV) {
        Ok(v) if v.eq_ignore_ascii_case("global") => "Global",
        _ => "Local",
    })
}

/// The kernel-object name of the page-file segment `name`:
/// `Local\memlane.<name>` (or `Global\...`).
pub(crate) fn mapping_name(name: &str) -> String {
    format!("{}\\{}", namespace(), crate::name::file_name(name))
}

/// How a view of a named mapping is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ViewAccess {
    /// `FILE_MAP_READ`.
    Read,
    /// `FILE_MAP_READ | FILE_MAP_WRITE`.
    Write,
    /// `FILE_MAP_COPY`: copy-on-write, private to this process.
    Copy,
}

impl ViewAccess {
    fn flags(self) -> u32 {
        match self {
            ViewAccess::Read => FILE_MAP_READ,
            ViewAccess::Write => FILE_MAP_READ | FILE_MAP_WRITE,
            ViewAccess::Copy => FILE_MAP_COPY,
        }
    }
}

/// A mapped view of a page-file-backed named mapping, with the mapping's
/// handle: Windows removes an object's name when its last handle closes
/// (a view alone keeps the memory but not the name), so the name, and the
/// mapping, disappear when the last process holding a view lets go.
pub(crate) struct View {
    ptr: *mut u8,
    len: usize,
    handle: HANDLE,
}

// SAFETY: a view is a plain range of this process's address space, usable
// from any thread; every access to the bytes goes through raw pointers and
// atomics with their own synchronisation.
unsafe impl Send for View {}
// SAFETY: as above; `&View` only hands out the pointer and length.
unsafe impl Sync for View {}

impl View {
    /// The start of the view.
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Its length: the whole mapping, rounded up to a page.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// `FlushViewOfFile` over a range (for a page-file mapping this only
    /// orders the writes; there is no file to reach).
    pub(crate) fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "flush range out of bounds",
            ));
        }
        // SAFETY: the range lies inside this live view (checked above).
        let ok = unsafe { FlushViewOfFile(self.ptr.add(offset).cast(), len) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Maps all of the mapping `handle`, taking ownership of the handle
    /// (closed here on failure, else when the view is dropped).
    fn map_all(handle: HANDLE, access: ViewAccess) -> io::Result<View> {
        // SAFETY: `handle` is a valid mapping handle owned by the caller;
        // length 0 maps the whole mapping.
        let addr = unsafe { MapViewOfFile(handle, access.flags(), 0, 0, 0) };
        if addr.Value.is_null() {
            let err = io::Error::last_os_error();
            // SAFETY: the handle is valid and closed exactly once.
            unsafe { CloseHandle(handle) };
            return Err(err);
        }
        // SAFETY: the struct is plain data; all-zero is a valid value.
        let mut info: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: `addr` is the base of a live view; `info` is writable
        // and of the size passed.
        let got = unsafe {
            VirtualQuery(
                addr.Value,
                &mut info,
                std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
            )
        };
        let view = View {
            ptr: addr.Value.cast(),
            len: info.RegionSize,
            handle,
        };
        if got == 0 {
            // Dropping `view` unmaps it and closes the handle.
            return Err(io::Error::last_os_error());
        }
        Ok(view)
    }
}

impl Drop for View {
    fn drop(&mut self) {
        // SAFETY: `ptr` is the base of a view mapped by `map_all` and not
        // yet unmapped, and `handle` the mapping handle it owns; nothing
        // uses either after this.
        unsafe {
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS {
                Value: self.ptr.cast(),
            });
            CloseHandle(self.handle);
        }
    }
}

/// Creates the page-file-backed mapping `name` of `len` bytes (zeroed) and
/// maps it read-write. `Ok(None)` if an object of that name exists.
pub(crate) fn create_named_mapping(name: &str, len: u64) -> io::Result<Option<View>> {
    let wname = wide(OsStr::new(name));
    // SAFETY: `wname` is a NUL-terminated UTF-16 string that outlives the
    // call; INVALID_HANDLE_VALUE asks for page-file backing; a null
    // security-attributes pointer gives the creator's default (owner,
    // SYSTEM and administrators).
    let handle = unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            std::ptr::null(),
            PAGE_READWRITE,
            (len >> 32) as u32,
            len as u32,
            wname.as_ptr(),
        )
    };
    if handle.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: reads the calling thread's last-error value, set by the call
    // above even on success.
    if unsafe { GetLastError() } == ERROR_ALREADY_EXISTS {
        // SAFETY: a valid handle owned here, closed exactly once.
        unsafe { CloseHandle(handle) };
        return Ok(None);
    }
    View::map_all(handle, ViewAccess::Write).map(Some)
}

/// Opens the page-file-backed mapping `name` and maps all of it.
/// `ErrorKind::NotFound` if there is none.
pub(crate) fn open_named_mapping(name: &str, access: ViewAccess) -> io::Result<View> {
    let wname = wide(OsStr::new(name));
    // SAFETY: `wname` is a NUL-terminated UTF-16 string that outlives the
    // call.
    let handle = unsafe { OpenFileMappingW(access.flags(), 0, wname.as_ptr()) };
    if handle.is_null() {
        return Err(io::Error::last_os_error());
    }
    View::map_all(handle, access)
}

/// Whether a named mapping `name` exists (some process holds it).
pub(crate) fn named_mapping_exists(name: &str) -> bool {
    let wname = wide(OsStr::new(name));
    // SAFETY: as in `open_named_mapping`.
    let handle = unsafe { OpenFileMappingW(FILE_MAP_READ, 0, wname.as_ptr()) };
    if handle.is_null() {
        // Access denied still means something holds the name.
        return io::Error::last_os_error().kind() != io::ErrorKind::NotFound;
    }
    // SAFETY: a valid handle owned here, closed exactly once.
    unsafe { CloseHandle(handle) };
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::map::Map;
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    const ROLE: &str = "MEMLANE_SYS_TEST_FILE";

    /// The cached wait-word names are the names the uncached code built:
    /// the value in lower-case hex, and a name resolved again once the
    /// windows change.
    #[test]
    fn wait_word_names_are_built_from_the_cache_as_before() {
        for v in [0u32, 1, 0xf, 0x10, 0xabc, 0xdead_beef, u32::MAX] {
            let mut b = Vec::new();
            push_hex(&mut b, v);
            assert_eq!(String::from_utf16(&b).unwrap(), format!("{v:x}"));
        }
        let word = AtomicU32::new(0);
        let name = |v| {
            with_semaphore_name(&word, v, |p| {
                // SAFETY: `p` is the NUL-terminated name the closure is lent.
                let len = (0..).take_while(|&i| unsafe { *p.add(i) } != 0).count();
                // SAFETY: as above, `len` units before the NUL.
                String::from_utf16(unsafe { std::slice::from_raw_parts(p, len) }).unwrap()
            })
        };
        let addr = &word as *const AtomicU32 as usize;
        let want = |v: u32| format!("Local\\memlane-wait.p{}.{addr:x}.{v:x}", std::process::id());
        assert_eq!(name(7), want(7));
        assert_eq!(name(0x1234), want(0x1234), "from the cache");
        // A window registered over the word's address: resolved anew.
        let guard = MapGuard::register_named(addr as *mut u8, 4, "test-window");
        assert_eq!(name(5), "Local\\memlane-wait.ntest-window.0.5");
        drop(guard);
        assert_eq!(name(5), want(5), "resolved again once the window is gone");
    }

    /// Maps `path` and returns the mapping with its two words: `[0]` the
    /// word slept on, `[1]` "the child is about to sleep".
    fn map(path: &Path) -> (File, Map) {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .share_mode(SHARE_ALL)
            .open(path)
            .unwrap();
        let map = Map::shared(&file, 0, 4096, true).unwrap();
        (file, map)
    }

    fn word(map: &Map, i: usize) -> &AtomicU32 {
        // SAFETY: the mapping is 4096 bytes, page-aligned; words 0 and 1
        // are in bounds, aligned, and only accessed atomically.
        unsafe { &*map.ptr().cast::<AtomicU32>().add(i) }
    }

    /// The child half of the test below: sleeps with no time-out on word 0
    /// while it holds 0, so only a wake-up from the other process ends it.
    #[test]
    fn child_sleeps_until_woken() {
        let Some(path) = std::env::var_os(ROLE) else {
            return;
        };
        let (_file, map) = map(Path::new(&path));
        word(&map, 1).store(1, Ordering::SeqCst);
        while word(&map, 0).load(Ordering::SeqCst) == 0 {
            futex_wait(word(&map, 0), 0, None);
        }
    }

    /// A sleeper in another process, with no time-out to fall back on, is
    /// woken through the named semaphore. If the wake-up were lost the
    /// child would sleep for ever and the watchdog would fail the test.
    #[test]
    fn a_sleeper_in_another_process_is_woken() {
        if std::env::var_os(ROLE).is_some() {
            return;
        }
        let words = crate::test_support::SharedWords::new("sys-wake");
        let (_file, map) = map(&words.path);
        let mut child = words.spawn_child("sys::windows::tests::child_sleeps_until_woken", ROLE);
        let start = Instant::now();
        while word(&map, 1).load(Ordering::SeqCst) == 0 {
            assert!(start.elapsed() < Duration::from_secs(60), "child never ran");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Let it get into its wait (a wake-up before that is not lost
        // either: it re-checks the word after opening the semaphore).
        std::thread::sleep(Duration::from_millis(200));
        word(&map, 0).store(1, Ordering::SeqCst);
        futex_wake_all(word(&map, 0), 0, 1);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("the sleeper was never woken");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(status.success());
        drop(map);
    }
}

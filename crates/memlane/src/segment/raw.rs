//! Creating and opening memlane files of any kind: the common ground of
//! segments, events and channels.
//!
//! Creation builds the file under a temporary name (`O_CREAT|O_EXCL|
//! O_NOFOLLOW`, exact mode), sizes and reserves it, writes the header and
//! the kind's initial state through a mapping, publishes the ready word
//! (Release) and only then renames it into place. Opening never follows a
//! symlink, takes the length from `fstat`, and validates the header from a
//! copy of its bytes.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use super::header::{self, HeaderError, HeaderInfo, Kind, HEADER_REGION, HEADER_SIZE};
use super::map::Map;
use super::{Access, Disposition};
use crate::error::{CreateError, OpenError, RemoveError};
use crate::name;
use crate::sys::{self, Dir, OpenFileError};

/// The largest path a link entry can hold.
const MAX_LINK_PATH: usize = 4000;

/// How long `open` (and `create` on its own new file) waits for an
/// exclusive holder of a file to let go before giving up with
/// [`OpenError::Busy`]. memlane holds that lock only for moments (`gc`
/// removing a name, a re-creation replacing a stale file), but anyone who
/// can open a file can hold it for ever, so no wait is unbounded.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Takes a shared lock on `file`, retrying without blocking (pauses grow
/// from 0.5 to 20 ms) for at most `bound`: whether it was taken.
fn lock_shared_within(file: &File, bound: Duration) -> io::Result<bool> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(500);
    loop {
        match sys::try_lock_shared(file) {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let left = bound.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(false);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// How an opener takes the shared holder lock of a file.
#[derive(Debug, Clone, Copy)]
enum HolderLock {
    /// Retry without blocking for at most this long, then fail with
    /// [`OpenError::Busy`].
    Within(Duration),
    /// Try once; an exclusive holder only marks the file busy (`list`,
    /// which reads the header and maps nothing).
    Probe,
}

/// A file opened and validated by [`open_file`].
struct Opened {
    file: File,
    info: HeaderInfo,
    path: PathBuf,
    len: u64,
    /// `Some(holder)` when another process held an exclusive lock on it
    /// (only with [`HolderLock::Probe`]).
    busy: Option<Option<u32>>,
}

/// What to do when something exists at the name being created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnExists {
    /// Fail with `AlreadyExists`.
    Fail,
    /// Replace it if it is stale (a memlane file of this user that no
    /// live process holds); fail otherwise.
    ReplaceStale,
    /// Replace it (create-always).
    Replace,
}

impl OnExists {
    pub(crate) fn from_stale(replace_stale: bool) -> OnExists {
        if replace_stale {
            OnExists::ReplaceStale
        } else {
            OnExists::Fail
        }
    }
}

/// What to create.
pub(crate) struct CreateSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) dir: Option<&'a Path>,
    pub(crate) file: Option<(&'a Path, Disposition)>,
    pub(crate) mode: u32,
    pub(crate) kind: Kind,
    pub(crate) data_len: u64,
    /// Whether a stale segment at the name is replaced (see `OnExists`).
    pub(crate) replace_stale: bool,
    /// On Windows: a page-file-backed named mapping instead of a file in
    /// the directory (ignored elsewhere).
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) page_file: bool,
}

/// A mapped memlane file.
pub(crate) struct RawSegment {
    map: Map,
    /// Offset of the data region inside `map`.
    data_in_map: usize,
    /// Length of the data region visible through `map`.
    data_len: usize,
    /// The open file holding the shared lock (`None` for a page-file
    /// mapping on Windows, which its views alone keep alive).
    _file: Option<File>,
    name: String,
    /// The directory the name lives in.
    name_dir: PathBuf,
    path: PathBuf,
    info: HeaderInfo,
    writable: bool,
}

impl RawSegment {
    /// Pointer to the start of the visible data region.
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        // SAFETY: `data_in_map <= map.len()` by construction (create maps
        // the whole file; open maps from the data region's start).
        unsafe { self.map.ptr().add(self.data_in_map) }
    }
    pub(crate) fn data_len(&self) -> usize {
        self.data_len
    }
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn name_dir(&self) -> &Path {
        &self.name_dir
    }
    /// The open file (`None` for a page-file mapping on Windows): a
    /// channel's endpoints lock bytes of it (see `channel/liveness.rs`).
    pub(crate) fn file(&self) -> Option<&File> {
        self._file.as_ref()
    }
    pub(crate) fn info(&self) -> &HeaderInfo {
        &self.info
    }
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }
    /// Whether another process truncated the file under this mapping.
    #[inline]
    pub(crate) fn truncated(&self) -> bool {
        self.map.truncated()
    }
    pub(crate) fn flush_data_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.map.flush_range(self.data_in_map + offset, len)
    }
}

/// Removes a half-built temporary file unless disarmed.
struct TempGuard<'a> {
    dir: &'a Dir,
    name: Option<String>,
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(n) = self.name.take() {
            let _ = self.dir.unlink(OsStr::new(&n));
        }
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn create_io(op: &'static str, path: &Path, e: io::Error, size: u64) -> CreateError {
    match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            CreateError::PermissionDenied {
                path: path.to_path_buf(),
                source: e,
            }
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => CreateError::NoSpace {
            path: path.to_path_buf(),
            size,
        },
        _ => CreateError::Io {
            op,
            path: path.to_path_buf(),
            source: e,
        },
    }
}

fn open_dir_for_create(dir: &Path) -> Result<Dir, CreateError> {
    Dir::open(dir).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            CreateError::NoDirectory {
                dir: dir.to_path_buf(),
            }
        } else {
            create_io("opening directory", dir, e, 0)
        }
    })
}

/// Builds a file of `kind` in `dir` under a temporary name, runs `init` on
/// its data region, publishes it and renames it to `final_name`.
#[allow(clippy::too_many_arguments)]
fn build_in<F>(
    dir: &Dir,
    dir_path: &Path,
    final_name: &str,
    display_name: &str,
    on_exists: OnExists,
    mode: u32,
    kind: Kind,
    data_len: u64,
    init: F,
) -> Result<(File, Map, PathBuf, u64), CreateError>
where
    F: FnOnce(*mut u8, usize),
{
    let final_path = dir_path.join(final_name);
    // A memlane file of ours at the name that no live process holds is
    // stale (its users exited or died): it is replaced, under an exclusive
    // lock so no opener can take it meanwhile.
    let mut stale_file: Option<File> = None;
    if on_exists != OnExists::Replace {
        if let Ok(existing) = dir.open_existing(OsStr::new(final_name), false) {
            if on_exists == OnExists::ReplaceStale && stale(&existing).is_some() {
                stale_file = Some(existing);
            } else {
                return Err(CreateError::AlreadyExists {
                    name: display_name.to_string(),
                    what: "a segment",
                    path: final_path,
                });
            }
        }
    }
    let replace = on_exists == OnExists::Replace || stale_file.is_some();
    let total = HEADER_REGION + data_len;
    let total_usize = usize::try_from(total).map_err(|_| CreateError::InvalidConfig {
        reason: format!("{total} bytes do not fit in this machine's address space"),
    })?;
    let tmp = name::temp_name(display_name);
    let tmp_path = dir_path.join(&tmp);
    let file = dir
        .create_exclusive(OsStr::new(&tmp), mode)
        .map_err(|e| create_io("creating", &tmp_path, e, total))?;
    let mut guard = TempGuard {
        dir,
        name: Some(tmp.clone()),
    };
    // Every process that has a segment mapped holds a shared lock on its
    // file: `gc` and re-creation over a stale name take it exclusively.
    // Only a process of this user that opened the new file by its
    // temporary name could be holding it: wait for it a bounded time.
    match lock_shared_within(&file, LOCK_WAIT) {
        Ok(true) => {}
        Ok(false) => {
            let e = io::Error::new(
                io::ErrorKind::WouldBlock,
                "another process holds an exclusive lock on the new file",
            );
            return Err(create_io("locking", &tmp_path, e, total));
        }
        Err(e) => return Err(create_io("locking", &tmp_path, e, total)),
    }
    sys::set_len_reserved(&file, total).map_err(|e| create_io("sizing", &tmp_path, e, total))?;
    let map = Map::shared(&file, 0, total_usize, true)
        .map_err(|e| create_io("mapping", &tmp_path, e, total))?;
    // SAFETY: the mapping is `total` bytes, writable, and the file was
    // created by us under a fresh exclusive name that no other process has
    // opened as a segment.
    let created_ns = unsafe { write_initial(&map, kind, data_len, init) };
    crate::fault::point("create_before_rename");
    dir.rename(OsStr::new(&tmp), OsStr::new(final_name), replace)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                CreateError::AlreadyExists {
                    name: display_name.to_string(),
                    what: "a segment",
                    path: final_path.clone(),
                }
            } else {
                create_io("renaming into place", &final_path, e, total)
            }
        })?;
    guard.name = None;
    Ok((file, map, final_path, created_ns))
}

/// Writes the header and the kind's initial state into a new segment's
/// mapping and publishes its ready word last; returns the creation time.
///
/// # Safety
/// `map` must be writable, `HEADER_REGION + data_len` bytes long at least,
/// and not yet visible to any other process as a ready segment.
unsafe fn write_initial<F>(map: &Map, kind: Kind, data_len: u64, init: F) -> u64
where
    F: FnOnce(*mut u8, usize),
{
    let created_ns = now_ns();
    let hdr = header::encode(kind, data_len, sys::current_pid(), created_ns);
    // SAFETY: the mapping holds at least HEADER_REGION > HEADER_SIZE bytes
    // and is writable (the caller's contract); nobody else reads it yet.
    unsafe { std::ptr::copy_nonoverlapping(hdr.as_ptr(), map.ptr(), HEADER_SIZE) };
    // SAFETY: the data region starts at HEADER_REGION inside the mapping and
    // is `data_len` bytes long (the caller's contract).
    init(
        unsafe { map.ptr().add(HEADER_REGION as usize) },
        data_len as usize,
    );
    // SAFETY: offset 16 is 4-byte aligned inside the page-aligned mapping;
    // the ready word is only ever accessed atomically.
    let ready = unsafe { &*map.ptr().add(16).cast::<AtomicU32>() };
    crate::fault::point("create_before_ready");
    header::publish_ready(ready);
    created_ns
}

/// If an existing file is a memlane file of this user that no live
/// process holds, returns its kind (`None` when its header does not decode,
/// e.g. a creator died before the ready word); the file then stays locked
/// exclusively while it is open.
pub(crate) fn stale(file: &File) -> Option<Option<Kind>> {
    let st = sys::file_info(file).ok()?;
    if !st.is_file || st.uid != sys::current_uid() {
        return None;
    }
    let mut buf = [0u8; HEADER_SIZE];
    let n = read_up_to(file, &mut buf, 0).ok()?;
    let kind = match header::decode(&buf[..n], st.len) {
        Ok(info) => Some(info.kind),
        Err(HeaderError::NotReady) | Err(HeaderError::SizeMismatch { .. }) => None,
        Err(_) if n >= 8 && buf[..8] == header::MAGIC => None,
        Err(_) => return None,
    };
    sys::try_lock_exclusive(file)
        .unwrap_or(false)
        .then_some(kind)
}

/// Creates a segment of `spec.kind`; `init` fills the data region before
/// it is published.
pub(crate) fn create<F>(spec: &CreateSpec<'_>, init: F) -> Result<RawSegment, CreateError>
where
    F: FnOnce(*mut u8, usize),
{
    name::validate_name(spec.name)?;
    let dir_path = sys::segment_dir(spec.dir);
    let dir = open_dir_for_create(&dir_path)?;
    let entry = name::file_name(spec.name);
    #[cfg(windows)]
    {
        if spec.page_file {
            if spec.file.is_some() {
                return Err(CreateError::InvalidConfig {
                    reason: "a page-file segment has no backing file: choose one or the other"
                        .into(),
                });
            }
            return create_page_file(spec, &dir, &dir_path, &entry, init);
        }
        // A page-file segment of the same name would be shadowed.
        let object = sys::mapping_name(spec.name);
        if sys::named_mapping_exists(&object) {
            return Err(CreateError::AlreadyExists {
                name: spec.name.to_string(),
                what: "a page-file segment",
                path: PathBuf::from(object),
            });
        }
    }
    match spec.file {
        None => {
            let (file, map, path, created) = build_in(
                &dir,
                &dir_path,
                &entry,
                spec.name,
                OnExists::from_stale(spec.replace_stale),
                spec.mode,
                spec.kind,
                spec.data_len,
                init,
            )?;
            Ok(finish_created(Some(file), map, path, spec, created))
        }
        Some((file_path, disposition)) => {
            create_file_backed(spec, &dir, &dir_path, file_path, disposition, init)
        }
    }
}

/// Creates a page-file-backed named mapping (Windows): no file, no
/// directory entry; it lives while any process has a view of it.
#[cfg(windows)]
fn create_page_file<F>(
    spec: &CreateSpec<'_>,
    dir: &Dir,
    dir_path: &Path,
    entry: &str,
    init: F,
) -> Result<RawSegment, CreateError>
where
    F: FnOnce(*mut u8, usize),
{
    // A segment file of the same name would shadow it when opened by name.
    if dir.identity(OsStr::new(entry)).is_some() {
        return Err(CreateError::AlreadyExists {
            name: spec.name.to_string(),
            what: "a segment",
            path: dir_path.join(entry),
        });
    }
    let total = HEADER_REGION + spec.data_len;
    usize::try_from(total).map_err(|_| CreateError::InvalidConfig {
        reason: format!("{total} bytes do not fit in this machine's address space"),
    })?;
    let object = sys::mapping_name(spec.name);
    let path = PathBuf::from(&object);
    let map = Map::create_named(&object, total)
        .map_err(|e| create_io("creating", &path, e, total))?
        .ok_or_else(|| CreateError::AlreadyExists {
            name: spec.name.to_string(),
            what: "a page-file segment",
            path: path.clone(),
        })?;
    // SAFETY: the new mapping is `total` bytes (at least), mapped
    // read-write, and not ready yet, so no opener uses its contents.
    let created_ns = unsafe { write_initial(&map, spec.kind, spec.data_len, init) };
    Ok(finish_created(None, map, path, spec, created_ns))
}

/// Opens the page-file-backed named mapping `name` (Windows).
#[cfg(windows)]
fn open_page_file(
    name: &str,
    dir_path: &Path,
    access: Access,
    expected: Option<Kind>,
    view: Option<(u64, Option<u64>)>,
) -> Result<RawSegment, OpenError> {
    let object = sys::mapping_name(name);
    let path = PathBuf::from(&object);
    let view_access = match access {
        Access::ReadOnly => sys::ViewAccess::Read,
        Access::ReadWrite => sys::ViewAccess::Write,
        Access::CopyOnWrite => sys::ViewAccess::Copy,
    };
    let map =
        Map::open_named(&object, view_access).map_err(|e| open_err_io("opening", &path, e))?;
    let region = map.len();
    let mut buf = [0u8; HEADER_SIZE];
    if region < HEADER_REGION as usize {
        return Err(OpenError::Corrupt {
            path,
            reason: format!("the mapping is only {region} bytes"),
        });
    }
    // SAFETY: the view is `region >= HEADER_REGION > HEADER_SIZE` bytes;
    // a copy of the bytes is validated, never the live memory.
    unsafe { std::ptr::copy_nonoverlapping(map.ptr(), buf.as_mut_ptr(), HEADER_SIZE) };
    let info = header::decode_in_region(&buf, region as u64).map_err(|e| header_error(&path, e))?;
    let wanted = expected.unwrap_or(info.kind);
    if info.kind == Kind::Link || info.kind != wanted {
        return Err(OpenError::WrongKind {
            path,
            expected: wanted.as_str(),
            found: info.kind.as_str(),
        });
    }
    let (off, len) = view_range(view, info.data_len)?;
    // `decode_in_region` checked HEADER_REGION + data_len <= region, so
    // both fit in usize.
    Ok(RawSegment {
        map,
        data_in_map: (HEADER_REGION + off) as usize,
        data_len: len as usize,
        _file: None,
        name: name.to_string(),
        name_dir: dir_path.to_path_buf(),
        path,
        info,
        writable: access != Access::ReadOnly,
    })
}

/// The `(offset, length)` of a view of a data region of `data_len` bytes
/// (the whole region when `view` is `None`), checked to lie inside it.
fn view_range(view: Option<(u64, Option<u64>)>, data_len: u64) -> Result<(u64, u64), OpenError> {
    match view {
        None => Ok((0, data_len)),
        Some((off, len)) => {
            let len = len.unwrap_or(data_len.saturating_sub(off));
            if off.checked_add(len).is_none_or(|end| end > data_len) {
                return Err(OpenError::ViewOutOfBounds {
                    offset: off,
                    len,
                    size: data_len,
                });
            }
            Ok((off, len))
        }
    }
}

/// The handle of a segment this process just created (`file` is `None`
/// for a page-file mapping, which its view keeps alive).
fn finish_created(
    file: Option<File>,
    map: Map,
    path: PathBuf,
    spec: &CreateSpec<'_>,
    created_ns: u64,
) -> RawSegment {
    RawSegment {
        data_in_map: HEADER_REGION as usize,
        data_len: spec.data_len as usize,
        map,
        _file: file,
        name: spec.name.to_string(),
        name_dir: sys::segment_dir(spec.dir),
        path,
        info: HeaderInfo {
            kind: spec.kind,
            data_len: spec.data_len,
            creator_pid: sys::current_pid(),
            created_ns,
        },
        writable: true,
    }
}

fn split_path(path: &Path) -> Result<(PathBuf, String), CreateError> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CreateError::InvalidConfig {
            reason: format!("{} does not end in a UTF-8 file name", path.display()),
        })?
        .to_string();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = parent.canonicalize().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            CreateError::NoDirectory {
                dir: parent.clone(),
            }
        } else {
            create_io("resolving", &parent, e, 0)
        }
    })?;
    Ok((parent, file_name))
}

fn create_file_backed<F>(
    spec: &CreateSpec<'_>,
    dir: &Dir,
    dir_path: &Path,
    file_path: &Path,
    disposition: Disposition,
    init: F,
) -> Result<RawSegment, CreateError>
where
    F: FnOnce(*mut u8, usize),
{
    let (parent, file_name) = split_path(file_path)?;
    let abs = parent.join(&file_name);
    let abs_bytes = sys::name_bytes(abs.as_os_str()).to_vec();
    if abs_bytes.len() > MAX_LINK_PATH {
        return Err(CreateError::InvalidConfig {
            reason: format!(
                "the file path is {} bytes long; at most {MAX_LINK_PATH} are supported",
                abs_bytes.len()
            ),
        });
    }
    let entry = name::file_name(spec.name);
    if dir.open_existing(OsStr::new(&entry), false).is_ok() {
        return Err(CreateError::AlreadyExists {
            name: spec.name.to_string(),
            what: "a segment",
            path: dir_path.join(&entry),
        });
    }
    let parent_dir = open_dir_for_create(&parent)?;
    let (raw, created_file) = match disposition {
        Disposition::CreateNew | Disposition::CreateAlways => {
            let replace = disposition == Disposition::CreateAlways;
            let (file, map, path, created) = build_in(
                &parent_dir,
                &parent,
                &file_name,
                spec.name,
                if replace {
                    OnExists::Replace
                } else {
                    OnExists::Fail
                },
                spec.mode,
                spec.kind,
                spec.data_len,
                init,
            )
            .map_err(|e| match e {
                CreateError::AlreadyExists { name, path, .. } => CreateError::AlreadyExists {
                    name,
                    what: "a file",
                    path,
                },
                other => other,
            })?;
            (finish_created(Some(file), map, path, spec, created), true)
        }
        Disposition::OpenExisting => {
            let raw = open_in_dir(
                &parent_dir,
                &parent,
                &file_name,
                spec.name,
                Access::ReadWrite,
                Some(spec.kind),
                "segment",
            )
            .map_err(|e| CreateError::Open(Box::new(e)))?;
            if spec.data_len != 0 && raw.info.data_len != spec.data_len {
                return Err(CreateError::Open(Box::new(OpenError::SizeMismatch {
                    path: abs.clone(),
                    header: HEADER_REGION + spec.data_len,
                    file: HEADER_REGION + raw.info.data_len,
                })));
            }
            (raw, false)
        }
    };
    // Register the name: a small link entry holding the absolute path.
    let link = build_in(
        dir,
        dir_path,
        &entry,
        spec.name,
        OnExists::from_stale(spec.replace_stale),
        spec.mode,
        Kind::Link,
        HEADER_REGION,
        |data, len| {
            // SAFETY: the data region is HEADER_REGION (4096) bytes and the
            // path is at most MAX_LINK_PATH (4000) bytes plus a 4-byte length.
            unsafe {
                debug_assert!(4 + abs_bytes.len() <= len);
                std::ptr::copy_nonoverlapping(
                    (abs_bytes.len() as u32).to_ne_bytes().as_ptr(),
                    data,
                    4,
                );
                std::ptr::copy_nonoverlapping(abs_bytes.as_ptr(), data.add(4), abs_bytes.len());
            }
        },
    );
    if let Err(e) = link {
        if created_file {
            let _ = parent_dir.unlink(OsStr::new(&file_name));
        }
        return Err(e);
    }
    Ok(RawSegment {
        name: spec.name.to_string(),
        name_dir: dir_path.to_path_buf(),
        ..raw
    })
}

fn open_err_io(op: &'static str, path: &Path, e: io::Error) -> OpenError {
    match e.kind() {
        io::ErrorKind::PermissionDenied => OpenError::PermissionDenied {
            path: path.to_path_buf(),
            source: e,
        },
        _ => OpenError::Io {
            op,
            path: path.to_path_buf(),
            source: e,
        },
    }
}

fn header_error(path: &Path, e: HeaderError) -> OpenError {
    let path = path.to_path_buf();
    match e {
        HeaderError::TooShort(n) => OpenError::NotMemlane {
            path,
            reason: format!("only {n} bytes, shorter than a header"),
        },
        HeaderError::BadMagic => OpenError::NotMemlane {
            path,
            reason: "wrong magic bytes".into(),
        },
        HeaderError::Version(found) => OpenError::IncompatibleVersion {
            path,
            found,
            expected: header::FORMAT_VERSION,
        },
        HeaderError::NotReady => OpenError::NotReady { path },
        HeaderError::BadKind(k) => OpenError::Corrupt {
            path,
            reason: format!("unknown kind {k}"),
        },
        HeaderError::Corrupt(reason) => OpenError::Corrupt { path, reason },
        HeaderError::SizeMismatch { header, file } => {
            OpenError::SizeMismatch { path, header, file }
        }
    }
}

/// Opens and validates one file in `dir`, taking its holder lock as
/// `lock` says.
#[allow(clippy::too_many_arguments)]
fn open_file(
    dir: &Dir,
    dir_path: &Path,
    entry: &str,
    name: &str,
    access: Access,
    what: &'static str,
    allow_foreign: bool,
    lock: HolderLock,
) -> Result<Opened, OpenError> {
    // A file replaced at the name while we waited for its lock: open anew.
    let mut tries = 0;
    loop {
        match open_file_once(
            dir,
            dir_path,
            entry,
            name,
            access,
            what,
            allow_foreign,
            lock,
        ) {
            Err(OpenError::NotFound { .. })
                if tries < 3 && dir.identity(OsStr::new(entry)).is_some() =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn open_file_once(
    dir: &Dir,
    dir_path: &Path,
    entry: &str,
    name: &str,
    access: Access,
    what: &'static str,
    allow_foreign: bool,
    lock: HolderLock,
) -> Result<Opened, OpenError> {
    let path = dir_path.join(entry);
    let file = dir
        .open_existing(OsStr::new(entry), access == Access::ReadWrite)
        .map_err(|e| match e {
            OpenFileError::Symlink => OpenError::Symlink { path: path.clone() },
            OpenFileError::Io(e) if e.kind() == io::ErrorKind::NotFound => OpenError::NotFound {
                what,
                name: name.to_string(),
                dir: dir_path.to_path_buf(),
            },
            OpenFileError::Io(e) => open_err_io("opening", &path, e),
        })?;
    let st = sys::file_info(&file).map_err(|e| open_err_io("inspecting", &path, e))?;
    if !st.is_file {
        return Err(OpenError::NotAFile { path });
    }
    if st.nlink > 1 {
        return Err(OpenError::HardLinked {
            path,
            links: st.nlink,
        });
    }
    if st.uid != sys::current_uid() && !allow_foreign {
        return Err(OpenError::ForeignOwner {
            path,
            owner: st.uid,
        });
    }
    // The holder lock (see `build_in`), never waited for without bound;
    // then make sure the name still refers to this file (`gc` may have
    // removed it while we waited).
    let busy = match lock {
        HolderLock::Within(bound) => {
            if !lock_shared_within(&file, bound).map_err(|e| open_err_io("locking", &path, e))? {
                return Err(OpenError::Busy {
                    holder: sys::lock_holder(&file),
                    path,
                    waited: bound,
                });
            }
            None
        }
        HolderLock::Probe => match sys::try_lock_shared(&file) {
            Ok(true) => None,
            Ok(false) => Some(sys::lock_holder(&file)),
            Err(e) => return Err(open_err_io("locking", &path, e)),
        },
    };
    if dir.identity(OsStr::new(entry)) != Some(st.id) {
        return Err(OpenError::NotFound {
            what,
            name: name.to_string(),
            dir: dir_path.to_path_buf(),
        });
    }
    let mut buf = [0u8; HEADER_SIZE];
    let n = read_up_to(&file, &mut buf, 0)
        .map_err(|e| open_err_io("reading the header of", &path, e))?;
    let info = header::decode(&buf[..n], st.len).map_err(|e| header_error(&path, e))?;
    Ok(Opened {
        file,
        info,
        path,
        len: st.len,
        busy,
    })
}

fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match sys::read_at(file, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn open_in_dir(
    dir: &Dir,
    dir_path: &Path,
    entry: &str,
    name: &str,
    access: Access,
    expected: Option<Kind>,
    what: &'static str,
) -> Result<RawSegment, OpenError> {
    open_view_in_dir(
        dir, dir_path, entry, name, access, expected, what, None, true, false,
    )
}

#[allow(clippy::too_many_arguments)]
fn open_view_in_dir(
    dir: &Dir,
    dir_path: &Path,
    entry: &str,
    name: &str,
    access: Access,
    expected: Option<Kind>,
    what: &'static str,
    view: Option<(u64, Option<u64>)>,
    follow_link: bool,
    allow_foreign: bool,
) -> Result<RawSegment, OpenError> {
    let Opened {
        file,
        info,
        path,
        len: file_len,
        ..
    } = open_file(
        dir,
        dir_path,
        entry,
        name,
        access,
        what,
        allow_foreign,
        HolderLock::Within(LOCK_WAIT),
    )?;
    if info.kind == Kind::Link {
        if !follow_link {
            return Err(OpenError::Corrupt {
                path,
                reason: "a file link points at another file link".into(),
            });
        }
        let target = read_link(&file, &path)?;
        let (parent, file_name) =
            match (target.parent(), target.file_name().and_then(|n| n.to_str())) {
                (Some(p), Some(n)) => (p.to_path_buf(), n.to_string()),
                _ => {
                    return Err(OpenError::Corrupt {
                        path,
                        reason: "the file link holds no usable path".into(),
                    })
                }
            };
        let pdir = Dir::open(&parent).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                OpenError::NotFound {
                    what: "backing file",
                    name: file_name.clone(),
                    dir: parent.clone(),
                }
            } else {
                open_err_io("opening directory", &parent, e)
            }
        })?;
        let mut raw = open_view_in_dir(
            &pdir,
            &parent,
            &file_name,
            &file_name,
            access,
            expected,
            "backing file",
            view,
            false,
            allow_foreign,
        )?;
        raw.name = name.to_string();
        raw.name_dir = dir_path.to_path_buf();
        return Ok(raw);
    }
    if let Some(k) = expected {
        if info.kind != k {
            return Err(OpenError::WrongKind {
                path,
                expected: k.as_str(),
                found: info.kind.as_str(),
            });
        }
    }
    let (off, len) = view_range(view, info.data_len)?;
    let _ = file_len;
    let len_usize = usize::try_from(len).map_err(|_| OpenError::Corrupt {
        path: path.clone(),
        reason: format!("{len} bytes do not fit in this machine's address space"),
    })?;
    // Map header and all for whole-file opens (events, channels); only the
    // window for views.
    let (map_off, map_len, data_in_map) = if view.is_none() {
        (
            0,
            HEADER_REGION as usize + len_usize,
            HEADER_REGION as usize,
        )
    } else {
        (HEADER_REGION + off, len_usize, 0)
    };
    let map = if map_len == 0 {
        // A zero-length view: map one header page read-only so the pointer
        // is valid; nothing is ever read from it.
        Map::shared(&file, 0, HEADER_REGION as usize, false)
    } else {
        match access {
            Access::ReadOnly => Map::shared(&file, map_off, map_len, false),
            Access::ReadWrite => Map::shared(&file, map_off, map_len, true),
            Access::CopyOnWrite => Map::private(&file, map_off, map_len),
        }
    }
    .map_err(|e| open_err_io("mapping", &path, e))?;
    Ok(RawSegment {
        map,
        data_in_map: if map_len == 0 { 0 } else { data_in_map },
        data_len: len_usize,
        _file: Some(file),
        name: name.to_string(),
        name_dir: dir_path.to_path_buf(),
        path,
        info,
        writable: access != Access::ReadOnly,
    })
}

fn read_link(file: &File, path: &Path) -> Result<PathBuf, OpenError> {
    let mut buf = vec![0u8; HEADER_REGION as usize];
    let n =
        read_up_to(file, &mut buf, HEADER_REGION).map_err(|e| open_err_io("reading", path, e))?;
    let corrupt = |reason: &str| OpenError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if n < 4 {
        return Err(corrupt("the file link is truncated"));
    }
    let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 || len > MAX_LINK_PATH || 4 + len > n {
        return Err(corrupt("the file link's path length is out of range"));
    }
    let p = sys::path_from_bytes(&buf[4..4 + len]);
    if !p.is_absolute() {
        return Err(corrupt("the file link's path is not absolute"));
    }
    Ok(p)
}

/// Opens the segment `name` (following a file link to its backing file).
pub(crate) fn open(
    name: &str,
    dir: Option<&Path>,
    access: Access,
    expected: Option<Kind>,
    what: &'static str,
    view: Option<(u64, Option<u64>)>,
    allow_foreign: bool,
) -> Result<RawSegment, OpenError> {
    name::validate_name(name)?;
    let dir_path = sys::segment_dir(dir);
    let d = Dir::open(&dir_path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            OpenError::NotFound {
                what,
                name: name.to_string(),
                dir: dir_path.clone(),
            }
        } else {
            open_err_io("opening directory", &dir_path, e)
        }
    })?;
    let r = open_view_in_dir(
        &d,
        &dir_path,
        &name::file_name(name),
        name,
        access,
        expected,
        what,
        view,
        true,
        allow_foreign,
    );
    // On Windows a name with no file may be a page-file segment.
    #[cfg(windows)]
    if let Err(OpenError::NotFound { .. }) = &r {
        match open_page_file(name, &dir_path, access, expected, view) {
            Err(OpenError::NotFound { .. }) => {}
            Err(OpenError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
    }
    r
}

/// Opens a memlane file by its path (a file-backed segment).
pub(crate) fn open_path(
    path: &Path,
    access: Access,
    expected: Option<Kind>,
    view: Option<(u64, Option<u64>)>,
    allow_foreign: bool,
) -> Result<RawSegment, OpenError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| OpenError::NotAFile {
            path: path.to_path_buf(),
        })?
        .to_string();
    let d = Dir::open(&parent).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            OpenError::NotFound {
                what: "file",
                name: file_name.clone(),
                dir: parent.clone(),
            }
        } else {
            open_err_io("opening directory", &parent, e)
        }
    })?;
    open_view_in_dir(
        &d,
        &parent,
        &file_name,
        &file_name,
        access,
        expected,
        "file",
        view,
        false,
        allow_foreign,
    )
}

/// Removes the name `name` (for a file-backed segment, the name only: the
/// backing file stays).
pub(crate) fn remove(name: &str, dir: Option<&Path>) -> Result<(), RemoveError> {
    name::validate_name(name)?;
    let dir_path = sys::segment_dir(dir);
    let entry = name::file_name(name);
    let path = dir_path.join(&entry);
    let d = Dir::open(&dir_path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            RemoveError::NotFound {
                name: name.to_string(),
                dir: dir_path.clone(),
            }
        } else {
            RemoveError::Io {
                path: path.clone(),
                source: e,
            }
        }
    })?;
    d.unlink(OsStr::new(&entry)).map_err(|e| {
        #[cfg(windows)]
        if e.kind() == io::ErrorKind::NotFound {
            let object = sys::mapping_name(name);
            if sys::named_mapping_exists(&object) {
                return RemoveError::PageFile {
                    name: name.to_string(),
                    object,
                };
            }
        }
        if e.kind() == io::ErrorKind::NotFound {
            RemoveError::NotFound {
                name: name.to_string(),
                dir: dir_path.clone(),
            }
        } else {
            RemoveError::Io { path, source: e }
        }
    })
}

/// One entry found by [`list`].
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) result: Result<HeaderInfo, String>,
    pub(crate) file_len: u64,
    pub(crate) target: Option<PathBuf>,
    /// `Some(holder)` if another process held an exclusive lock on it.
    pub(crate) busy: Option<Option<u32>>,
}

/// Lists the memlane entries of a directory. Never waits for a lock: an
/// entry some process holds exclusively is listed as busy.
pub(crate) fn list(dir: Option<&Path>) -> io::Result<(PathBuf, Vec<Listed>)> {
    let dir_path = sys::segment_dir(dir);
    let d = Dir::open(&dir_path)?;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir_path)? {
        let entry = entry?;
        let fname = entry.file_name();
        let Some(fname) = fname.to_str() else {
            continue;
        };
        let Some(name) = name::from_file_name(fname) else {
            continue;
        };
        let path = dir_path.join(fname);
        let mut item = Listed {
            name: name.to_string(),
            path: path.clone(),
            result: Err(String::new()),
            file_len: 0,
            target: None,
            busy: None,
        };
        match open_file(
            &d,
            &dir_path,
            fname,
            name,
            Access::ReadOnly,
            "segment",
            true,
            HolderLock::Probe,
        ) {
            Ok(opened) => {
                item.file_len = opened.len;
                if opened.info.kind == Kind::Link {
                    item.target = read_link(&opened.file, &path).ok();
                }
                item.result = Ok(opened.info);
                item.busy = opened.busy;
            }
            Err(e) => item.result = Err(e.to_string()),
        }
        out.push(item);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((dir_path, out))
}

/// `gc` of the lock file `fname` of page-file channel `chan` (Windows):
/// removed if no mapping of that name exists and no endpoint holds a lock
/// on it. The locks are held while it is removed; an endpoint that opened
/// it just before checks, once it has its lock, that the file is still at
/// the name (`channel/liveness.rs`).
#[cfg(windows)]
fn gc_lock_file(d: &Dir, fname: &str, chan: &str, remove: &mut dyn FnMut(&File, &'static str)) {
    if name::validate_name(chan).is_err() || sys::named_mapping_exists(&sys::mapping_name(chan)) {
        return;
    }
    let Ok(file) = d.open_token(OsStr::new(fname), false) else {
        return;
    };
    let (start, len) = crate::channel::liveness::lock_range();
    if sys::try_lock_range(&file, start, len).unwrap_or(false) {
        remove(
            &file,
            "lock file of a page-file channel that no longer exists",
        );
    }
}

/// Why `gc` removed an entry.
#[derive(Debug, Clone)]
pub(crate) struct Collected {
    pub(crate) file: String,
    pub(crate) what: &'static str,
}

/// Removes what no live process holds: segments of this user whose files
/// nobody has mapped (checked with an exclusive `flock`, held while the
/// name is removed), file links whose file is gone or unheld, temporary
/// files of creators that died (older than `tmp_age_secs`), unheld
/// liveness tokens of older memlane versions, and (Windows) the lock files
/// of page-file channels that no longer exist. Never touches another
/// user's files, symlinks or anything not made by memlane.
///
/// Nothing it opens can block it: every entry, and every link's target,
/// is opened with `O_NONBLOCK | O_NOFOLLOW` and only regular files are
/// considered. A name is removed only while it still refers to the file
/// that was checked (see [`remove_if_same`]).
pub(crate) fn gc(
    dir: Option<&Path>,
    dry_run: bool,
    tmp_age_secs: u64,
) -> io::Result<(PathBuf, Vec<Collected>)> {
    let dir_path = sys::segment_dir(dir);
    let d = Dir::open(&dir_path)?;
    let uid = sys::current_uid();
    let mut out = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&dir_path)? {
        if let Some(n) = entry?.file_name().to_str() {
            names.push(n.to_string());
        }
    }
    names.sort();
    let remove = |fname: &str, file: &File, what: &'static str, out: &mut Vec<Collected>| {
        if dry_run || remove_if_same(&d, fname, file) {
            out.push(Collected {
                file: fname.to_string(),
                what,
            });
        }
    };
    // A regular file of this user at `fname`, opened without blocking.
    let ours = |fname: &str| -> Option<(File, sys::FileInfo)> {
        let file = d.open_existing(OsStr::new(fname), false).ok()?;
        let st = sys::file_info(&file).ok()?;
        (st.is_file && st.uid == uid).then_some((file, st))
    };
    let mut live_names = std::collections::HashSet::new();
    for fname in &names {
        let Some(name) = name::from_file_name(fname) else {
            continue;
        };
        let Ok(file) = d.open_existing(OsStr::new(fname), false) else {
            live_names.insert(name.to_string());
            continue;
        };
        let Some(kind) = stale(&file) else {
            live_names.insert(name.to_string());
            continue;
        };
        if kind == Some(Kind::Link) {
            let held = read_link(&file, &dir_path.join(fname))
                .ok()
                .is_some_and(|target| target_held(&target));
            if held {
                live_names.insert(name.to_string());
                continue;
            }
            remove(fname, &file, "file link whose file nobody holds", &mut out);
        } else {
            remove(fname, &file, "segment no process holds", &mut out);
        }
    }
    for fname in &names {
        if fname.starts_with(name::TEMP_PREFIX) {
            let Some((file, st)) = ours(fname) else {
                continue;
            };
            if st.age_secs >= tmp_age_secs && sys::try_lock_exclusive(&file).unwrap_or(false) {
                remove(
                    fname,
                    &file,
                    "temporary file of a creator that died",
                    &mut out,
                );
            }
        } else if fname.starts_with(name::ASIDE_PREFIX) {
            // A file moved aside by a removal or a replacement on Windows
            // whose delete failed at the time (see `sys::windows`).
            let Some((file, _)) = ours(fname) else {
                continue;
            };
            remove(
                fname,
                &file,
                "file moved aside by an earlier removal",
                &mut out,
            );
        } else if fname.starts_with(name::OLD_TOKEN_PREFIX) {
            // Liveness tokens of memlane before channel layout 4 (which
            // locked one file per slot): a process of that version still
            // holds its token locked; an unheld one is debris.
            let Some((file, _)) = ours(fname) else {
                continue;
            };
            if sys::try_lock_exclusive(&file).unwrap_or(false) {
                remove(fname, &file, "liveness token of an older memlane", &mut out);
            }
        } else if let Some(chan) = fname.strip_prefix(name::LOCK_FILE_PREFIX) {
            #[cfg(windows)]
            gc_lock_file(&d, fname, chan, &mut |file, what| {
                remove(fname, file, what, &mut out)
            });
            #[cfg(not(windows))]
            let _ = chan;
        }
    }
    Ok((dir_path, out))
}

/// Whether a live process holds the file at `target` (a file link's
/// target). It is opened like every name `gc` looks at: without following
/// a symlink and without blocking (a FIFO there cannot hang `gc`); only a
/// regular file can be held.
fn target_held(target: &Path) -> bool {
    let (Some(parent), Some(file_name)) = (target.parent(), target.file_name()) else {
        return false;
    };
    let Ok(dir) = Dir::open(parent) else {
        return false;
    };
    let Ok(file) = dir.open_existing(file_name, false) else {
        return false;
    };
    if !sys::file_info(&file).is_ok_and(|st| st.is_file) {
        return false;
    }
    sys::try_lock_exclusive(&file).map_or(true, |got| !got)
}

/// Removes the name `fname` only if it still refers to `file`, the file
/// `gc` checked: another process of this user may have removed the name
/// and created a new, live file there since. The name is first renamed to
/// a private temporary name (unique, so nobody else creates or opens it),
/// the file found there is compared with `file` (device and inode), and
/// only then unlinked. A different file is renamed back; if the name was
/// taken yet again meanwhile, it stays under the temporary name, which
/// `gc` removes once no process holds it. Whether `file` was removed.
fn remove_if_same(d: &Dir, fname: &str, file: &File) -> bool {
    #[cfg(test)]
    tests::gc_seam(fname);
    let Ok(id) = sys::file_info(file).map(|st| st.id) else {
        return false;
    };
    let private = name::temp_name("gc");
    if d.rename(OsStr::new(fname), OsStr::new(&private), false)
        .is_err()
    {
        return false;
    }
    if d.identity(OsStr::new(&private)) == Some(id) {
        return d.unlink(OsStr::new(&private)).is_ok();
    }
    let _ = d.rename(OsStr::new(&private), OsStr::new(fname), false);
    false
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    #[cfg(unix)]
    use std::path::PathBuf;

    #[cfg(unix)]
    use crate::{Access, Segment};

    /// What runs at the seam.
    type Seam = Box<dyn FnMut(&str)>;

    thread_local! {
        /// Runs in `gc` (on this thread) after an entry was found removable
        /// and before it is removed.
        static GC_SEAM: RefCell<Option<Seam>> = RefCell::new(None);
    }

    pub(super) fn gc_seam(file: &str) {
        GC_SEAM.with(|s| {
            if let Some(f) = s.borrow_mut().as_mut() {
                f(file);
            }
        });
    }

    #[cfg(unix)]
    struct TestDir(PathBuf);
    #[cfg(unix)]
    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A segment removed and re-created at its name between `gc`'s check
    /// of the old file and its removal keeps its name: `gc` removes only
    /// the file it checked.
    ///
    /// Unix only: on Windows a name whose file is open (`gc` holds it while
    /// it checks) cannot be removed and re-created at once — the removal
    /// leaves the name delete-pending until the last handle closes, so the
    /// race this covers cannot happen there.
    #[cfg(unix)]
    #[test]
    fn gc_never_removes_a_file_created_at_the_name_after_its_check() {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = TestDir(base.join(format!("memlane-unit-gc-race-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&dir.0);
        std::fs::create_dir(&dir.0).unwrap();
        drop(
            Segment::builder("race")
                .size(64)
                .dir(&dir.0)
                .create()
                .unwrap(),
        );
        // Between the check and the removal: `rm` + a new live segment.
        let fresh: std::rc::Rc<RefCell<Option<Segment>>> = Default::default();
        let (d, slot) = (dir.0.clone(), fresh.clone());
        GC_SEAM.with(|s| {
            *s.borrow_mut() = Some(Box::new(move |file: &str| {
                if file == "memlane.race" && slot.borrow().is_none() {
                    std::fs::remove_file(d.join(file)).unwrap();
                    let mut seg = Segment::builder("race").size(64).dir(&d).create().unwrap();
                    seg.write(0, b"new").unwrap();
                    *slot.borrow_mut() = Some(seg);
                }
            }))
        });
        let removed = super::gc(Some(&dir.0), false, 5).unwrap().1;
        GC_SEAM.with(|s| *s.borrow_mut() = None);
        assert!(fresh.borrow().is_some(), "the seam ran");
        assert!(
            removed.iter().all(|c| c.file != "memlane.race"),
            "gc reported removing the new file"
        );
        let seg = Segment::open_options("race")
            .dir(&dir.0)
            .access(Access::ReadOnly)
            .open()
            .expect("the new segment keeps its name");
        assert_eq!(seg.read_vec(0, 3).unwrap(), b"new");
    }
}

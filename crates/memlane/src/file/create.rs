//! Creating a memlane file: built under a temporary name, published
//! complete, renamed into place (see the module docs of `file`).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;

use super::open::{lock_shared_within, read_up_to};
use super::{finish_created, CreateSpec, OnExists, RawSegment, LOCK_WAIT};
use crate::error::{CreateError, Existing};
use crate::name;
use crate::segment::header::{self, HeaderError, Kind, HEADER_REGION, HEADER_SIZE};
use crate::segment::map::Map;
use crate::sys::{self, Dir};

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

pub(super) fn create_io(op: &'static str, path: &Path, e: io::Error, size: u64) -> CreateError {
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

pub(super) fn open_dir_for_create(dir: &Path) -> Result<Dir, CreateError> {
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

/// One file to build in a directory (see [`build_in`]).
pub(super) struct BuildSpec<'a> {
    /// The directory to build it in.
    pub(super) dir: &'a Dir,
    /// The directory's path (for errors and the handle).
    pub(super) dir_path: &'a Path,
    /// The file name it gets once complete.
    pub(super) entry: &'a str,
    /// The name errors report (and the temporary name includes).
    pub(super) name: &'a str,
    /// What to do when something is already at `entry`.
    pub(super) on_exists: OnExists,
    /// Its permission bits.
    pub(super) mode: u32,
    /// The kind written in its header.
    pub(super) kind: Kind,
    /// The length of its data region.
    pub(super) data_len: u64,
}

/// Builds the file `spec` under a temporary name, runs `init` on its data
/// region, publishes it and renames it to `spec.entry`; returns the file,
/// its mapping, its path and its creation time.
pub(super) fn build_in<F>(
    spec: &BuildSpec<'_>,
    init: F,
) -> Result<(File, Map, PathBuf, u64), CreateError>
where
    F: FnOnce(*mut u8, usize),
{
    let BuildSpec {
        dir,
        dir_path,
        entry: final_name,
        name: display_name,
        on_exists,
        mode,
        kind,
        data_len,
    } = *spec;
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
                    what: Existing::Segment,
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
                    what: Existing::Segment,
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
pub(super) unsafe fn write_initial<F>(map: &Map, kind: Kind, data_len: u64, init: F) -> u64
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
pub(super) fn stale(file: &File) -> Option<Option<Kind>> {
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
            return super::page_file::create_page_file(spec, &dir, &dir_path, &entry, init);
        }
        // A page-file segment of the same name would be shadowed.
        let object = sys::mapping_name(spec.name);
        if sys::named_mapping_exists(&object) {
            return Err(CreateError::AlreadyExists {
                name: spec.name.to_string(),
                what: Existing::PageFile,
                path: PathBuf::from(object),
            });
        }
    }
    match spec.file {
        None => {
            let build = BuildSpec {
                dir: &dir,
                dir_path: &dir_path,
                entry: &entry,
                name: spec.name,
                on_exists: OnExists::from_stale(spec.replace_stale),
                mode: spec.mode,
                kind: spec.kind,
                data_len: spec.data_len,
            };
            let (file, map, path, created) = build_in(&build, init)?;
            Ok(finish_created(Some(file), map, path, spec, created))
        }
        Some((file_path, disposition)) => {
            super::link::create_file_backed(spec, &dir, &dir_path, file_path, disposition, init)
        }
    }
}

//! Opening a memlane file: no symlink followed, the length from `fstat`,
//! the header validated from a copy of its bytes, the holder lock taken
//! within a bound.

#![deny(unsafe_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::link::read_link;
use super::{view_range, OpenSpec, PathSpec, RawSegment, LOCK_WAIT};
use crate::error::{Missing, OpenError};
use crate::name;
use crate::segment::header::{self, HeaderError, HeaderInfo, Kind, HEADER_REGION, HEADER_SIZE};
use crate::segment::map::Map;
use crate::segment::Access;
use crate::sys::{self, Dir, OpenFileError};

/// Takes a shared lock on `file`, retrying without blocking (pauses grow
/// from 0.5 to 20 ms) for at most `bound`: whether it was taken.
pub(super) fn lock_shared_within(file: &File, bound: Duration) -> io::Result<bool> {
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
pub(super) enum HolderLock {
    /// Retry without blocking for at most this long, then fail with
    /// [`OpenError::Busy`].
    Within(Duration),
    /// Try once; an exclusive holder only marks the file busy (`list`,
    /// which reads the header and maps nothing).
    Probe,
}

/// A file opened and validated by [`open_file`].
pub(super) struct Opened {
    pub(super) file: File,
    pub(super) info: HeaderInfo,
    pub(super) path: PathBuf,
    pub(super) len: u64,
    /// `Some(holder)` when another process held an exclusive lock on it
    /// (only with [`HolderLock::Probe`]).
    pub(super) busy: Option<Option<u32>>,
}

pub(super) fn open_err_io(op: &'static str, path: &Path, e: io::Error) -> OpenError {
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

pub(super) fn header_error(path: &Path, e: HeaderError) -> OpenError {
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

/// One directory entry to open, and how.
pub(super) struct EntrySpec<'a> {
    /// The directory it is in.
    pub(super) dir: &'a Dir,
    /// The directory's path (for errors and the handle).
    pub(super) dir_path: &'a Path,
    /// Its file name in `dir`.
    pub(super) entry: &'a str,
    /// The name errors report and the handle keeps.
    pub(super) name: &'a str,
    /// How it is opened.
    pub(super) access: Access,
    /// What [`OpenError::NotFound`] says was looked for.
    pub(super) what: Missing,
    /// Whether a file another user owns is accepted.
    pub(super) allow_other_owner: bool,
}

/// Opens and validates the file `at`, taking its holder lock as `lock`
/// says.
pub(super) fn open_file(at: &EntrySpec<'_>, lock: HolderLock) -> Result<Opened, OpenError> {
    // A file replaced at the name while we waited for its lock: open anew.
    let mut tries = 0;
    loop {
        match open_file_once(at, lock) {
            Err(OpenError::NotFound { .. })
                if tries < 3 && at.dir.identity(OsStr::new(at.entry)).is_some() =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}

fn open_file_once(at: &EntrySpec<'_>, lock: HolderLock) -> Result<Opened, OpenError> {
    let EntrySpec {
        dir,
        dir_path,
        entry,
        name,
        access,
        what,
        allow_other_owner,
    } = *at;
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
    if st.uid != sys::current_uid() && !allow_other_owner {
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

pub(super) fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
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

/// Opens and maps the file `at` (the whole data region, or the window
/// `view` of it: `(offset, length)`, to the end when the length is
/// `None`), checked to be of `kind` (any kind when `None`). A file link
/// is followed to its backing file when `follow_link` says so, and
/// refused otherwise (a link to a link).
pub(super) fn open_entry(
    at: &EntrySpec<'_>,
    kind: Option<Kind>,
    view: Option<(u64, Option<u64>)>,
    follow_link: bool,
) -> Result<RawSegment, OpenError> {
    let Opened {
        file, info, path, ..
    } = open_file(at, HolderLock::Within(LOCK_WAIT))?;
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
                    what: Missing::BackingFile,
                    name: file_name.clone(),
                    dir: parent.clone(),
                }
            } else {
                open_err_io("opening directory", &parent, e)
            }
        })?;
        let backing = EntrySpec {
            dir: &pdir,
            dir_path: &parent,
            entry: &file_name,
            name: &file_name,
            what: Missing::BackingFile,
            ..*at
        };
        let mut raw = open_entry(&backing, kind, view, false)?;
        raw.name = at.name.to_string();
        raw.name_dir = at.dir_path.to_path_buf();
        return Ok(raw);
    }
    if let Some(k) = kind {
        if info.kind != k {
            return Err(OpenError::WrongKind {
                path,
                expected: k,
                found: info.kind,
            });
        }
    }
    let (off, len) = view_range(view, info.data_len)?;
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
        match at.access {
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
        name: at.name.to_string(),
        name_dir: at.dir_path.to_path_buf(),
        path,
        info,
        writable: at.access != Access::ReadOnly,
    })
}

/// Opens the memlane file named `spec.name` (following a file link to
/// its backing file; on Windows, a name with no file may be a page-file
/// mapping).
pub(crate) fn open(spec: &OpenSpec<'_>) -> Result<RawSegment, OpenError> {
    let name = spec.name;
    name::validate_name(name)?;
    let dir_path = sys::segment_dir(spec.dir);
    let d = Dir::open(&dir_path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            OpenError::NotFound {
                what: spec.what,
                name: name.to_string(),
                dir: dir_path.clone(),
            }
        } else {
            open_err_io("opening directory", &dir_path, e)
        }
    })?;
    let at = EntrySpec {
        dir: &d,
        dir_path: &dir_path,
        entry: &name::file_name(name),
        name,
        access: spec.access,
        what: spec.what,
        allow_other_owner: spec.allow_other_owner,
    };
    let r = open_entry(&at, spec.kind, spec.view, true);
    // On Windows a name with no file may be a page-file segment.
    #[cfg(windows)]
    if let Err(OpenError::NotFound { .. }) = &r {
        match super::page_file::open_page_file(spec, &dir_path) {
            Err(OpenError::NotFound { .. }) => {}
            Err(OpenError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
    }
    r
}

/// Opens the memlane file at `spec.path` (a file-backed segment's file;
/// a file link there is refused).
pub(crate) fn open_path(spec: &PathSpec<'_>) -> Result<RawSegment, OpenError> {
    let path = spec.path;
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
                what: Missing::File,
                name: file_name.clone(),
                dir: parent.clone(),
            }
        } else {
            open_err_io("opening directory", &parent, e)
        }
    })?;
    let at = EntrySpec {
        dir: &d,
        dir_path: &parent,
        entry: &file_name,
        name: &file_name,
        access: spec.access,
        what: Missing::File,
        allow_other_owner: spec.allow_other_owner,
    };
    open_entry(&at, spec.kind, spec.view, false)
}

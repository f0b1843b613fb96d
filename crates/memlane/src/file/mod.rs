//! The file layer: creating, opening, listing and removing memlane files
//! of every kind (segments, events, channels, file links). The kinds are
//! built on top of it (`segment/`, `event.rs`, `channel/`); it is built on
//! the OS layer (`sys/`), the header format (`segment/header.rs`) and
//! mappings (`segment/map.rs`).
//!
//! * [`create`] (`create.rs`): born complete. The file is built under a
//!   temporary name (`O_CREAT|O_EXCL|O_NOFOLLOW`, exact mode), sized and
//!   reserved, the header and the kind's initial state are written through
//!   a mapping, the ready word is published (Release) and only then is the
//!   file renamed into place.
//! * [`open`] / [`open_path`] (`open.rs`): never trust the file. Opening
//!   never follows a symlink, takes the length from `fstat`, and validates
//!   the header from a copy of its bytes.
//! * `link.rs`: file-backed segments, whose name is a small link file
//!   holding the path of the backing file.
//! * `page_file.rs`: page-file-backed named mappings (Windows only).
//! * `dir.rs`: whole-directory operations, [`remove`], [`list`], [`gc`].

mod create;
mod dir;
mod link;
mod open;
#[cfg(windows)]
mod page_file;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Missing, OpenError};
use crate::segment::header::{HeaderInfo, Kind, HEADER_REGION};
use crate::segment::map::Map;
use crate::segment::{Access, Disposition};
use crate::sys;

pub(crate) use create::create;
pub(crate) use dir::{gc, list, remove};
pub(crate) use open::{open, open_path};

/// How long `open` (and `create` on its own new file) waits for an
/// exclusive holder of a file to let go before giving up with
/// [`OpenError::Busy`]. memlane holds that lock only for moments (`gc`
/// removing a name, a re-creation replacing a stale file), but anyone who
/// can open a file can hold it for ever, so no wait is unbounded.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// What to do when something exists at the name being created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnExists {
    /// Fail with `AlreadyExists`.
    Fail,
    /// Replace it if it is stale (a memlane file of this user that no
    /// live process holds); fail otherwise.
    ReplaceStale,
    /// Replace it (create-always).
    Replace,
}

impl OnExists {
    fn from_stale(replace_stale: bool) -> OnExists {
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

/// What to open by name (see [`open`]).
pub(crate) struct OpenSpec<'a> {
    /// The name (checked with [`name::validate_name`](crate::name::validate_name)).
    pub(crate) name: &'a str,
    /// The directory the name is in (`None`: `$MEMLANE_DIR` or `/dev/shm`).
    pub(crate) dir: Option<&'a Path>,
    /// How it is opened and mapped.
    pub(crate) access: Access,
    /// The kind it must be (`None`: any kind; a file link is followed).
    pub(crate) kind: Option<Kind>,
    /// What [`OpenError::NotFound`] says was looked for.
    pub(crate) what: Missing,
    /// `None`: map the header and the whole data region. `Some((offset,
    /// len))`: map only that window of the data region (`len` `None`: to
    /// its end), checked to lie inside it.
    pub(crate) view: Option<(u64, Option<u64>)>,
    /// Whether a file another user owns is accepted.
    pub(crate) allow_other_owner: bool,
}

/// What to open by path (see [`open_path`]).
pub(crate) struct PathSpec<'a> {
    /// The path of the file.
    pub(crate) path: &'a Path,
    /// As in [`OpenSpec`].
    pub(crate) access: Access,
    /// As in [`OpenSpec`] (a file link is refused).
    pub(crate) kind: Option<Kind>,
    /// As in [`OpenSpec`].
    pub(crate) view: Option<(u64, Option<u64>)>,
    /// As in [`OpenSpec`].
    pub(crate) allow_other_owner: bool,
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

/// The `(offset, length)` of a view of a data region of `data_len` bytes
/// (the whole region when `view` is `None`), checked to lie inside it.
pub(super) fn view_range(
    view: Option<(u64, Option<u64>)>,
    data_len: u64,
) -> Result<(u64, u64), OpenError> {
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
pub(super) fn finish_created(
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

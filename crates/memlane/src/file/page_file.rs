//! Page-file-backed named mappings (Windows): no file and no directory
//! entry; the mapping lives while any process has a view of it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::create::{create_io, write_initial};
use super::open::{header_error, open_err_io};
use super::{finish_created, view_range, CreateSpec, OpenSpec, RawSegment};
use crate::error::{CreateError, Existing, OpenError};
use crate::segment::header::{self, Kind, HEADER_REGION, HEADER_SIZE};
use crate::segment::map::Map;
use crate::segment::Access;
use crate::sys::{self, Dir};

/// Creates a page-file-backed named mapping (Windows): no file, no
/// directory entry; it lives while any process has a view of it.
pub(super) fn create_page_file<F>(
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
            what: Existing::Segment,
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
            what: Existing::PageFile,
            path: path.clone(),
        })?;
    // SAFETY: the new mapping is `total` bytes (at least), mapped
    // read-write, and not ready yet, so no opener uses its contents.
    let created_ns = unsafe { write_initial(&map, spec.kind, spec.data_len, init) };
    Ok(finish_created(None, map, path, spec, created_ns))
}

/// Opens the page-file-backed named mapping `spec.name` (Windows), whose
/// name lives in `dir_path`.
pub(super) fn open_page_file(
    spec: &OpenSpec<'_>,
    dir_path: &Path,
) -> Result<RawSegment, OpenError> {
    let OpenSpec {
        name,
        access,
        kind: expected,
        view,
        ..
    } = *spec;
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
            expected: wanted,
            found: info.kind,
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

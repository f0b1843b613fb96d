//! File-backed segments: the backing file lives at a path of the user's
//! choosing, and the name in the segment directory is a small link file
//! (kind [`Kind::Link`]) whose data region holds the file's absolute path
//! (a native-endian `u32` length, then the path's bytes).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::create::{build_in, create_io, open_dir_for_create, BuildSpec};
use super::open::{open_entry, open_err_io, read_up_to, EntrySpec};
use super::{finish_created, CreateSpec, OnExists, RawSegment};
use crate::error::{CreateError, Existing, Missing, OpenError};
use crate::name;
use crate::segment::header::{Kind, HEADER_REGION};
use crate::segment::{Access, Disposition};
use crate::sys::{self, Dir};

/// The largest path a link entry can hold.
const MAX_LINK_PATH: usize = 4000;

pub(super) fn split_path(path: &Path) -> Result<(PathBuf, String), CreateError> {
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

pub(super) fn create_file_backed<F>(
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
            what: Existing::Segment,
            path: dir_path.join(&entry),
        });
    }
    let parent_dir = open_dir_for_create(&parent)?;
    let (raw, created_file) = match disposition {
        Disposition::CreateNew | Disposition::CreateAlways => {
            let replace = disposition == Disposition::CreateAlways;
            let build = BuildSpec {
                dir: &parent_dir,
                dir_path: &parent,
                entry: &file_name,
                name: spec.name,
                on_exists: if replace {
                    OnExists::Replace
                } else {
                    OnExists::Fail
                },
                mode: spec.mode,
                kind: spec.kind,
                data_len: spec.data_len,
            };
            let (file, map, path, created) = build_in(&build, init).map_err(|e| match e {
                CreateError::AlreadyExists { name, path, .. } => CreateError::AlreadyExists {
                    name,
                    what: Existing::File,
                    path,
                },
                other => other,
            })?;
            (finish_created(Some(file), map, path, spec, created), true)
        }
        Disposition::OpenExisting => {
            let at = EntrySpec {
                dir: &parent_dir,
                dir_path: &parent,
                entry: &file_name,
                name: spec.name,
                access: Access::ReadWrite,
                what: Missing::Named(Kind::Segment),
                allow_other_owner: false,
            };
            let raw = open_entry(&at, Some(spec.kind), None, true)
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
    let build = BuildSpec {
        dir,
        dir_path,
        entry: &entry,
        name: spec.name,
        on_exists: OnExists::from_stale(spec.replace_stale),
        mode: spec.mode,
        kind: Kind::Link,
        data_len: HEADER_REGION,
    };
    let link = build_in(&build, |data, len| {
        // SAFETY: the data region is HEADER_REGION (4096) bytes and the
        // path is at most MAX_LINK_PATH (4000) bytes plus a 4-byte length.
        unsafe {
            debug_assert!(4 + abs_bytes.len() <= len);
            std::ptr::copy_nonoverlapping((abs_bytes.len() as u32).to_ne_bytes().as_ptr(), data, 4);
            std::ptr::copy_nonoverlapping(abs_bytes.as_ptr(), data.add(4), abs_bytes.len());
        }
    });
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

pub(super) fn read_link(file: &File, path: &Path) -> Result<PathBuf, OpenError> {
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

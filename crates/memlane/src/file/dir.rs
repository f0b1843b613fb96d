//! Whole-directory operations: removing a name, listing the memlane
//! entries of a directory, and `gc`.

#![deny(unsafe_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::create::stale;
use super::link::read_link;
use super::open::{open_file, EntrySpec, HolderLock};
use crate::error::{Missing, RemoveError};
use crate::name;
use crate::segment::header::{HeaderInfo, Kind};
use crate::segment::{Access, GcReason};
use crate::sys::{self, Dir};

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
        let at = EntrySpec {
            dir: &d,
            dir_path: &dir_path,
            entry: fname,
            name,
            access: Access::ReadOnly,
            what: Missing::Named(Kind::Segment),
            allow_other_owner: true,
        };
        match open_file(&at, HolderLock::Probe) {
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
fn gc_lock_file(d: &Dir, fname: &str, chan: &str, remove: &mut dyn FnMut(&File, GcReason)) {
    if name::validate_name(chan).is_err() || sys::named_mapping_exists(&sys::mapping_name(chan)) {
        return;
    }
    let Ok(file) = d.open_token(OsStr::new(fname), false) else {
        return;
    };
    let (start, len) = crate::channel::liveness::lock_range();
    if sys::try_lock_range(&file, start, len).unwrap_or(false) {
        remove(&file, GcReason::OrphanLockFile);
    }
}

/// Why `gc` removed an entry.
#[derive(Debug, Clone)]
pub(crate) struct Collected {
    pub(crate) file: String,
    pub(crate) reason: GcReason,
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
    let remove = |fname: &str, file: &File, reason: GcReason, out: &mut Vec<Collected>| {
        if dry_run || remove_if_same(&d, fname, file) {
            out.push(Collected {
                file: fname.to_string(),
                reason,
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
            remove(fname, &file, GcReason::DeadLink, &mut out);
        } else {
            remove(fname, &file, GcReason::Stale, &mut out);
        }
    }
    for fname in &names {
        if fname.starts_with(name::TEMP_PREFIX) {
            let Some((file, st)) = ours(fname) else {
                continue;
            };
            if st.age_secs >= tmp_age_secs && sys::try_lock_exclusive(&file).unwrap_or(false) {
                remove(fname, &file, GcReason::LeftoverTemp, &mut out);
            }
        } else if fname.starts_with(name::ASIDE_PREFIX) {
            // A file moved aside by a removal or a replacement on Windows
            // whose delete failed at the time (see `sys::windows`).
            let Some((file, _)) = ours(fname) else {
                continue;
            };
            remove(fname, &file, GcReason::MovedAside, &mut out);
        } else if fname.starts_with(name::OLD_TOKEN_PREFIX) {
            // Liveness tokens of memlane before channel layout 4 (which
            // locked one file per slot): a process of that version still
            // holds its token locked; an unheld one is debris.
            let Some((file, _)) = ours(fname) else {
                continue;
            };
            if sys::try_lock_exclusive(&file).unwrap_or(false) {
                remove(fname, &file, GcReason::OldLivenessToken, &mut out);
            }
        } else if let Some(chan) = fname.strip_prefix(name::LOCK_FILE_PREFIX) {
            #[cfg(windows)]
            gc_lock_file(&d, fname, chan, &mut |file, reason| {
                remove(fname, file, reason, &mut out)
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

//! Whether the processes that can write a channel's file are trusted to
//! leave a message alone while this process reads it in place.
//!
//! A subscriber that reads in place hands out `&[u8]` into the ring, and a
//! loan `&mut [u8]`. Rust requires the bytes behind such a reference not to
//! change while it lives; only a process that can write the file can change
//! them. So the trust boundary is who can write the file:
//!
//! * **In place** when only this user can: the file is this user's, has
//!   one link and grants no write permission to group or others, and its
//!   directory is this user's or root's and either grants no write
//!   permission to group or others or is sticky (as `/dev/shm` is), so that
//!   nobody else can put another file at its name. Processes of the same
//!   user can already `ptrace` this one and write its memory directly: they
//!   are inside its trust boundary whatever memlane does.
//! * **Copied** otherwise (a file of another user, or one others may write,
//!   or anywhere the caller asked for it with `copy_messages(true)`): a
//!   subscriber copies each payload into a buffer of its own before handing
//!   it out, and a loan is a private buffer copied into the ring at commit.
//!
//! On Windows memlane does not read access control lists: a channel in the
//! per-user segment directory (the default, under the user's profile) or
//! a page-file mapping in the session's `Local\` namespace is written only
//! by this user, administrators and the system, and is read in place; a
//! channel in a directory other users may write must be opened with
//! `copy_messages(true)`.

use std::path::Path;

/// Whether a channel this process created with permission bits `mode` is
/// written only by this user.
pub(super) fn created_private(mode: u32) -> bool {
    cfg!(windows) || mode & 0o022 == 0
}

/// Whether the channel file this process opened (`file`, whose name is
/// `path`) is written only by this user: see the module docs. The file's
/// owner, type, links and permissions come from `fstat` of the open file
/// itself; the directory's from the name's parent. (Another user cannot
/// point the name at another file meanwhile: when these checks pass, only
/// this user or root can rename or unlink this user's entries of the
/// directory, and another user's hard link to the file would show as a
/// second link.) `None` (no file handle: a page-file mapping) counts as
/// not private.
#[cfg(unix)]
pub(super) fn opened_private(file: Option<&std::fs::File>, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let me = crate::sys::current_uid();
    let Some(Ok(file)) = file.map(std::fs::File::metadata) else {
        return false;
    };
    if !file.file_type().is_file()
        || file.uid() != me
        || file.nlink() != 1
        || file.mode() & 0o022 != 0
    {
        return false;
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(d) = std::fs::metadata(dir) else {
        return false;
    };
    (d.uid() == me || d.uid() == 0) && (d.mode() & 0o022 == 0 || d.mode() & 0o1000 != 0)
}

/// On Windows: see the module docs.
#[cfg(not(unix))]
pub(super) fn opened_private(_file: Option<&std::fs::File>, _path: &Path) -> bool {
    true
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// `opened_private` of the file at `p`, opened as a channel opener would.
    fn private(p: &Path) -> bool {
        let f = std::fs::File::open(p).ok();
        opened_private(f.as_ref(), p)
    }

    #[test]
    fn only_files_nobody_else_may_write_are_private() {
        assert!(created_private(0o600));
        assert!(created_private(0o640));
        assert!(!created_private(0o660));
        assert!(!created_private(0o606));

        let dir = std::env::temp_dir().join(format!("memlane-trust-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, b"x").unwrap();
        let set = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(&f, 0o600);
        assert!(private(&f));
        set(&f, 0o644);
        assert!(private(&f), "others may read, not write");
        set(&f, 0o620);
        assert!(!private(&f), "group-writable");
        set(&f, 0o602);
        assert!(!private(&f), "writable by others");
        set(&f, 0o600);
        let link = dir.join("g");
        std::fs::hard_link(&f, &link).unwrap();
        assert!(!private(&f), "a second link");
        std::fs::remove_file(&link).unwrap();
        assert!(private(&f));
        set(&dir, 0o777);
        assert!(!private(&f), "others may replace the name");
        set(&dir, 0o1777);
        assert!(private(&f), "sticky: others may not");
        set(&dir, 0o700);
        assert!(!private(&dir.join("missing")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

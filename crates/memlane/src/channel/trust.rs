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

/// Whether the channel file at `path`, just opened (`raw::open` checked
/// that the name still referred to the file it mapped), is written only by
/// this user: see the module docs. Decided from `lstat` of the name and of
/// its directory. The name cannot be pointed at another file meanwhile:
/// when these checks pass, only this user (or root) can rename or unlink
/// entries of the directory that are this user's, and another user's hard
/// link to this user's file would show as a second link.
#[cfg(unix)]
pub(super) fn opened_private(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let me = crate::sys::current_uid();
    let Ok(file) = std::fs::symlink_metadata(path) else {
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
pub(super) fn opened_private(_path: &Path) -> bool {
    true
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
        assert!(opened_private(&f));
        set(&f, 0o644);
        assert!(opened_private(&f), "others may read, not write");
        set(&f, 0o620);
        assert!(!opened_private(&f), "group-writable");
        set(&f, 0o602);
        assert!(!opened_private(&f), "writable by others");
        set(&f, 0o600);
        let link = dir.join("g");
        std::fs::hard_link(&f, &link).unwrap();
        assert!(!opened_private(&f), "a second link");
        std::fs::remove_file(&link).unwrap();
        assert!(opened_private(&f));
        set(&dir, 0o777);
        assert!(!opened_private(&f), "others may replace the name");
        set(&dir, 0o1777);
        assert!(opened_private(&f), "sticky: others may not");
        set(&dir, 0o700);
        assert!(!opened_private(&dir.join("missing")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

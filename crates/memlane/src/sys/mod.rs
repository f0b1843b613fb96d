//! The operating-system layer: the only module that talks to the OS.
//!
//! Everything above this layer (segments, events, channels) is written in
//! terms of the small API re-exported here: open a file without following
//! symlinks, size it, rename it into place, map it, and wait on / wake a
//! shared 32-bit word. One file per platform, picked by `cfg`.

use std::io;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
#[cfg(target_os = "linux")]
pub(crate) mod sigbus;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

#[cfg(not(any(target_os = "linux", windows)))]
compile_error!("memlane supports Linux and Windows for now; a macOS backend is planned");

/// Why opening an existing file failed.
#[derive(Debug)]
pub(crate) enum OpenFileError {
    /// A symlink (on Windows any reparse point: a symlink or a junction)
    /// is at the name; memlane never follows one.
    Symlink,
    /// Any other OS error.
    Io(io::Error),
}

/// What the OS says about an open file (`fstat`, or
/// `GetFileInformationByHandle` on Windows).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileInfo {
    /// Length in bytes.
    pub(crate) len: u64,
    /// Whether it is a regular file.
    pub(crate) is_file: bool,
    /// The owner; always 0 on Windows, where files carry a security
    /// descriptor instead (see `current_uid` there).
    pub(crate) uid: u32,
    /// Number of hard links.
    pub(crate) nlink: u64,
    /// The file's identity: device and inode, or volume serial number and
    /// file index on Windows.
    pub(crate) id: (u64, u64),
    /// Seconds since the last modification.
    pub(crate) age_secs: u64,
}

//! The operating-system layer: the only module that talks to the OS.
//!
//! Everything above this layer (segments, events, channels) is written in
//! terms of the small API re-exported here: open a file without following
//! symlinks, size it, rename it into place, map it, and wait on / wake a
//! shared 32-bit word. One file per platform, picked by `cfg`.

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

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

#[cfg(not(target_os = "linux"))]
compile_error!("memlane supports Linux only for now; Windows and macOS backends are planned");

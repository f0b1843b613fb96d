//! The OS layer of the harness: the only module (with the mapping in
//! `shm.rs`) that talks to the operating system directly. One file per
//! platform, picked by `cfg`, each with the same small API:
//!
//! * [`SHM_DIR`]: where a run's private directory goes first;
//! * [`private_file`]: open options for a file only this user may open;
//! * [`pin_to_cpu`]: CPU affinity for this process and its children;
//! * [`Killer`]: ends a child from the watchdog thread;
//! * [`contain_child`] (parent side) and [`die_with_parent`] (child side):
//!   a busy-polling child never outlives its parent;
//! * [`Wakeup`] and [`BLOCKING_FLOOR`]: the blocking floor's cross-process
//!   sleep and wake-up;
//! * [`shared_clock_ns`]: a clock two processes can compare (one-way
//!   latency of a wake-up measured from both ends).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

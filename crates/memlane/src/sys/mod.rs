//! The operating-system layer: the only module that talks to the OS.
//!
//! Everything above this layer (segments, events, channels) is written in
//! terms of the small API re-exported here: open a file without following
//! symlinks, size it, rename it into place, map it, and wait on / wake a
//! shared 32-bit word. One file per platform, picked by `cfg`.

use std::io;
use std::sync::OnceLock;

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

/// Whether this CPU has `PREFETCHW` (CPUID leaf 0x8000_0001, ECX bit 8:
/// every AMD x86-64, Intel since Broadwell), asked once per process: a
/// publisher hints with it that it is about to write a record's first line
/// (see `channel::ring::claim_straight`). The environment variable
/// `MEMLANE_NO_PREFETCHW` (any value) makes this say no, to measure what
/// the hint gains (see `docs/benchmarks/README.md`).
pub(crate) fn cpu_has_prefetchw() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    cpu_has(&HAS, "MEMLANE_NO_PREFETCHW", 0x8000_0001, 8)
}

/// Whether this CPU has `CLDEMOTE` (CPUID leaf 7, sub-leaf 0, ECX bit 25),
/// which moves a line from this core's private caches to the shared one
/// (see `channel::ring::demote_lines`), asked once per process. Where it
/// is missing (AMD Zen 4 and Zen 5, for instance) the instruction decodes
/// as a NOP, and a publisher skips the clock read that decides when to
/// demote. The environment variable `MEMLANE_NO_CLDEMOTE` (any value) makes
/// this say no on a CPU that has it, to measure there what a CPU without
/// it gets (see `docs/benchmarks/README.md`).
pub(crate) fn cpu_has_cldemote() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    cpu_has(&HAS, "MEMLANE_NO_CLDEMOTE", 7, 25)
}

/// Whether CPUID leaf `leaf` (sub-leaf 0) has bit `bit` of ECX set,
/// unless the environment variable `switch_off` is set; asked once, the
/// answer kept in `cache`. False off x86-64 and under Miri. CPUID is on
/// every x86-64 processor; a leaf exists when the highest leaf of its range
/// (leaf 0's EAX for basic leaves, leaf 0x8000_0000's for extended ones)
/// reaches it.
fn cpu_has(cache: &OnceLock<bool>, switch_off: &str, leaf: u32, bit: u32) -> bool {
    *cache.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        {
            use std::arch::x86_64::{__cpuid, __cpuid_count};
            std::env::var_os(switch_off).is_none()
                && __cpuid(leaf & 0x8000_0000).eax >= leaf
                && __cpuid_count(leaf, 0).ecx & (1 << bit) != 0
        }
        #[cfg(not(all(target_arch = "x86_64", not(miri))))]
        {
            let _ = (switch_off, leaf, bit);
            false
        }
    })
}

#[cfg(test)]
mod tests {
    /// The CPUID bits read for `PREFETCHW` and `CLDEMOTE` are the ones
    /// Linux reports as `3dnowprefetch` and `cldemote` (unless the
    /// measuring switches turn them off).
    #[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
    #[test]
    fn cpu_features_are_detected_as_the_kernel_reports_them() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").expect("/proc/cpuinfo");
        let flags = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .expect("a flags line");
        let expect = |flag: &str, switch: &str| {
            flags.split_whitespace().any(|f| f == flag) && std::env::var_os(switch).is_none()
        };
        assert_eq!(
            super::cpu_has_prefetchw(),
            expect("3dnowprefetch", "MEMLANE_NO_PREFETCHW"),
            "{flags}"
        );
        assert_eq!(
            super::cpu_has_cldemote(),
            expect("cldemote", "MEMLANE_NO_CLDEMOTE"),
            "{flags}"
        );
    }
}

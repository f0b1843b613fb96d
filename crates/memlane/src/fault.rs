//! Fault points for crash-injection tests.
//!
//! With the `fault-injection` feature, `MEMLANE_FAULT=<point>:<n>` makes
//! the process kill itself with SIGKILL the `n`-th time it passes
//! `<point>` (1-based), exactly as `kill -9` would: no destructor runs, no
//! lock is released but by the kernel. Without the feature every point
//! compiles to nothing.
//!
//! `MEMLANE_FAULT_STOP=<point>:<n>` (Unix) makes it stop itself with
//! SIGSTOP there instead, as a debugger or `kill -STOP` would: it holds
//! whatever it holds until SIGCONT.
//!
//! Also with the feature (Linux): `MEMLANE_FAULT_NO_MEMBARRIER=1` makes the
//! process behave as one that may not use `membarrier` (an old kernel, a
//! seccomp filter): see `sys::membarrier_register`.

/// Passes the fault point `name`.
#[inline(always)]
pub(crate) fn point(name: &str) {
    #[cfg(feature = "fault-injection")]
    imp::point(name);
    #[cfg(not(feature = "fault-injection"))]
    let _ = name;
}

#[cfg(feature = "fault-injection")]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    /// `<point>:<n>` from the variable `var`.
    fn parse(var: &str) -> Option<(String, u64)> {
        let v = std::env::var(var).ok()?;
        let (p, n) = v.rsplit_once(':')?;
        Some((p.to_string(), n.parse().ok()?))
    }

    fn kill_target() -> &'static Option<(String, u64)> {
        static T: OnceLock<Option<(String, u64)>> = OnceLock::new();
        T.get_or_init(|| parse("MEMLANE_FAULT"))
    }

    fn stop_target() -> &'static Option<(String, u64)> {
        static T: OnceLock<Option<(String, u64)>> = OnceLock::new();
        T.get_or_init(|| parse("MEMLANE_FAULT_STOP"))
    }

    pub(super) fn point(name: &str) {
        static HITS: AtomicU64 = AtomicU64::new(0);
        static STOP_HITS: AtomicU64 = AtomicU64::new(0);
        if let Some((p, n)) = kill_target() {
            if p == name && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *n {
                crate::sys::kill_self();
            }
        }
        if let Some((p, n)) = stop_target() {
            if p == name && STOP_HITS.fetch_add(1, Ordering::Relaxed) + 1 == *n {
                #[cfg(unix)]
                crate::sys::stop_self();
            }
        }
    }
}

//! Requests to stop, for the commands that must clean up before they leave
//! (`listen` leaves its channel, `bench` removes its private directory).
//!
//! Unix: SIGINT and SIGTERM set a flag (signal-hook); the command checks it
//! between waits and exits with `128 + signal` (130, 143), as a shell
//! reports a process killed by that signal.
//!
//! Windows: signal-hook installs its handler with the C runtime's
//! `signal`, whose console control handler raises SIGINT for Ctrl-C and
//! SIGBREAK for Ctrl-Break; SIGTERM is accepted but Windows never sends it
//! (only `raise` does). Either one exits with `STATUS_CONTROL_C_EXIT`
//! (0xC000013A), the status of a console process that Ctrl-C ended.
//! Closing the console window, `taskkill /F` or `TerminateProcess` end the
//! process without clean-up, like SIGKILL: `gc --reap` reclaims its slot.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};

/// The signals that request a clean stop.
#[cfg(unix)]
const SIGNALS: [i32; 2] = [SIGINT, SIGTERM];
/// The signals that request a clean stop (SIGBREAK: Ctrl-Break).
#[cfg(windows)]
const SIGNALS: [i32; 3] = [SIGINT, signal_hook::consts::SIGBREAK, SIGTERM];

/// The exit status after the stop request `sig` (Windows: always
/// `STATUS_CONTROL_C_EXIT`, as `i32`).
fn exit_status(sig: i32) -> i32 {
    if cfg!(windows) {
        // The NTSTATUS bit pattern; `exit` hands it to `ExitProcess` as a u32.
        0xC000_013A_u32 as i32
    } else {
        128 + sig
    }
}

/// A flag set by the first stop request (the signal number; 0 for none).
pub struct Interrupts(Arc<AtomicUsize>);

impl Interrupts {
    /// Installs the handlers: from now on a stop request sets the flag
    /// instead of ending the process.
    ///
    /// # Errors
    ///
    /// If a handler cannot be installed.
    pub fn install() -> anyhow::Result<Interrupts> {
        let flag = Arc::new(AtomicUsize::new(0));
        for sig in SIGNALS {
            signal_hook::flag::register_usize(sig, Arc::clone(&flag), sig as usize)
                .with_context(|| format!("installing the handler for signal {sig}"))?;
        }
        Ok(Interrupts(flag))
    }

    /// The exit status to leave with, if a stop was requested.
    pub fn caught(&self) -> Option<i32> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            sig => Some(exit_status(sig as i32)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_of_each_signal() {
        if cfg!(windows) {
            assert_eq!(exit_status(SIGINT) as u32, 0xC000_013A);
        } else {
            assert_eq!(exit_status(SIGINT), 130);
            assert_eq!(exit_status(SIGTERM), 143);
        }
    }
}

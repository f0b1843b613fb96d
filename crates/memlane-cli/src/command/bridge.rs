//! `memlane bridge`: runs `memlane-bridge`, the Zenoh bridge, which is a
//! program of its own (crate `memlane-zenoh`) so that this command builds
//! without Zenoh's ~200 crates. Found like git's and cargo's external
//! subcommands: next to this executable first, then on `PATH`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::cli::BridgeArgs;

/// The bridge program's file name.
const PROGRAM: &str = "memlane-bridge";

/// Where the bridge program is: next to this executable if it is there,
/// else its bare name (looked up on `PATH` when run).
fn program() -> PathBuf {
    let name = format!("{PROGRAM}{}", std::env::consts::EXE_SUFFIX);
    if let Some(here) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let beside = here.join(&name);
        if beside.is_file() {
            return beside;
        }
    }
    PathBuf::from(name)
}

/// Runs the bridge with `args` (and `--dir DIR` when given to `memlane`).
pub fn run(dir: Option<&Path>, args: BridgeArgs) -> anyhow::Result<()> {
    let mut argv: Vec<OsString> = Vec::new();
    if let Some(d) = dir {
        argv.push("--dir".into());
        argv.push(d.as_os_str().to_owned());
    }
    argv.extend(args.args);
    let prog = program();
    let mut cmd = Command::new(&prog);
    cmd.args(&argv);
    let missing = || {
        format!(
            "cannot run {}: `memlane bridge` needs the {PROGRAM} program, next to memlane or on PATH \
             (install it with `cargo install --path crates/memlane-zenoh`, or build it with \
             `cargo build --release -p memlane-zenoh`, which puts it beside memlane)",
            prog.display()
        )
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Replaces this process: signals (SIGINT, SIGTERM, SIGUSR1) reach the bridge.
        let e = cmd.exec();
        Err(e).with_context(missing)
    }
    #[cfg(not(unix))]
    {
        // Ctrl-C and Ctrl-Break reach the bridge too (one console): it
        // stops cleanly and prints its final counters, and this process,
        // which would otherwise end at once, waits for it and reports how
        // it ended.
        let _interrupts = crate::interrupt::Interrupts::install()?;
        let status = cmd.status().with_context(missing)?;
        if status.success() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{PROGRAM} exited with {status}"))
        }
    }
}

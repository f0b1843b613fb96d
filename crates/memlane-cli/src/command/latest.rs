//! `memlane latest NAME create|set|get|watch`: a latest-value slot from the
//! command line.

use std::io::{ErrorKind, IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use memlane::{Latest, OpenError};

use crate::cli::{
    LatestAction, LatestArgs, LatestCreateArgs, LatestGetArgs, LatestSetArgs, LatestWatchArgs,
};
use crate::command::listen::render_numbered;
use crate::command::open_latest;
use crate::interrupt::Interrupts;
use crate::output;

/// How often a watcher checks for a stop request.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Runs one action on the slot `args.name`.
pub fn run(dir: Option<&Path>, args: LatestArgs) -> anyhow::Result<()> {
    match args.action {
        LatestAction::Create(a) => create(dir, &args.name, a),
        LatestAction::Set(a) => set(dir, &args.name, a),
        LatestAction::Get(a) => get(dir, &args.name, a),
        LatestAction::Watch(a) => watch(dir, &args.name, a),
    }
}

fn builder(dir: Option<&Path>, name: &str) -> memlane::LatestBuilder {
    let b = Latest::builder(name);
    match dir {
        Some(d) => b.dir(d),
        None => b,
    }
}

fn create(dir: Option<&Path>, name: &str, a: LatestCreateArgs) -> anyhow::Result<()> {
    let max_value = usize::try_from(a.max_value).unwrap_or(usize::MAX);
    let slot = builder(dir, name)
        .max_value(max_value)
        .max_writers(a.max_writers)
        .replace_stale(a.replace_stale)
        .create()?;
    println!(
        "created latest-value slot '{}' at {} (values up to {}, {} writers)",
        output::escape(name.as_bytes()),
        output::path(slot.path()),
        output::size_exact(slot.max_value() as u64),
        slot.max_writers()
    );
    Ok(())
}

fn set(dir: Option<&Path>, name: &str, a: LatestSetArgs) -> anyhow::Result<()> {
    let value = if a.value == "-" {
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .context("reading the value from standard input")?;
        v
    } else {
        crate::command::send::arg_bytes(&a.value).into_owned()
    };
    let mut slot = match open_latest(dir, name) {
        Err(OpenError::NotFound { .. }) if a.create => {
            match builder(dir, name).replace_stale(false).create() {
                Ok(slot) => slot,
                // Another process created it meanwhile.
                Err(memlane::CreateError::AlreadyExists { .. }) => open_latest(dir, name)?,
                Err(e) => return Err(e.into()),
            }
        }
        other => other?,
    };
    let version = slot.set(&value)?;
    if std::io::stderr().is_terminal() {
        eprintln!("version {version}");
    }
    Ok(())
}

fn get(dir: Option<&Path>, name: &str, a: LatestGetArgs) -> anyhow::Result<()> {
    let mut slot = open_latest(dir, name)?;
    match slot.get()? {
        Some(v) => {
            println!("{}", render_numbered(&v, "version", v.version(), a.format));
            Ok(())
        }
        None => anyhow::bail!(
            "no value in '{}' yet: nothing was written to it (memlane latest {} set VALUE)",
            output::escape(name.as_bytes()),
            output::escape(name.as_bytes())
        ),
    }
}

fn watch(dir: Option<&Path>, name: &str, a: LatestWatchArgs) -> anyhow::Result<()> {
    let interrupts = Interrupts::install()?;
    let mut slot = open_latest(dir, name)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut printed = 0u64;
    let mut buf = Vec::with_capacity(slot.max_value());
    let mut idle_since = Instant::now();
    // The value there now first, if any.
    let mut pending = slot.version() > 0;
    if let Some(ready) = &a.ready_file {
        std::fs::write(ready, format!("{}\n", std::process::id()))
            .with_context(|| format!("creating the ready file {}", output::path(ready)))?;
    }
    while a.count.is_none_or(|n| printed < n) {
        if let Some(status) = interrupts.caught() {
            drop(slot);
            let _ = out.flush();
            std::process::exit(status);
        }
        if !pending && !slot.wait_timeout(SIGNAL_CHECK) {
            if let Some(timeout) = a.timeout {
                if idle_since.elapsed() >= timeout {
                    if std::io::stderr().is_terminal() {
                        eprintln!("no new value for {timeout:?}; {printed} printed");
                    }
                    break;
                }
            }
            continue;
        }
        pending = false;
        let Some(version) = slot.get_into(&mut buf)? else {
            continue;
        };
        idle_since = Instant::now();
        let line = render_numbered(&buf, "version", version, a.format);
        match writeln!(out, "{line}").and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(anyhow::Error::new(e).context("writing to standard output")),
        }
        printed += 1;
    }
    Ok(())
}

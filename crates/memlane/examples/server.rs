//! The server half of the classic file-mapping pair: it creates a named
//! shared-memory [`Segment`] and a "data ready" [`Event`], writes a text
//! message into the segment, flushes it, notifies the event, and keeps both
//! names alive until you press Enter (or `--linger` seconds pass). The names
//! are removed when it exits.
//!
//! Run the pair in two terminals, the server first:
//!
//! ```text
//! cargo run -p memlane --example server -- NAME "some text" [--linger SECS]
//! cargo run -p memlane --example client -- NAME [--timeout SECS]
//! ```
//!
//! `NAME` defaults to `memlane-classic`. Segments live in `$MEMLANE_DIR`, or
//! `/dev/shm` when it is not set; both processes must see the same value.
//!
//! # The layout the pair agrees on
//!
//! ```text
//! offset size  what
//!      0 1024  the text slot: UTF-8 text, NUL-padded (the text may fill all 1024 bytes)
//!   1024  ...  unused (the segment is 1,000,000 bytes)
//! ```
//!
//! The event is named `NAME.ready`. It counts notifications, so a client
//! that opens it after the server notified still sees the notification.
//!
//! If the server is killed (Ctrl-C) rather than stopped with Enter, the names
//! stay behind; remove them with `memlane rm NAME NAME.ready`.

use std::error::Error;
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use memlane::{Event, Segment};

/// The size of the segment, in bytes.
const SEGMENT_SIZE: u64 = 1_000_000;
/// The size of the text slot at offset 0, in bytes.
const SLOT_SIZE: usize = 1024;
/// The name used when none is given.
const DEFAULT_NAME: &str = "memlane-classic";
/// The text used when none is given.
const DEFAULT_TEXT: &str = "Message from the memlane server.";
/// How long the server keeps the names alive by default.
const DEFAULT_LINGER_SECS: u64 = 60;

const USAGE: &str = "usage: server [NAME] [TEXT] [--linger SECS]\n\
    \n\
    Creates the segment NAME (default memlane-classic) and the event NAME.ready,\n\
    writes TEXT into the first 1024 bytes, notifies the event, then waits for\n\
    Enter or SECS seconds (default 60) and removes both names.";

struct Args {
    name: String,
    text: String,
    linger: Duration,
}

/// The arguments, `Ok(None)` for `--help`, or what is wrong with them.
fn parse_args() -> Result<Option<Args>, String> {
    let mut positional = Vec::new();
    let mut linger = Duration::from_secs(DEFAULT_LINGER_SECS);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--linger" => {
                let value = args.next().ok_or("--linger needs a number of seconds")?;
                let secs: f64 = value
                    .parse()
                    .map_err(|_| format!("--linger {value:?}: not a number of seconds"))?;
                linger = Duration::try_from_secs_f64(secs)
                    .map_err(|_| format!("--linger {value:?}: not a valid duration"))?;
            }
            _ => positional.push(arg),
        }
    }
    if positional.len() > 2 {
        return Err(format!("too many arguments\n\n{USAGE}"));
    }
    let mut positional = positional.into_iter();
    Ok(Some(Args {
        name: positional
            .next()
            .unwrap_or_else(|| DEFAULT_NAME.to_string()),
        text: positional
            .next()
            .unwrap_or_else(|| DEFAULT_TEXT.to_string()),
        linger,
    }))
}

/// Removes the names this server created when it goes out of scope, so they
/// do not outlive the server whichever way `run` returns (or panics).
struct Cleanup {
    segment: Option<String>,
    event: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(name) = self.event.take() {
            if let Err(e) = Event::remove(&name) {
                eprintln!("server: could not remove the event '{name}': {e}");
            }
        }
        if let Some(name) = self.segment.take() {
            if let Err(e) = Segment::remove(&name) {
                eprintln!("server: could not remove the segment '{name}': {e}");
            }
        }
    }
}

/// Prints an error and the chain of errors that caused it.
fn report(context: &str, error: &dyn Error) {
    eprintln!("server: error: {context}: {error}");
    let mut source = error.source();
    while let Some(e) = source {
        eprintln!("  caused by: {e}");
        source = e.source();
    }
}

/// Waits until a line arrives on standard input or `linger` passes. An
/// empty or closed standard input just waits the full `linger`.
fn wait_for_enter_or(linger: Duration) {
    let (tx, rx) = mpsc::channel();
    let reader_tx = tx.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        // Ok(0) is end of input: send nothing and let the time-out decide.
        if let Ok(n) = std::io::stdin().lock().read_line(&mut line) {
            if n > 0 {
                let _ = reader_tx.send(());
            }
        }
    });
    // `tx` stays alive here, so the reader ending (at end of input) never
    // ends the wait early: only a line or the time-out does.
    let _ = rx.recv_timeout(linger);
    drop(tx);
}

fn run(args: &Args) -> Result<(), ExitCode> {
    let text = args.text.as_bytes();
    if text.len() > SLOT_SIZE {
        eprintln!(
            "server: error: the text is {} bytes; the slot holds at most {SLOT_SIZE}",
            text.len()
        );
        return Err(ExitCode::from(2));
    }
    if text.contains(&0) {
        eprintln!("server: error: the text contains a NUL byte, which marks its end in the slot");
        return Err(ExitCode::from(2));
    }
    let event_name = format!("{}.ready", args.name);
    let mut cleanup = Cleanup {
        segment: None,
        event: None,
    };

    let mut segment = Segment::create(&args.name, SEGMENT_SIZE).map_err(|e| {
        report(&format!("cannot create the segment '{}'", args.name), &e);
        ExitCode::FAILURE
    })?;
    cleanup.segment = Some(args.name.clone());
    let event = Event::create(&event_name).map_err(|e| {
        report(&format!("cannot create the event '{event_name}'"), &e);
        ExitCode::FAILURE
    })?;
    cleanup.event = Some(event_name.clone());

    // The slot: the text, then NUL bytes up to 1024.
    let written = segment
        .fill(0, SLOT_SIZE, 0)
        .and_then(|()| segment.write(0, text))
        .and_then(|()| segment.flush());
    if let Err(e) = written {
        report("cannot write the message", &e);
        return Err(ExitCode::FAILURE);
    }
    event.notify();

    eprintln!(
        "server: wrote {} bytes to segment '{}' ({}), notified event '{event_name}'",
        text.len(),
        args.name,
        segment.path().display()
    );
    // One line on stdout, for scripts (and the tests) to wait on.
    println!("ready {}", args.name);
    eprintln!(
        "server: press Enter to stop (or wait {} s); then both names are removed",
        args.linger.as_secs_f64()
    );
    wait_for_enter_or(args.linger);
    eprintln!("server: removing '{}' and '{event_name}'", args.name);
    drop(cleanup);
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("server: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

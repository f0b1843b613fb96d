//! The client half of the classic file-mapping pair: it opens the named
//! [`Segment`] read-only, waits for the server's "data ready" [`Event`],
//! reads the 1024-byte text slot at offset 0 and prints the text (up to the
//! first NUL byte), or `no message` if it is empty.
//!
//! Run the pair in two terminals, the server first:
//!
//! ```text
//! cargo run -p memlane --example server -- NAME "some text"
//! cargo run -p memlane --example client -- NAME [--timeout SECS]
//! ```
//!
//! `NAME` defaults to `memlane-classic`; both processes must see the same
//! `$MEMLANE_DIR` (or neither sets it, and `/dev/shm` is used). See
//! `server.rs` for the layout of the segment.
//!
//! The text goes to standard output, control characters escaped (the
//! bytes come from another process). When the segment or the event cannot
//! be opened, or no notification arrives in time, the client prints the
//! error and what caused it to standard error and exits with status 1:
//!
//! ```text
//! $ cargo run -p memlane --example client -- nobody-home
//! client: error: cannot open the segment 'nobody-home': no segment 'nobody-home' in /dev/shm (see `memlane list`)
//! ```

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use memlane::{Access, Event, Segment};

/// The size of the text slot at offset 0, in bytes.
const SLOT_SIZE: usize = 1024;
/// The name used when none is given.
const DEFAULT_NAME: &str = "memlane-classic";
/// How long to wait for the server's notification by default.
const DEFAULT_TIMEOUT_SECS: u64 = 5;

const USAGE: &str = "usage: client [NAME] [--timeout SECS]\n\
    \n\
    Opens the segment NAME (default memlane-classic) read-only, waits up to SECS\n\
    seconds (default 5) for the event NAME.ready, and prints the text in the\n\
    segment's first 1024 bytes.";

struct Args {
    name: String,
    timeout: Duration,
}

/// The arguments, `Ok(None)` for `--help`, or what is wrong with them.
fn parse_args() -> Result<Option<Args>, String> {
    let mut name = None;
    let mut timeout = Duration::from_secs(DEFAULT_TIMEOUT_SECS);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--timeout" => {
                let value = args.next().ok_or("--timeout needs a number of seconds")?;
                let secs: f64 = value
                    .parse()
                    .map_err(|_| format!("--timeout {value:?}: not a number of seconds"))?;
                timeout = Duration::try_from_secs_f64(secs)
                    .map_err(|_| format!("--timeout {value:?}: not a valid duration"))?;
            }
            _ if name.is_none() => name = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}\n\n{USAGE}")),
        }
    }
    Ok(Some(Args {
        name: name.unwrap_or_else(|| DEFAULT_NAME.to_string()),
        timeout,
    }))
}

/// Prints an error and the chain of errors that caused it.
fn report(context: &str, error: &dyn Error) {
    eprintln!("client: error: {context}: {error}");
    let mut source = error.source();
    while let Some(e) = source {
        eprintln!("  caused by: {e}");
        source = e.source();
    }
}

/// The text in a slot: the bytes before the first NUL (all of them if
/// there is none), as UTF-8 with invalid bytes replaced and control
/// characters escaped, since another process wrote them.
fn slot_text(slot: &[u8]) -> String {
    let end = slot.iter().position(|&b| b == 0).unwrap_or(slot.len());
    String::from_utf8_lossy(&slot[..end])
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Does the work; on failure the error has been reported and the exit code
/// is returned.
fn run(args: &Args) -> Result<(), ExitCode> {
    let segment = Segment::open(&args.name, Access::ReadOnly).map_err(|e| {
        report(&format!("cannot open the segment '{}'", args.name), &e);
        ExitCode::FAILURE
    })?;
    let event_name = format!("{}.ready", args.name);
    let mut event = Event::open(&event_name).map_err(|e| {
        report(&format!("cannot open the event '{event_name}'"), &e);
        ExitCode::FAILURE
    })?;
    if !event.wait_timeout(args.timeout) {
        eprintln!(
            "client: error: no notification on the event '{event_name}' within {} s \
             (is the server running, and has it written its message?)",
            args.timeout.as_secs_f64()
        );
        return Err(ExitCode::FAILURE);
    }
    let mut slot = [0u8; SLOT_SIZE];
    segment.read(0, &mut slot).map_err(|e| {
        report(&format!("cannot read the text slot of '{}'", args.name), &e);
        ExitCode::FAILURE
    })?;
    let text = slot_text(&slot);
    if text.is_empty() {
        println!("no message");
    } else {
        println!("{text}");
    }
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
            eprintln!("client: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

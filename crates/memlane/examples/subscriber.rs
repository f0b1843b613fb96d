//! The receiving half of the channel pair: it opens the [`Channel`] NAME
//! (creating it if it does not exist yet), subscribes, prints COUNT
//! messages, one per line, and exits.
//!
//! Run the pair in two terminals, the subscriber first (a subscriber gets
//! every message published after it joined, nothing from before):
//!
//! ```text
//! cargo run -p memlane --example subscriber -- NAME [COUNT] [--timeout SECS]
//! cargo run -p memlane --example publisher -- NAME hello world
//! ```
//!
//! `NAME` defaults to `memlane-chat`, `COUNT` to 10. Without `--timeout` it
//! waits as long as it takes for each message. If this process created the
//! channel, it removes the channel's name when it exits. Messages are
//! printed as UTF-8 (invalid bytes replaced) with control characters
//! escaped, since another process wrote them.

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use memlane::{Channel, OpenError};

const DEFAULT_NAME: &str = "memlane-chat";
const DEFAULT_COUNT: u64 = 10;

const USAGE: &str = "usage: subscriber [NAME] [COUNT] [--timeout SECS]\n\
    \n\
    Opens (or creates) the channel NAME (default memlane-chat), prints COUNT\n\
    messages (default 10) and exits; with --timeout, fails when a message takes\n\
    longer than SECS seconds to come.";

struct Args {
    name: String,
    count: u64,
    timeout: Option<Duration>,
}

/// The arguments, `Ok(None)` for `--help`, or what is wrong with them.
fn parse_args() -> Result<Option<Args>, String> {
    let mut positional = Vec::new();
    let mut timeout = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--timeout" => {
                let value = args.next().ok_or("--timeout needs a number of seconds")?;
                let secs: f64 = value
                    .parse()
                    .map_err(|_| format!("--timeout {value:?}: not a number of seconds"))?;
                timeout = Some(
                    Duration::try_from_secs_f64(secs)
                        .map_err(|_| format!("--timeout {value:?}: not a valid duration"))?,
                );
            }
            _ => positional.push(arg),
        }
    }
    if positional.len() > 2 {
        return Err(format!("too many arguments\n\n{USAGE}"));
    }
    let mut positional = positional.into_iter();
    let name = positional
        .next()
        .unwrap_or_else(|| DEFAULT_NAME.to_string());
    let count = match positional.next() {
        Some(c) => c
            .parse()
            .map_err(|_| format!("COUNT {c:?}: not a whole number"))?,
        None => DEFAULT_COUNT,
    };
    Ok(Some(Args {
        name,
        count,
        timeout,
    }))
}

/// Prints an error and the chain of errors that caused it.
fn report(context: &str, error: &dyn Error) {
    eprintln!("subscriber: error: {context}: {error}");
    let mut source = error.source();
    while let Some(e) = source {
        eprintln!("  caused by: {e}");
        source = e.source();
    }
}

/// Reports a failed receive; returns the exit code.
fn report_recv(args: &Args, error: &dyn Error) -> ExitCode {
    report(&format!("receiving on '{}'", args.name), error);
    ExitCode::FAILURE
}

/// Message bytes as text: invalid UTF-8 replaced, control characters escaped.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
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

/// Removes the channel's name on exit if this process created it.
struct RemoveOnDrop(Option<String>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(name) = self.0.take() {
            if let Err(e) = Channel::remove(&name) {
                eprintln!("subscriber: could not remove the channel '{name}': {e}");
            }
        }
    }
}

/// Does the work; on failure the error has been reported and the exit code
/// is returned.
fn run(args: &Args) -> Result<(), ExitCode> {
    let mut created = RemoveOnDrop(None);
    let channel = match Channel::open(&args.name) {
        Ok(channel) => channel,
        Err(OpenError::NotFound { .. }) => {
            let channel = Channel::create(&args.name).map_err(|e| {
                report(&format!("cannot create the channel '{}'", args.name), &e);
                ExitCode::FAILURE
            })?;
            created.0 = Some(args.name.clone());
            channel
        }
        Err(e) => {
            report(&format!("cannot open the channel '{}'", args.name), &e);
            return Err(ExitCode::FAILURE);
        }
    };
    let mut subscriber = channel.subscriber().map_err(|e| {
        report(&format!("cannot subscribe to '{}'", args.name), &e);
        ExitCode::FAILURE
    })?;
    eprintln!(
        "subscriber: joined channel '{}' ({}); waiting for {} messages",
        args.name,
        channel.path().display(),
        args.count
    );
    for _ in 0..args.count {
        let text = match args.timeout {
            // The message is read in place (or, when other users can write
            // the channel, a private copy) and released when dropped.
            None => subscriber
                .recv()
                .map(|m| printable(&m))
                .map_err(|e| report_recv(args, &e)),
            Some(timeout) => subscriber
                .recv_timeout(timeout)
                .map(|m| printable(&m))
                .map_err(|e| report_recv(args, &e)),
        }?;
        println!("{text}");
    }
    eprintln!(
        "subscriber: received {} messages",
        subscriber.messages_received()
    );
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
            eprintln!("subscriber: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

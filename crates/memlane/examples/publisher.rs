//! The sending half of the channel pair: it opens the [`Channel`] NAME and
//! publishes each MESSAGE argument, or, with none, each line of standard
//! input, as one message.
//!
//! Run the pair in two terminals, the subscriber first (it creates the
//! channel, and gets only what is published after it joined):
//!
//! ```text
//! cargo run -p memlane --example subscriber -- NAME 3
//! cargo run -p memlane --example publisher -- NAME one two three
//! printf 'one\ntwo\nthree\n' | cargo run -p memlane --example publisher -- NAME
//! ```
//!
//! `NAME` defaults to `memlane-chat`. A send waits at most 5 seconds for
//! room in the ring (the channel is lossless: a slow subscriber holds
//! publishers back), then fails.

use std::error::Error;
use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use memlane::{Channel, OpenError, Publisher};

const DEFAULT_NAME: &str = "memlane-chat";
/// How long one send waits for room in the ring.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

const USAGE: &str = "usage: publisher [NAME] [MESSAGE...]\n\
    \n\
    Opens the channel NAME (default memlane-chat) and sends each MESSAGE, or\n\
    each line of standard input when there are none.";

/// Prints an error and the chain of errors that caused it.
fn report(context: &str, error: &dyn Error) {
    eprintln!("publisher: error: {context}: {error}");
    let mut source = error.source();
    while let Some(e) = source {
        eprintln!("  caused by: {e}");
        source = e.source();
    }
}

fn send(publisher: &mut Publisher, name: &str, message: &[u8]) -> Result<(), ExitCode> {
    publisher.send_timeout(message, SEND_TIMEOUT).map_err(|e| {
        report(&format!("sending on '{name}'"), &e);
        ExitCode::FAILURE
    })
}

/// Does the work; on failure the error has been reported and the exit code
/// is returned.
fn run(name: &str, messages: &[String]) -> Result<(), ExitCode> {
    let channel = Channel::open(name).map_err(|e| {
        report(&format!("cannot open the channel '{name}'"), &e);
        if matches!(e, OpenError::NotFound { .. }) {
            eprintln!(
                "  hint: start the subscriber first: cargo run -p memlane --example subscriber -- {name}"
            );
        }
        ExitCode::FAILURE
    })?;
    let mut publisher = channel.publisher().map_err(|e| {
        report(&format!("cannot join '{name}' as a publisher"), &e);
        ExitCode::FAILURE
    })?;
    if messages.is_empty() {
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| {
                report("reading standard input", &e);
                ExitCode::FAILURE
            })?;
            send(&mut publisher, name, line.as_bytes())?;
        }
    } else {
        for message in messages {
            send(&mut publisher, name, message.as_bytes())?;
        }
    }
    eprintln!(
        "publisher: sent {} messages on '{name}'",
        publisher.messages_sent()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let (name, messages) = match args.split_first() {
        Some((name, messages)) => (name.as_str(), messages),
        None => (DEFAULT_NAME, &[][..]),
    };
    match run(name, messages) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

//! `memlane send`: publishes each argument, or each line of standard
//! input, as one message.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use memlane::Publisher;

use crate::cli::SendArgs;
use crate::command::open_channel;
use crate::output;

/// Sends the messages in `args`, or the lines of standard input.
pub fn run(dir: Option<&Path>, args: SendArgs) -> anyhow::Result<()> {
    let channel = open_channel(dir, &args.name)?;
    let name = output::escape(args.name.as_bytes());
    let max = channel.max_message();
    let messages: Vec<Cow<'_, [u8]>> = args.messages.iter().map(|m| arg_bytes(m)).collect();
    // Check every argument first, so that nothing is sent when one is too large.
    for (i, msg) in messages.iter().enumerate() {
        let len = msg.len();
        if len > max {
            bail!(
                "message {} is {len} bytes; channel '{name}' takes at most {max} bytes per message \
                 (nothing was sent; create the channel with a larger --max-message)",
                i + 1
            );
        }
    }
    if channel.info().subscribers.is_empty() {
        eprintln!(
            "warning: channel '{name}' has no subscribers: messages are kept only for subscribers \
             that have already joined, so nobody will receive these"
        );
    }
    let mut publisher = channel.publisher()?;
    if !messages.is_empty() {
        for (i, msg) in messages.iter().enumerate() {
            send_one(&mut publisher, msg, args.timeout)
                .with_context(|| format!("message {} was not sent", i + 1))?;
        }
        return Ok(());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let end = if cfg!(windows) {
            "Ctrl-Z, Enter"
        } else {
            "Ctrl-D"
        };
        eprintln!("sending each line to '{name}' (max {max} bytes); end with {end}");
    }
    let mut input = stdin.lock();
    let mut line = Vec::new();
    for number in 1u64.. {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .context("reading standard input")?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        send_one(&mut publisher, &line, args.timeout)
            .with_context(|| format!("line {number} was not sent"))?;
    }
    Ok(())
}

/// The bytes a command-line argument sends: on Unix exactly the bytes
/// given; on Windows (where arguments are UTF-16) their UTF-8, with an
/// unpaired surrogate sent as U+FFFD.
pub(crate) fn arg_bytes(arg: &OsStr) -> Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Cow::Borrowed(arg.as_bytes())
    }
    #[cfg(not(unix))]
    {
        match arg.to_string_lossy() {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        }
    }
}

/// Sends `msg`, waiting for space as long as it takes or up to `timeout`.
fn send_one(
    publisher: &mut Publisher,
    msg: &[u8],
    timeout: Option<Duration>,
) -> anyhow::Result<()> {
    match timeout {
        None => publisher.send(msg)?,
        Some(t) => publisher.send_timeout(msg, t)?,
    }
    Ok(())
}

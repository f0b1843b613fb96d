//! `memlane listen`: subscribes to a channel and prints each message as it
//! arrives, one per line.

use std::io::{ErrorKind, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use memlane::RecvTimeoutError;

use crate::cli::{Format, ListenArgs};
use crate::command::open_channel;
use crate::interrupt::Interrupts;
use crate::output;

/// How often a waiting listener checks for a stop request (SIGINT/SIGTERM;
/// Ctrl-C/Ctrl-Break on Windows).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Prints messages until `--count` are received, `--timeout` passes
/// without one, or (`--until-disconnected`) every publisher has left (see
/// `Subscriber::set_disconnect_grace`; without the flag a listener waits
/// for publishers for good). SIGINT and SIGTERM end it cleanly: the subscriber leaves
/// the channel (freeing its slot) and the exit status is 130 or 143. On
/// Windows Ctrl-C and Ctrl-Break do the same, with the exit status
/// `STATUS_CONTROL_C_EXIT` (see `interrupt.rs`).
pub fn run(dir: Option<&Path>, args: ListenArgs) -> anyhow::Result<()> {
    let interrupts = Interrupts::install()?;
    let channel = open_channel(dir, &args.name)?;
    // A typed channel's messages are values, not text: shown in hex (a
    // plain type's values separated by spaces), with the type's name in
    // JSON; a serde channel's that records a schema, as JSON values.
    let typed = match channel.message_type() {
        Ok(t) => t,
        Err(e) => {
            // The messages can still be shown, as bytes.
            eprintln!(
                "warning: {}; showing the messages as bytes",
                output::escape(e.to_string().as_bytes())
            );
            None
        }
    };
    let mut sub = if args.lossy {
        channel.lossy_subscriber()?
    } else if args.from_oldest {
        channel.subscriber_from_oldest()?
    } else {
        channel.subscriber()?
    };
    sub.set_disconnect_grace(
        args.until_disconnected
            .then_some(memlane::DEFAULT_DISCONNECT_GRACE),
    );
    if let Some(ready) = &args.ready_file {
        std::fs::write(ready, format!("{}\n", std::process::id()))
            .with_context(|| format!("creating the ready file {}", output::path(ready)))?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut seq: u64 = 0;
    let mut idle_since = Instant::now();
    while args.count.is_none_or(|count| seq < count) {
        if let Some(status) = interrupts.caught() {
            drop(sub);
            drop(channel);
            let _ = out.flush();
            std::process::exit(status);
        }
        let line = match sub.recv_timeout(SIGNAL_CHECK) {
            Ok(msg) => match &typed {
                Some(t) => match render_typed(&msg, seq, args.format, t) {
                    Ok(line) => line,
                    Err(error) => {
                        // Not a value of the schema: said on stderr, so
                        // that stdout stays one JSON value per line; the
                        // next message is printed as usual.
                        eprintln!("{error}");
                        idle_since = Instant::now();
                        seq += 1;
                        continue;
                    }
                },
                None => render(&msg, seq, args.format),
            },
            Err(RecvTimeoutError::Timeout) => {
                if let Some(timeout) = args.timeout {
                    if idle_since.elapsed() >= timeout {
                        if std::io::stderr().is_terminal() {
                            eprintln!("no message for {timeout:?}; {seq} received");
                        }
                        break;
                    }
                }
                continue;
            }
            Err(RecvTimeoutError::Lagged(lag)) => {
                // Lost messages are not printed; the count goes to stderr
                // (a script reading stdout sees only messages).
                eprintln!(
                    "lapped: lost {} messages ({} ring bytes)",
                    lag.messages(),
                    lag.bytes()
                );
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                if std::io::stderr().is_terminal() {
                    eprintln!("every publisher has left; {seq} received");
                }
                break;
            }
            Err(e) => return Err(e.into()),
        };
        idle_since = Instant::now();
        match writeln!(out, "{line}").and_then(|()| out.flush()) {
            Ok(()) => {}
            // The reader went away (`memlane listen x | head -1`): done.
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(anyhow::Error::new(e).context("writing to standard output")),
        }
        seq += 1;
    }
    Ok(())
}

/// Formats message number `seq` as one line.
fn render(msg: &[u8], seq: u64, format: Format) -> String {
    render_numbered(msg, "seq", seq, format)
}

/// Formats message number `seq` of a typed channel as one line. A serde
/// channel with a (readable) recorded schema: the message decoded to JSON
/// (text), or in an object with the sequence number, length and type
/// (`--format json`, `"value"`; `"error"` and `"hex"` for a message that
/// does not decode); `Err` with a line for stderr when a message does not
/// decode in text format. Any other typed channel, or `--format hex`: the
/// values in hex, one group per value of a plain type; in JSON with the
/// type's name. (A postcard-encoded message without a schema is shown as
/// its bytes in hex: decoding it needs the Rust type, which the record
/// only names.)
fn render_typed(
    msg: &[u8],
    seq: u64,
    format: Format,
    t: &memlane::TypeRecord,
) -> Result<String, String> {
    if let Some(schema) = t.schema().filter(|s| s.is_readable()) {
        let decoded = schema.to_json(msg);
        match (format, decoded) {
            (Format::Hex, _) => {}
            (Format::Text, Ok(json)) => return Ok(json),
            (Format::Text, Err(e)) => {
                return Err(format!(
                    "message {seq} ({} bytes) is not a `{}`: {}; its bytes: {}{}",
                    msg.len(),
                    output::escape(t.name().as_bytes()),
                    output::escape(e.to_string().as_bytes()),
                    output::hex(&msg[..msg.len().min(64)]),
                    if msg.len() > 64 { "…" } else { "" }
                ))
            }
            (Format::Json, Ok(json)) => {
                return Ok(format!(
                    r#"{{"seq":{seq},"len":{},"type":{},"value":{json}}}"#,
                    msg.len(),
                    serde_json::Value::from(t.name()),
                ))
            }
            (Format::Json, Err(e)) => {
                return Ok(format!(
                    r#"{{"seq":{seq},"len":{},"type":{},"error":{},"hex":"{}"}}"#,
                    msg.len(),
                    serde_json::Value::from(t.name()),
                    serde_json::Value::from(e.to_string()),
                    output::hex(msg)
                ))
            }
        }
    }
    let size = usize::try_from(t.size()).unwrap_or(0);
    let hex = if t.encoding() == memlane::Encoding::Plain && size > 0 && msg.len() % size == 0 {
        msg.chunks(size)
            .map(output::hex)
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        output::hex(msg)
    };
    Ok(match format {
        Format::Text | Format::Hex => hex,
        Format::Json => format!(
            r#"{{"seq":{seq},"len":{},"type":{},"encoding":"{}","hex":"{hex}"}}"#,
            msg.len(),
            serde_json::Value::from(t.name()),
            t.encoding(),
        ),
    })
}

/// Formats `msg` as one line; in JSON with `"key":n` first (a message's
/// sequence number, a value's version).
pub(crate) fn render_numbered(msg: &[u8], key_n: &str, n: u64, format: Format) -> String {
    match format {
        Format::Text => output::escape(msg),
        Format::Hex => output::hex(msg),
        Format::Json => {
            let (key, value) = match std::str::from_utf8(msg) {
                Ok(text) => ("text", serde_json::Value::from(text)),
                Err(_) => ("hex", serde_json::Value::from(output::hex(msg))),
            };
            format!(r#"{{"{key_n}":{n},"len":{},"{key}":{value}}}"#, msg.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_format() {
        assert_eq!(render(b"hi\n", 0, Format::Text), "hi\\n");
        assert_eq!(render(b"hi", 0, Format::Hex), "6869");
        assert_eq!(
            render(b"hello", 0, Format::Json),
            r#"{"seq":0,"len":5,"text":"hello"}"#
        );
        assert_eq!(
            render(b"a\"\x1b", 3, Format::Json),
            r#"{"seq":3,"len":3,"text":"a\"\u001b"}"#
        );
        assert_eq!(
            render(b"\xff", 1, Format::Json),
            r#"{"seq":1,"len":1,"hex":"ff"}"#
        );
    }
}

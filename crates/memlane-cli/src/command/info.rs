//! `memlane info`: a channel's settings, counters, publishers and
//! subscribers, or a latest-value slot's settings, version and writers, as
//! a table or as JSON.

use std::path::Path;

use memlane::{ChannelInfo, LatestInfo, OpenError, TypeError, TypeRecord};
use serde::Serialize;

use crate::cli::InfoArgs;
use crate::command::{open_channel, open_latest};
use crate::output;

/// The JSON form of [`ChannelInfo`].
#[derive(Serialize)]
struct InfoJson {
    name: String,
    path: String,
    mode: String,
    membarrier: bool,
    capacity: u64,
    max_message: usize,
    max_publishers: u32,
    max_subscribers: u32,
    creator_pid: u32,
    head: u64,
    bytes_claimed: u64,
    messages_sent: u64,
    bytes_sent: u64,
    /// The type record of a typed channel; null when untyped.
    message_type: Option<TypeJson>,
    publishers: Vec<PublisherJson>,
    subscribers: Vec<SubscriberJson>,
}

/// The JSON form of a [`memlane::TypeRecord`] (or of an unreadable one).
#[derive(Serialize)]
struct TypeJson {
    name: Option<String>,
    encoding: Option<String>,
    size: Option<u64>,
    align: Option<u32>,
    fingerprint: Option<String>,
    /// A serde channel's recorded schema, as Rust-like declarations.
    schema: Option<String>,
    /// Bytes of the recorded schema (0: none).
    schema_len: usize,
    error: Option<String>,
}

impl TypeJson {
    fn of(t: &Result<Option<TypeRecord>, TypeError>) -> Option<TypeJson> {
        match t {
            Ok(None) => None,
            Ok(Some(r)) => Some(TypeJson {
                name: Some(r.name().to_string()),
                encoding: Some(r.encoding().to_string()),
                size: Some(r.size()),
                align: Some(r.align()),
                fingerprint: Some(format!("{:#018x}", r.fingerprint())),
                schema: r.schema().map(|s| s.to_string()),
                schema_len: r.schema().map_or(0, |s| s.as_bytes().len()),
                error: None,
            }),
            Err(e) => Some(TypeJson {
                name: None,
                encoding: None,
                size: None,
                align: None,
                fingerprint: None,
                schema: None,
                schema_len: 0,
                error: Some(e.to_string()),
            }),
        }
    }
}

/// One line for a channel's type record.
pub(crate) fn type_line(t: &Result<Option<TypeRecord>, TypeError>) -> String {
    match t {
        Ok(None) => "bytes (untyped)".to_string(),
        Ok(Some(r)) => output::escape(r.to_string().as_bytes()),
        Err(e) => format!("unreadable: {}", output::escape(e.to_string().as_bytes())),
    }
}

/// The line for a serde channel's recorded schema: its declarations, cut
/// to about `max` characters; `None` without a schema.
pub(crate) fn schema_line(t: &Result<Option<TypeRecord>, TypeError>, max: usize) -> Option<String> {
    let schema = t.as_ref().ok()?.as_ref()?.schema()?;
    let mut text = schema.to_string();
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
        text.push('…');
    }
    let how = if schema.is_readable() {
        "; `memlane listen` prints messages as JSON"
    } else {
        ""
    };
    Some(format!(
        "{} ({} bytes{how})",
        output::escape(text.as_bytes()),
        schema.as_bytes().len()
    ))
}

/// The JSON form of a publisher.
#[derive(Serialize)]
struct PublisherJson {
    slot: u32,
    state: String,
    pid: u32,
    messages: u64,
    bytes: u64,
}

/// The JSON form of a subscriber.
#[derive(Serialize)]
struct SubscriberJson {
    slot: u32,
    state: String,
    pid: u32,
    position: u64,
    lag: u64,
    messages: u64,
    bytes: u64,
    lossy: bool,
    lost_messages: u64,
    lost_bytes: u64,
}

impl From<&ChannelInfo> for InfoJson {
    fn from(i: &ChannelInfo) -> Self {
        InfoJson {
            name: i.name.clone(),
            path: i.path.to_string_lossy().into_owned(),
            mode: i.mode.to_string(),
            membarrier: i.membarrier,
            capacity: i.capacity,
            max_message: i.max_message,
            max_publishers: i.max_publishers,
            max_subscribers: i.max_subscribers,
            creator_pid: i.creator_pid,
            head: i.head,
            bytes_claimed: i.bytes_claimed,
            messages_sent: i.messages_sent,
            bytes_sent: i.bytes_sent,
            message_type: None,
            publishers: i
                .publishers
                .iter()
                .map(|p| PublisherJson {
                    slot: p.slot,
                    state: p.state.to_string(),
                    pid: p.pid,
                    messages: p.messages,
                    bytes: p.bytes,
                })
                .collect(),
            subscribers: i
                .subscribers
                .iter()
                .map(|s| SubscriberJson {
                    slot: s.slot,
                    state: s.state.to_string(),
                    pid: s.pid,
                    position: s.position,
                    lag: s.lag,
                    messages: s.messages,
                    bytes: s.bytes,
                    lossy: s.lossy,
                    lost_messages: s.lost_messages,
                    lost_bytes: s.lost_bytes,
                })
                .collect(),
        }
    }
}

/// The JSON form of [`LatestInfo`].
#[derive(Serialize)]
struct LatestJson {
    kind: &'static str,
    name: String,
    path: String,
    max_value: usize,
    max_writers: u32,
    creator_pid: u32,
    version: u64,
    writes: u64,
    writers: Vec<WriterJson>,
}

/// The JSON form of a writer.
#[derive(Serialize)]
struct WriterJson {
    slot: u32,
    state: String,
    pid: u32,
}

/// Prints the state of a latest-value slot.
fn latest(info: &LatestInfo, json: bool) -> anyhow::Result<()> {
    let writers = info.writers.iter().map(|w| WriterJson {
        slot: w.slot,
        state: w.liveness.to_string(),
        pid: w.pid,
    });
    if json {
        let j = LatestJson {
            kind: "latest",
            name: info.name.clone(),
            path: info.path.to_string_lossy().into_owned(),
            max_value: info.max_value,
            max_writers: info.max_writers,
            creator_pid: info.creator_pid,
            version: info.version,
            writes: info.writes,
            writers: writers.collect(),
        };
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }
    println!(
        "latest-value slot '{}'",
        output::escape(info.name.as_bytes())
    );
    println!("  path:           {}", output::path(&info.path));
    println!(
        "  max value:      {}",
        output::size_exact(info.max_value as u64)
    );
    println!("  creator pid:    {}", info.creator_pid);
    println!("  version:        {}", info.version);
    println!("  writes:         {}", info.writes);
    print!("writers ({} of {}):", info.writers.len(), info.max_writers);
    if info.writers.is_empty() {
        println!(" none");
    } else {
        println!();
        println!("  {:>4}  {:>7}  {:>8}", "SLOT", "STATE", "PID");
        for w in writers {
            println!("  {:>4}  {:>7}  {:>8}", w.slot, w.state, w.pid);
        }
    }
    Ok(())
}

/// Prints the state of the channel or latest-value slot `args.name`.
pub fn run(dir: Option<&Path>, args: InfoArgs) -> anyhow::Result<()> {
    let (info, message_type) = match open_channel(dir, &args.name) {
        Ok(channel) => (channel.info(), channel.message_type()),
        // Not a channel: a latest-value slot, or the channel's error.
        Err(e @ OpenError::WrongKind { .. }) => match open_latest(dir, &args.name) {
            Ok(slot) => return latest(&slot.info(), args.json),
            Err(_) => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };
    if args.json {
        let mut j = InfoJson::from(&info);
        j.message_type = TypeJson::of(&message_type);
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }
    println!("channel '{}'", output::escape(info.name.as_bytes()));
    println!("  path:           {}", output::path(&info.path));
    println!("  mode:           {}", info.mode);
    println!("  barriers:       {}", output::barriers(info.membarrier));
    println!("  messages:       {}", type_line(&message_type));
    if let Some(line) = schema_line(&message_type, 400) {
        println!("  schema:         {line}");
    }
    println!("  capacity:       {}", output::size_exact(info.capacity));
    println!(
        "  max message:    {}",
        output::size_exact(info.max_message as u64)
    );
    println!("  creator pid:    {}", info.creator_pid);
    println!("  head:           {}", info.head);
    println!("  messages sent:  {}", info.messages_sent);
    println!("  bytes sent:     {}", info.bytes_sent);
    print!(
        "publishers ({} of {}):",
        info.publishers.len(),
        info.max_publishers
    );
    if info.publishers.is_empty() {
        println!(" none");
    } else {
        println!();
        println!(
            "  {:>4}  {:>7}  {:>8}  {:>12}  {:>14}",
            "SLOT", "STATE", "PID", "MESSAGES", "BYTES"
        );
        for p in &info.publishers {
            println!(
                "  {:>4}  {:>7}  {:>8}  {:>12}  {:>14}",
                p.slot,
                p.state.to_string(),
                p.pid,
                p.messages,
                p.bytes
            );
        }
    }
    print!(
        "subscribers ({} of {}):",
        info.subscribers.len(),
        info.max_subscribers
    );
    if info.subscribers.is_empty() {
        println!(" none");
    } else {
        println!();
        println!(
            "  {:>4}  {:>7}  {:>8}  {:>14}  {:>10}  {:>12}  {:>14}  {:>8}  {:>10}",
            "SLOT", "STATE", "PID", "POSITION", "LAG", "MESSAGES", "BYTES", "MODE", "LOST"
        );
        for s in &info.subscribers {
            println!(
                "  {:>4}  {:>7}  {:>8}  {:>14}  {:>10}  {:>12}  {:>14}  {:>8}  {:>10}",
                s.slot,
                s.state.to_string(),
                s.pid,
                s.position,
                s.lag,
                s.messages,
                s.bytes,
                if s.lossy { "lossy" } else { "lossless" },
                if s.lossy {
                    s.lost_messages.to_string()
                } else {
                    "-".to_string()
                }
            );
        }
    }
    let dead = info
        .publishers
        .iter()
        .map(|p| p.state)
        .chain(info.subscribers.iter().map(|s| s.state))
        .filter(|s| *s == memlane::Liveness::Dead)
        .count();
    if dead > 0 {
        println!(
            "{dead} endpoint(s) died without leaving; blocked endpoints reclaim them by themselves, or run `memlane gc --reap {}`",
            output::escape(info.name.as_bytes())
        );
    }
    Ok(())
}

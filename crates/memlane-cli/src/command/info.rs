//! `memlane info`: a channel's settings, counters, publishers and
//! subscribers, as a table or as JSON.

use std::path::Path;

use memlane::ChannelInfo;
use serde::Serialize;

use crate::cli::InfoArgs;
use crate::command::open_channel;
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
    publishers: Vec<PublisherJson>,
    subscribers: Vec<SubscriberJson>,
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
                })
                .collect(),
        }
    }
}

/// Prints the state of the channel `args.name`.
pub fn run(dir: Option<&Path>, args: InfoArgs) -> anyhow::Result<()> {
    let info = open_channel(dir, &args.name)?.info();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&InfoJson::from(&info))?);
        return Ok(());
    }
    println!("channel '{}'", output::escape(info.name.as_bytes()));
    println!("  path:           {}", output::path(&info.path));
    println!("  mode:           {}", info.mode);
    println!("  barriers:       {}", output::barriers(info.membarrier));
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
            "  {:>4}  {:>7}  {:>8}  {:>14}  {:>10}  {:>12}  {:>14}",
            "SLOT", "STATE", "PID", "POSITION", "LAG", "MESSAGES", "BYTES"
        );
        for s in &info.subscribers {
            println!(
                "  {:>4}  {:>7}  {:>8}  {:>14}  {:>10}  {:>12}  {:>14}",
                s.slot,
                s.state.to_string(),
                s.pid,
                s.position,
                s.lag,
                s.messages,
                s.bytes
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

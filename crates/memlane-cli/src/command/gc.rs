//! `memlane gc`: removes what no live process holds, and reclaims dead
//! endpoints of named channels.

use std::path::Path;

use serde::Serialize;

use crate::cli::GcArgs;
use crate::command::open_channel;
use crate::output;

/// The JSON form of the result.
#[derive(Serialize)]
struct GcJson {
    dir: String,
    dry_run: bool,
    removed: Vec<RemovedJson>,
    reaped: Vec<ReapedJson>,
}

/// One removed entry.
#[derive(Serialize)]
struct RemovedJson {
    file: String,
    reason: String,
}

/// Dead endpoints reclaimed in one channel.
#[derive(Serialize)]
struct ReapedJson {
    channel: String,
    publishers: u32,
    subscribers: u32,
}

/// Runs the collection.
pub fn run(dir: Option<&Path>, args: GcArgs) -> anyhow::Result<()> {
    let mut reaped = Vec::new();
    for name in &args.reap {
        let channel = open_channel(dir, name)?;
        let (publishers, subscribers) = if args.dry_run {
            let info = channel.info();
            let dead = |s: memlane::Liveness| s == memlane::Liveness::Dead;
            (
                info.publishers.iter().filter(|p| dead(p.state)).count() as u32,
                info.subscribers.iter().filter(|s| dead(s.state)).count() as u32,
            )
        } else {
            let r = channel.reap();
            (r.publishers, r.subscribers)
        };
        reaped.push(ReapedJson {
            channel: name.clone(),
            publishers,
            subscribers,
        });
    }
    let memlane::GcReport { dir, removed, .. } = memlane::gc(dir, args.dry_run)?;
    if args.json {
        let json = GcJson {
            dir: dir.to_string_lossy().into_owned(),
            dry_run: args.dry_run,
            removed: removed
                .iter()
                .map(|c| RemovedJson {
                    file: c.file.clone(),
                    reason: c.reason.to_string(),
                })
                .collect(),
            reaped,
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let verb = if args.dry_run {
        "would reclaim"
    } else {
        "reclaimed"
    };
    for r in &reaped {
        println!(
            "channel '{}': {verb} {} dead publisher(s), {} dead subscriber(s)",
            output::escape(r.channel.as_bytes()),
            r.publishers,
            r.subscribers
        );
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    if removed.is_empty() {
        println!("nothing to collect in {}", output::path(&dir));
    }
    for c in &removed {
        println!(
            "{verb} {} ({})",
            output::escape(c.file.as_bytes()),
            c.reason
        );
    }
    Ok(())
}

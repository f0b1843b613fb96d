//! `memlane list`: every memlane entry in the segment directory.

use std::path::Path;

use anyhow::Context;
use memlane::{Kind, SegmentEntry};
use serde::Serialize;

use crate::cli::ListArgs;
use crate::output;

/// The JSON form of one entry.
#[derive(Serialize)]
struct EntryJson {
    name: String,
    path: String,
    /// "channel", "segment", "event", "file link"; absent when the header is invalid.
    kind: Option<&'static str>,
    /// Why the header is invalid.
    error: Option<String>,
    size: u64,
    creator_pid: u32,
    target: Option<String>,
    /// Whether another process held an exclusive lock on the file.
    busy: bool,
    /// That process, when the OS tells.
    lock_holder: Option<u32>,
}

/// The JSON form of the listing.
#[derive(Serialize)]
struct ListJson {
    dir: String,
    entries: Vec<EntryJson>,
}

/// Lists the entries in `dir` (or the default directory).
pub fn run(dir: Option<&Path>, args: ListArgs) -> anyhow::Result<()> {
    let memlane::Listing { dir, entries, .. } = memlane::list(dir).with_context(|| {
        format!(
            "cannot list the segment directory {}",
            dir.map_or_else(|| output::path(&memlane::default_dir()), output::path)
        )
    })?;
    if args.json {
        let json = ListJson {
            dir: dir.to_string_lossy().into_owned(),
            entries: entries.iter().map(entry_json).collect(),
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    if entries.is_empty() {
        println!("no memlane entries found in {}", output::path(&dir));
        return Ok(());
    }
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            [
                output::escape(e.name.as_bytes()),
                kind_text(e),
                output::size(e.data_len),
                if e.creator_pid == 0 {
                    "-".into()
                } else {
                    e.creator_pid.to_string()
                },
            ]
        })
        .collect();
    let width = |col: usize, title: &str| {
        rows.iter()
            .map(|r| r[col].chars().count())
            .chain([title.len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w2, w3) = (width(0, "NAME"), width(2, "SIZE"), width(3, "PID"));
    println!("{:<w0$}  {:>w2$}  {:>w3$}  KIND", "NAME", "SIZE", "PID");
    for [name, kind, size, pid] in &rows {
        println!("{name:<w0$}  {size:>w2$}  {pid:>w3$}  {kind}");
    }
    Ok(())
}

/// The KIND column: the kind, a link's target, or why the header is
/// invalid; then whether another process holds the file exclusively.
fn kind_text(e: &SegmentEntry) -> String {
    let kind = match (&e.kind, &e.target) {
        (Ok(Kind::Link), Some(target)) => format!("file link -> {}", output::path(target)),
        (Ok(kind), _) => kind.as_str().to_string(),
        (Err(reason), _) => format!("invalid: {}", output::escape(reason.as_bytes())),
    };
    match (e.busy, e.lock_holder) {
        (false, _) => kind,
        (true, Some(pid)) => format!("{kind} (busy: locked exclusively by pid {pid})"),
        (true, None) => format!("{kind} (busy: locked exclusively by another process)"),
    }
}

/// One entry as JSON.
fn entry_json(e: &SegmentEntry) -> EntryJson {
    EntryJson {
        name: e.name.clone(),
        path: e.path.to_string_lossy().into_owned(),
        kind: e.kind.as_ref().ok().map(|k| k.as_str()),
        error: e.kind.as_ref().err().cloned(),
        size: e.data_len,
        creator_pid: e.creator_pid,
        target: e.target.as_ref().map(|t| t.to_string_lossy().into_owned()),
        busy: e.busy,
        lock_holder: e.lock_holder,
    }
}

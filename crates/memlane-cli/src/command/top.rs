//! `memlane top`: a live view of every entry in the segment directory —
//! per channel messages/s and bytes/s in and out, fill, losses, and each
//! publisher and subscriber with its pid, state and lag — refreshing in the
//! terminal; `--once` prints one snapshot (a table, or JSON with `--json`).
//!
//! It never writes to what it watches: the directory is listed with
//! [`memlane::list`] (read-only opens) and each channel or latest-value
//! slot is read with `inspect()` (a read-only open and mapping, no endpoint
//! joins, nothing reclaimed). Rates are the differences of the counters
//! between two samples divided by the time between them. A channel that
//! disappears stays on screen as `removed`; one that cannot be read shows
//! its error.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use memlane::{ChannelInfo, Kind, LatestInfo, Liveness};
use serde::Serialize;

use crate::cli::TopArgs;
use crate::output;

/// Counters of one endpoint at one sample, keyed by (slot, pid) so a slot
/// taken over by another process does not yield a bogus rate.
type EndpointKey = (u32, u32);

/// What one sample found at a name.
#[derive(Debug, Clone)]
enum Found {
    Channel(Box<ChannelInfo>),
    Latest(LatestInfo),
    /// A segment, event or link: shown with its size only.
    Other {
        kind: &'static str,
        size: u64,
    },
    /// Could not be read (corrupt, foreign, truncated...): the reason.
    Error {
        kind: Option<&'static str>,
        reason: String,
    },
}

/// One sample of the whole directory.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    entries: BTreeMap<String, (PathBuf, Found)>,
}

/// Reads every entry of `dir` without writing to any.
fn sample(dir: Option<&Path>) -> anyhow::Result<(PathBuf, Sample)> {
    let listing = memlane::list(dir).with_context(|| {
        format!(
            "cannot list the segment directory {}",
            dir.map_or_else(|| output::path(&memlane::default_dir()), output::path)
        )
    })?;
    let mut entries = BTreeMap::new();
    for e in &listing.entries {
        let found = match &e.kind {
            Err(reason) => Found::Error {
                kind: None,
                reason: reason.clone(),
            },
            Ok(Kind::Channel) => inspect_channel(&listing.dir, &e.name),
            Ok(Kind::Latest) => inspect_latest(&listing.dir, &e.name),
            Ok(Kind::Link) => match inspect_channel(&listing.dir, &e.name) {
                ok @ Found::Channel(_) => ok,
                _ => match inspect_latest(&listing.dir, &e.name) {
                    ok @ Found::Latest(_) => ok,
                    _ => Found::Other {
                        kind: "file link",
                        size: e.data_len,
                    },
                },
            },
            Ok(kind) => Found::Other {
                kind: kind.as_str(),
                size: e.data_len,
            },
        };
        entries.insert(e.name.clone(), (e.path.clone(), found));
    }
    Ok((
        listing.dir,
        Sample {
            at: Instant::now(),
            entries,
        },
    ))
}

fn inspect_channel(dir: &Path, name: &str) -> Found {
    match memlane::Channel::open_options(name)
        .dir(dir)
        .allow_other_owner(true)
        .inspect()
    {
        Ok(info) => Found::Channel(Box::new(info)),
        Err(e) => Found::Error {
            kind: Some("channel"),
            reason: e.to_string(),
        },
    }
}

fn inspect_latest(dir: &Path, name: &str) -> Found {
    match memlane::Latest::open_options(name)
        .dir(dir)
        .allow_other_owner(true)
        .inspect()
    {
        Ok(info) => Found::Latest(info),
        Err(e) => Found::Error {
            kind: Some("latest"),
            reason: e.to_string(),
        },
    }
}

/// Per-second rate of a counter that went from `before` to `now` over
/// `secs`; `None` without a previous value or if the counter went back
/// (the name was re-created, or the shared word is not to be trusted).
fn rate(before: Option<u64>, now: u64, secs: f64) -> Option<f64> {
    let d = now.checked_sub(before?)?;
    (secs > 0.0).then(|| d as f64 / secs)
}

/// The JSON output of `memlane top --once --json` (documented in the
/// README; field names are stable).
#[derive(Debug, Clone, Serialize)]
struct TopJson {
    dir: String,
    /// Seconds between the two samples the rates come from.
    interval_secs: f64,
    entries: Vec<EntryJson>,
}

/// One entry of the segment directory.
#[derive(Debug, Clone, Serialize)]
struct EntryJson {
    name: String,
    path: String,
    /// "channel", "latest", "segment", "event", "file link"; null when the
    /// header is unreadable.
    kind: Option<&'static str>,
    /// "ok", "removed" (gone since the previous sample) or "error".
    status: &'static str,
    /// Why it could not be read (status "error").
    error: Option<String>,
    /// Size in bytes of a segment, event or link.
    size: Option<u64>,
    channel: Option<ChannelJson>,
    latest: Option<LatestJson>,
    /// Refreshes since it was found removed (the live view drops it after
    /// [`KEEP_REMOVED`]).
    #[serde(skip)]
    removed_for: u32,
}

/// How many refreshes a removed entry stays on screen.
const KEEP_REMOVED: u32 = 5;

#[derive(Debug, Clone, Serialize)]
struct ChannelJson {
    capacity: u64,
    max_message: usize,
    max_publishers: u32,
    max_subscribers: u32,
    creator_pid: u32,
    head: u64,
    messages_sent: u64,
    bytes_sent: u64,
    /// Messages/s and payload bytes/s committed by publishers.
    messages_in_per_sec: Option<f64>,
    bytes_in_per_sec: Option<f64>,
    /// Messages/s and payload bytes/s received, summed over subscribers.
    messages_out_per_sec: Option<f64>,
    bytes_out_per_sec: Option<f64>,
    /// Ring bytes held by the slowest lossless subscriber (head − its
    /// position), and that as a fraction of the capacity.
    fill_bytes: u64,
    fill: f64,
    /// Messages lost, summed over lossy subscribers.
    lost_messages: u64,
    publishers: Vec<PublisherJson>,
    subscribers: Vec<SubscriberJson>,
}

#[derive(Debug, Clone, Serialize)]
struct PublisherJson {
    slot: u32,
    pid: u32,
    /// "alive", "stalled" or "dead".
    state: String,
    messages: u64,
    bytes: u64,
    messages_per_sec: Option<f64>,
    bytes_per_sec: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct SubscriberJson {
    slot: u32,
    pid: u32,
    state: String,
    position: u64,
    /// Ring bytes it has yet to read (head − position).
    lag_bytes: u64,
    messages: u64,
    bytes: u64,
    messages_per_sec: Option<f64>,
    bytes_per_sec: Option<f64>,
    lossy: bool,
    lost_messages: u64,
    lost_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
struct LatestJson {
    max_value: usize,
    max_writers: u32,
    creator_pid: u32,
    version: u64,
    writes: u64,
    writes_per_sec: Option<f64>,
    writers: Vec<WriterJson>,
}

#[derive(Debug, Clone, Serialize)]
struct WriterJson {
    slot: u32,
    pid: u32,
    state: String,
}

fn state(l: Liveness) -> String {
    l.to_string()
}

/// Builds the view of `now` with rates against `prev` (if any); entries of
/// `shown` (what was on screen) missing from `now` are kept as removed.
fn view(dir: &Path, prev: Option<&Sample>, now: &Sample, shown: &[EntryJson]) -> TopJson {
    let secs = prev.map_or(0.0, |p| now.at.duration_since(p.at).as_secs_f64());
    let mut entries: Vec<EntryJson> = now
        .entries
        .iter()
        .map(|(name, (path, found))| {
            let before = prev.and_then(|p| p.entries.get(name)).map(|(_, f)| f);
            entry(name, path, found, before, secs)
        })
        .collect();
    for old in shown {
        if !now.entries.contains_key(&old.name) && old.removed_for < KEEP_REMOVED {
            let mut gone = old.clone();
            if gone.status == "removed" {
                gone.removed_for += 1;
            }
            gone.status = "removed";
            if let Some(c) = &mut gone.channel {
                c.messages_in_per_sec = None;
                c.bytes_in_per_sec = None;
                c.messages_out_per_sec = None;
                c.bytes_out_per_sec = None;
            }
            entries.push(gone);
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    TopJson {
        dir: dir.to_string_lossy().into_owned(),
        interval_secs: secs,
        entries,
    }
}

fn entry(name: &str, path: &Path, found: &Found, before: Option<&Found>, secs: f64) -> EntryJson {
    let mut e = EntryJson {
        name: name.to_string(),
        path: path.to_string_lossy().into_owned(),
        kind: None,
        status: "ok",
        error: None,
        size: None,
        channel: None,
        latest: None,
        removed_for: 0,
    };
    match found {
        Found::Channel(info) => {
            e.kind = Some("channel");
            let prev = match before {
                Some(Found::Channel(p)) => Some(&**p),
                _ => None,
            };
            e.channel = Some(channel(info, prev, secs));
        }
        Found::Latest(info) => {
            e.kind = Some("latest");
            let prev = match before {
                Some(Found::Latest(p)) => Some(p.writes),
                _ => None,
            };
            e.latest = Some(LatestJson {
                max_value: info.max_value,
                max_writers: info.max_writers,
                creator_pid: info.creator_pid,
                version: info.version,
                writes: info.writes,
                writes_per_sec: rate(prev, info.writes, secs),
                writers: info
                    .writers
                    .iter()
                    .map(|w| WriterJson {
                        slot: w.slot,
                        pid: w.pid,
                        state: state(w.liveness),
                    })
                    .collect(),
            });
        }
        Found::Other { kind, size } => {
            e.kind = Some(kind);
            e.size = Some(*size);
        }
        Found::Error { kind, reason } => {
            e.kind = *kind;
            e.status = "error";
            e.error = Some(reason.clone());
        }
    }
    e
}

fn channel(info: &ChannelInfo, prev: Option<&ChannelInfo>, secs: f64) -> ChannelJson {
    let prev_pubs: BTreeMap<EndpointKey, (u64, u64)> = prev
        .map(|p| {
            p.publishers
                .iter()
                .map(|x| ((x.slot, x.pid), (x.messages, x.bytes)))
                .collect()
        })
        .unwrap_or_default();
    let prev_subs: BTreeMap<EndpointKey, (u64, u64)> = prev
        .map(|p| {
            p.subscribers
                .iter()
                .map(|x| ((x.slot, x.pid), (x.messages, x.bytes)))
                .collect()
        })
        .unwrap_or_default();
    let publishers: Vec<PublisherJson> = info
        .publishers
        .iter()
        .map(|p| {
            let before = prev_pubs.get(&(p.slot, p.pid));
            PublisherJson {
                slot: p.slot,
                pid: p.pid,
                state: state(p.state),
                messages: p.messages,
                bytes: p.bytes,
                messages_per_sec: rate(before.map(|b| b.0), p.messages, secs),
                bytes_per_sec: rate(before.map(|b| b.1), p.bytes, secs),
            }
        })
        .collect();
    let subscribers: Vec<SubscriberJson> = info
        .subscribers
        .iter()
        .map(|s| {
            let before = prev_subs.get(&(s.slot, s.pid));
            SubscriberJson {
                slot: s.slot,
                pid: s.pid,
                state: state(s.state),
                position: s.position,
                lag_bytes: s.lag,
                messages: s.messages,
                bytes: s.bytes,
                messages_per_sec: rate(before.map(|b| b.0), s.messages, secs),
                bytes_per_sec: rate(before.map(|b| b.1), s.bytes, secs),
                lossy: s.lossy,
                lost_messages: s.lost_messages,
                lost_bytes: s.lost_bytes,
            }
        })
        .collect();
    // A subscriber that was not there before adds no rate; the sum is
    // known once there is a previous sample.
    let sum = |f: fn(&SubscriberJson) -> Option<f64>| {
        prev.map(|_| subscribers.iter().filter_map(f).fold(0.0, |a, b| a + b))
    };
    let fill_bytes = info
        .subscribers
        .iter()
        .filter(|s| !s.lossy)
        .map(|s| s.lag.min(info.capacity))
        .max()
        .unwrap_or(0);
    ChannelJson {
        capacity: info.capacity,
        max_message: info.max_message,
        max_publishers: info.max_publishers,
        max_subscribers: info.max_subscribers,
        creator_pid: info.creator_pid,
        head: info.head,
        messages_sent: info.messages_sent,
        bytes_sent: info.bytes_sent,
        messages_in_per_sec: rate(prev.map(|p| p.messages_sent), info.messages_sent, secs),
        bytes_in_per_sec: rate(prev.map(|p| p.bytes_sent), info.bytes_sent, secs),
        messages_out_per_sec: sum(|s| s.messages_per_sec),
        bytes_out_per_sec: sum(|s| s.bytes_per_sec),
        fill_bytes,
        fill: if info.capacity == 0 {
            0.0
        } else {
            fill_bytes as f64 / info.capacity as f64
        },
        lost_messages: info
            .subscribers
            .iter()
            .filter(|s| s.lossy)
            .map(|s| s.lost_messages)
            .fold(0u64, u64::saturating_add),
        publishers,
        subscribers,
    }
}

/// The shortest `--interval`.
const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// Shows the segment directory live, or once with `--once`.
pub fn run(dir: Option<&Path>, args: TopArgs) -> anyhow::Result<()> {
    if args.interval < MIN_INTERVAL {
        anyhow::bail!(
            "--interval {:?} is too short: rates over less than {MIN_INTERVAL:?} are noise; give at least 10ms",
            args.interval
        );
    }
    if args.once {
        return once(dir, &args);
    }
    tui::run(dir, &args)
}

fn once(dir: Option<&Path>, args: &TopArgs) -> anyhow::Result<()> {
    let (_, first) = sample(dir)?;
    let shown = view(Path::new(""), None, &first, &[]).entries;
    if args.step {
        eprintln!("first sample taken");
        std::io::stdin().read_line(&mut String::new())?;
    } else {
        std::thread::sleep(args.interval);
    }
    let (dir_path, second) = sample(dir)?;
    let v = view(&dir_path, Some(&first), &second, &shown);
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for line in table_lines(&v) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// A rate for a table cell.
fn fmt_rate(r: Option<f64>) -> String {
    match r {
        None => "-".into(),
        Some(r) if r >= 10_000_000.0 => format!("{:.0}M", r / 1e6),
        Some(r) if r >= 10_000.0 => format!("{:.0}k", r / 1e3),
        Some(r) => format!("{r:.0}"),
    }
}

/// A byte rate for a table cell.
fn fmt_bytes_rate(r: Option<f64>) -> String {
    match r {
        None => "-".into(),
        Some(r) => output::size(r as u64),
    }
}

/// The columns of the main table (also the sort keys).
/// STATUS is last: an error's reason is long.
const COLUMNS: [&str; 10] = [
    "NAME",
    "KIND",
    "MSG/S IN",
    "B/S IN",
    "MSG/S OUT",
    "B/S OUT",
    "ENDPOINTS",
    "FILL",
    "LOST",
    "STATUS",
];

/// The cells of one entry's row.
fn row(e: &EntryJson) -> [String; 10] {
    let name = output::escape(e.name.as_bytes());
    let kind = e.kind.unwrap_or("?").to_string();
    let status = match (e.status, &e.error) {
        ("error", Some(reason)) => format!("error: {}", output::escape(reason.as_bytes())),
        (s, _) => s.to_string(),
    };
    let dash = || "-".to_string();
    // Built NAME, KIND, STATUS, ... and STATUS moved last below.
    let mut cells = if let Some(c) = &e.channel {
        [
            name,
            kind,
            status,
            fmt_rate(c.messages_in_per_sec),
            fmt_bytes_rate(c.bytes_in_per_sec),
            fmt_rate(c.messages_out_per_sec),
            fmt_bytes_rate(c.bytes_out_per_sec),
            format!("{}p {}s", c.publishers.len(), c.subscribers.len()),
            format!("{:.0}%", c.fill * 100.0),
            if c.subscribers.iter().any(|s| s.lossy) {
                c.lost_messages.to_string()
            } else {
                dash()
            },
        ]
    } else if let Some(l) = &e.latest {
        [
            name,
            kind,
            status,
            fmt_rate(l.writes_per_sec),
            dash(),
            dash(),
            dash(),
            format!("{}w", l.writers.len()),
            dash(),
            dash(),
        ]
    } else {
        let size = e.size.map_or_else(dash, output::size);
        [
            name,
            kind,
            status,
            dash(),
            size,
            dash(),
            dash(),
            dash(),
            dash(),
            dash(),
        ]
    };
    cells[2..].rotate_left(1);
    cells
}

/// The sort key of `e` in column `col`: numbers (missing ones lowest),
/// then the name.
fn sort_key(e: &EntryJson, col: usize) -> f64 {
    let c = e.channel.as_ref();
    let v = match col {
        2 => c
            .and_then(|c| c.messages_in_per_sec)
            .or(e.latest.as_ref().and_then(|l| l.writes_per_sec)),
        3 => c.and_then(|c| c.bytes_in_per_sec),
        4 => c.and_then(|c| c.messages_out_per_sec),
        5 => c.and_then(|c| c.bytes_out_per_sec),
        6 => c.map(|c| (c.publishers.len() + c.subscribers.len()) as f64),
        7 => c.map(|c| c.fill),
        8 => c.map(|c| c.lost_messages as f64),
        _ => None,
    };
    v.unwrap_or(-1.0)
}

/// Sorts `entries` by column `col`, descending if `desc`.
fn sort(entries: &mut [EntryJson], col: usize, desc: bool) {
    entries.sort_by(|a, b| {
        let o = match col {
            0 => a.name.cmp(&b.name),
            1 => a.kind.cmp(&b.kind).then(a.name.cmp(&b.name)),
            9 => a.status.cmp(b.status).then(a.name.cmp(&b.name)),
            _ => sort_key(a, col)
                .total_cmp(&sort_key(b, col))
                .then(a.name.cmp(&b.name)),
        };
        if desc {
            o.reverse()
        } else {
            o
        }
    });
}

/// The `--once` table.
fn table_lines(v: &TopJson) -> Vec<String> {
    let rows: Vec<[String; 10]> = v.entries.iter().map(row).collect();
    let mut widths = COLUMNS.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 10]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i == 9 {
                s.push_str(c);
            } else if i < 2 {
                s.push_str(&format!("{c:<w$}  "));
            } else {
                s.push_str(&format!("{c:>w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    let mut lines = vec![format!(
        "{} — {} entries, rates over {:.1}s",
        output::escape(v.dir.as_bytes()),
        v.entries.len(),
        v.interval_secs
    )];
    lines.push(line(COLUMNS));
    for r in &rows {
        lines.push(line(r.each_ref().map(String::as_str)));
    }
    lines
}

/// The detail lines of one entry (its endpoints).
fn detail_lines(e: &EntryJson) -> Vec<String> {
    let mut l = vec![format!(
        "{} '{}' ({})",
        e.kind.unwrap_or("entry"),
        output::escape(e.name.as_bytes()),
        output::escape(e.path.as_bytes())
    )];
    if let Some(reason) = &e.error {
        l.push(format!("error: {}", output::escape(reason.as_bytes())));
    }
    if e.status == "removed" {
        l.push("removed: no longer in the segment directory".into());
    }
    if let Some(c) = &e.channel {
        l.push(format!(
            "capacity {}  max message {}  head {}  sent {} messages, {} bytes  creator pid {}",
            output::size_exact(c.capacity),
            output::size_exact(c.max_message as u64),
            c.head,
            c.messages_sent,
            c.bytes_sent,
            c.creator_pid
        ));
        l.push(format!(
            "in {} msg/s {}/s   out {} msg/s {}/s   fill {:.1}% ({} bytes)   lost {}",
            fmt_rate(c.messages_in_per_sec),
            fmt_bytes_rate(c.bytes_in_per_sec),
            fmt_rate(c.messages_out_per_sec),
            fmt_bytes_rate(c.bytes_out_per_sec),
            c.fill * 100.0,
            c.fill_bytes,
            c.lost_messages
        ));
        l.push(String::new());
        l.push(format!(
            "PUBLISHERS ({} of {})",
            c.publishers.len(),
            c.max_publishers
        ));
        l.push(format!(
            "{:>5} {:>8} {:>8} {:>12} {:>14} {:>9} {:>9}",
            "SLOT", "PID", "STATE", "MESSAGES", "BYTES", "MSG/S", "B/S"
        ));
        for p in &c.publishers {
            l.push(format!(
                "{:>5} {:>8} {:>8} {:>12} {:>14} {:>9} {:>9}",
                p.slot,
                p.pid,
                p.state,
                p.messages,
                p.bytes,
                fmt_rate(p.messages_per_sec),
                fmt_bytes_rate(p.bytes_per_sec)
            ));
        }
        l.push(String::new());
        l.push(format!(
            "SUBSCRIBERS ({} of {})",
            c.subscribers.len(),
            c.max_subscribers
        ));
        l.push(format!(
            "{:>5} {:>8} {:>8} {:>12} {:>14} {:>9} {:>9} {:>10} {:>8} {:>10}",
            "SLOT", "PID", "STATE", "MESSAGES", "BYTES", "MSG/S", "B/S", "LAG", "MODE", "LOST"
        ));
        for s in &c.subscribers {
            l.push(format!(
                "{:>5} {:>8} {:>8} {:>12} {:>14} {:>9} {:>9} {:>10} {:>8} {:>10}",
                s.slot,
                s.pid,
                s.state,
                s.messages,
                s.bytes,
                fmt_rate(s.messages_per_sec),
                fmt_bytes_rate(s.bytes_per_sec),
                s.lag_bytes,
                if s.lossy { "lossy" } else { "lossless" },
                if s.lossy {
                    s.lost_messages.to_string()
                } else {
                    "-".into()
                }
            ));
        }
    }
    if let Some(x) = &e.latest {
        l.push(format!(
            "max value {}  version {}  writes {}  writes/s {}  creator pid {}",
            output::size_exact(x.max_value as u64),
            x.version,
            x.writes,
            fmt_rate(x.writes_per_sec),
            x.creator_pid
        ));
        l.push(String::new());
        l.push(format!(
            "WRITERS ({} of {})",
            x.writers.len(),
            x.max_writers
        ));
        l.push(format!("{:>5} {:>8} {:>8}", "SLOT", "PID", "STATE"));
        for w in &x.writers {
            l.push(format!("{:>5} {:>8} {:>8}", w.slot, w.pid, w.state));
        }
    }
    l
}

/// The interactive view (ratatui over crossterm).
mod tui {
    use std::io::IsTerminal;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use crate::interrupt::Interrupts;

    use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    use ratatui::layout::{Constraint, Layout};
    use ratatui::style::{Color, Modifier, Style};
    use ratatui::text::Line;
    use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
    use ratatui::{DefaultTerminal, Frame};

    use super::{
        detail_lines, output, row, sample, sort, view, EntryJson, Sample, TopArgs, TopJson, COLUMNS,
    };

    struct App {
        view: TopJson,
        prev: Option<Sample>,
        sort_col: usize,
        desc: bool,
        table: TableState,
        /// The name shown in detail, if any.
        detail: Option<String>,
        /// Why the last refresh failed (the directory could not be listed).
        error: Option<String>,
    }

    impl App {
        fn refresh(&mut self, dir: Option<&Path>) {
            let selected = self.selected_name();
            match sample(dir) {
                Ok((dir_path, now)) => {
                    let shown = std::mem::take(&mut self.view.entries);
                    self.view = view(&dir_path, self.prev.as_ref(), &now, &shown);
                    self.prev = Some(now);
                    self.error = None;
                }
                Err(e) => self.error = Some(format!("{e:#}")),
            }
            sort(&mut self.view.entries, self.sort_col, self.desc);
            // Keep the selection on the same name.
            let index = selected
                .and_then(|n| self.view.entries.iter().position(|e| e.name == n))
                .or((!self.view.entries.is_empty()).then_some(0));
            self.table.select(index);
        }

        fn selected_name(&self) -> Option<String> {
            self.table
                .selected()
                .and_then(|i| self.view.entries.get(i))
                .map(|e| e.name.clone())
        }

        fn resort(&mut self) {
            let selected = self.selected_name();
            sort(&mut self.view.entries, self.sort_col, self.desc);
            if let Some(n) = selected {
                self.table
                    .select(self.view.entries.iter().position(|e| e.name == n));
            }
        }
    }

    pub fn run(dir: Option<&Path>, args: &TopArgs) -> anyhow::Result<()> {
        if !std::io::stdout().is_terminal() {
            anyhow::bail!(
                "standard output is not a terminal: use `memlane top --once` (a table) or `--once --json`"
            );
        }
        // SIGTERM (and SIGINT, though raw mode turns Ctrl-C into a key)
        // end the loop, so the terminal is restored on those too.
        let interrupts = Interrupts::install()?;
        // Raw mode and the alternate screen; `ratatui::try_init` also
        // installs a panic hook that restores the terminal first.
        let result = match ratatui::try_init() {
            Ok(mut terminal) => event_loop(&mut terminal, dir, args.interval, &interrupts),
            Err(e) => Err(anyhow::Error::new(e).context("cannot set up the terminal")),
        };
        ratatui::restore();
        result?;
        match interrupts.caught() {
            Some(status) => std::process::exit(status),
            None => Ok(()),
        }
    }

    fn event_loop(
        terminal: &mut DefaultTerminal,
        dir: Option<&Path>,
        interval: Duration,
        interrupts: &Interrupts,
    ) -> anyhow::Result<()> {
        let mut app = App {
            view: TopJson {
                dir: String::new(),
                interval_secs: 0.0,
                entries: Vec::new(),
            },
            prev: None,
            sort_col: 0,
            desc: false,
            table: TableState::default(),
            detail: None,
            error: None,
        };
        app.refresh(dir);
        let mut next = Instant::now() + interval;
        // Drawn after a refresh, a key or a resize only.
        let mut redraw = true;
        loop {
            if interrupts.caught().is_some() {
                return Ok(());
            }
            if redraw {
                terminal.draw(|f| draw(f, &mut app))?;
                redraw = false;
            }
            // Wake at least every 100 ms to notice a signal.
            let timeout = next
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            if !event::poll(timeout)? {
                if Instant::now() >= next {
                    app.refresh(dir);
                    next = Instant::now() + interval;
                    redraw = true;
                }
            } else {
                let event = event::read()?;
                redraw = true; // a resize too
                let Event::Key(key) = event else {
                    continue;
                };
                if key.kind != KeyEventKind::Press {
                    continue;
                }
                match key.code {
                    KeyCode::Char('q') => return Ok(()),
                    KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                        return Ok(())
                    }
                    KeyCode::Char('s') => {
                        app.sort_col = (app.sort_col + 1) % COLUMNS.len();
                        app.resort();
                    }
                    KeyCode::Char('S') => {
                        app.desc = !app.desc;
                        app.resort();
                    }
                    KeyCode::Char('r') => {
                        app.refresh(dir);
                        next = Instant::now() + interval;
                    }
                    KeyCode::Down if app.detail.is_none() => app.table.select_next(),
                    KeyCode::Up if app.detail.is_none() => app.table.select_previous(),
                    KeyCode::Enter => app.detail = app.selected_name(),
                    KeyCode::Esc => app.detail = None,
                    _ => {}
                }
            }
        }
    }

    fn draw(f: &mut Frame, app: &mut App) {
        let [head, body, foot] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let title = format!(
            "memlane top — {} — {} entries — sort: {} {}{}",
            output::escape(app.view.dir.as_bytes()),
            app.view.entries.len(),
            COLUMNS[app.sort_col],
            if app.desc { "desc" } else { "asc" },
            app.error
                .as_ref()
                .map(|e| format!(" — refresh failed: {e}"))
                .unwrap_or_default()
        );
        f.render_widget(
            Paragraph::new(title).style(Style::new().add_modifier(Modifier::BOLD)),
            head,
        );
        let keys = if app.detail.is_some() {
            "Esc back  r refresh  q quit"
        } else {
            "↑/↓ select  Enter detail  s sort column  S direction  r refresh  q quit"
        };
        f.render_widget(
            Paragraph::new(keys).style(Style::new().fg(Color::Black).bg(Color::Gray)),
            foot,
        );
        if let Some(name) = &app.detail {
            let lines: Vec<Line> = match app.view.entries.iter().find(|e| &e.name == name) {
                Some(e) => detail_lines(e).into_iter().map(Line::from).collect(),
                None => vec![Line::from(format!("'{name}' is no longer shown"))],
            };
            f.render_widget(Paragraph::new(lines), body);
            return;
        }
        let header = Row::new(COLUMNS.iter().enumerate().map(|(i, c)| {
            let mut text = c.to_string();
            if i == app.sort_col {
                text.push(if app.desc { '▼' } else { '▲' });
            }
            if (2..9).contains(&i) {
                Cell::from(Line::from(text).right_aligned())
            } else {
                Cell::from(text)
            }
        }))
        .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
        let rows = app.view.entries.iter().map(|e: &EntryJson| {
            let style = match e.status {
                "removed" => Style::new().fg(Color::DarkGray),
                "error" => Style::new().fg(Color::Red),
                _ => Style::new(),
            };
            Row::new(row(e).into_iter().enumerate().map(|(i, c)| {
                // Numbers right-aligned, as in the --once table.
                if (2..9).contains(&i) {
                    Cell::from(Line::from(c).right_aligned())
                } else {
                    Cell::from(c)
                }
            }))
            .style(style)
        });
        let widths = [
            Constraint::Length(24),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(11),
            Constraint::Length(10),
            Constraint::Length(11),
            Constraint::Length(10),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Min(8),
        ];
        let table = Table::new(rows, widths)
            .header(header)
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .highlight_symbol("> ");
        f.render_stateful_widget(table, body, &mut app.table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_of(names: &[&str]) -> Sample {
        Sample {
            at: Instant::now(),
            entries: names
                .iter()
                .map(|n| {
                    let found = Found::Other {
                        kind: "segment",
                        size: n.len() as u64,
                    };
                    (n.to_string(), (PathBuf::from(n), found))
                })
                .collect(),
        }
    }

    #[test]
    fn a_removed_entry_is_shown_for_a_few_refreshes_then_dropped() {
        let dir = Path::new("d");
        let first = sample_of(&["a", "b"]);
        let mut shown = view(dir, None, &first, &[]).entries;
        let without_b = sample_of(&["a"]);
        for _ in 0..=KEEP_REMOVED {
            shown = view(dir, Some(&without_b), &without_b, &shown).entries;
            let b = shown.iter().find(|e| e.name == "b").expect("b still shown");
            assert_eq!(b.status, "removed");
            assert_eq!(b.size, Some(1), "its last known state");
        }
        shown = view(dir, Some(&without_b), &without_b, &shown).entries;
        assert_eq!(shown.len(), 1, "b dropped after {KEEP_REMOVED} refreshes");
    }

    #[test]
    fn sorting_by_a_column_and_direction() {
        let s = sample_of(&["bb", "a", "ccc"]);
        let mut v = view(Path::new("d"), None, &s, &[]).entries;
        let names = |v: &[EntryJson]| v.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        sort(&mut v, 0, true);
        assert_eq!(names(&v), ["ccc", "bb", "a"]);
        sort(&mut v, 0, false);
        assert_eq!(names(&v), ["a", "bb", "ccc"]);
        // Every numeric column of a segment is empty: ties go by name.
        sort(&mut v, 7, false);
        assert_eq!(names(&v), ["a", "bb", "ccc"]);
    }

    #[test]
    fn rate_needs_a_previous_value_that_is_not_larger() {
        assert_eq!(rate(None, 5, 1.0), None);
        assert_eq!(rate(Some(6), 5, 1.0), None);
        assert_eq!(rate(Some(1), 5, 2.0), Some(2.0));
        assert_eq!(rate(Some(1), 5, 0.0), None);
    }
}

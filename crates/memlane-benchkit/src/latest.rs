//! memlane's latest-value slot ([`memlane::Latest`]) next to the floor.
//!
//! In one process ([`ops`]), nanoseconds per operation, in interleaved
//! rounds (the median round is reported):
//!
//! * `copy` (the floor): a plain copy of the value into a `Vec`, as
//!   `get_into` leaves it (clear, then extend from a slice);
//! * `latest-get`: `get_into` of a value nobody writes (copy out with
//!   relaxed loads, then validate the buffer's seqlock), through a second
//!   handle opened by name as a reader would;
//! * `latest-set`: `set` with nobody waiting (ticket, copy into one of the
//!   writer's buffers, CAS of `current`, a fence and one load to see that
//!   no reader sleeps).
//!
//! In two processes ([`run`] in the parent, [`serve`] in the child), one
//! slot per direction (`ping` written by the parent, `pong` by the child):
//!
//! * `latest-spin`: each side polls the other's slot with `version()`,
//!   then `get_into` and answers with `set`; one-way latency is half a
//!   round trip, the same method as `floor-spin`;
//! * `latest-wake`: the child is blocked in `wait()`; the parent pauses
//!   [`WAKE_GAP`] (far longer than `wait`'s spin, so the child sleeps),
//!   takes the time, and `set`s; the woken child reads the value, takes
//!   the time on the same clock and answers with it; the parent polls the
//!   answer. One-way latency is the child's time minus the parent's: the
//!   write-to-woken-reader path alone, measured from both ends (a clock the
//!   two processes share, `CLOCK_MONOTONIC` on Linux).

use std::hint::black_box;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use memlane::Latest;
use serde::Serialize;

use crate::{bad, payload, pin_to_cpu, proc, stats, sys, Job, LatencyResult, Launcher};

/// How long the `latest-wake` parent pauses before each write: long enough
/// for the child's `wait` to have stopped spinning and gone to sleep.
pub const WAKE_GAP: Duration = Duration::from_micros(500);

/// Which two-process measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatestMode {
    /// Readers poll `version()`.
    Spin,
    /// The reader sleeps in `wait()`.
    Wake,
}

impl LatestMode {
    /// The mode named `name` (`latest-spin`, `latest-wake`).
    pub fn from_name(name: &str) -> Option<LatestMode> {
        match name {
            "latest-spin" => Some(LatestMode::Spin),
            "latest-wake" => Some(LatestMode::Wake),
            _ => None,
        }
    }
}

/// Nanoseconds per operation of one-process work.
#[derive(Debug, Clone, Serialize)]
pub struct OpResult {
    /// `copy`, `latest-get` or `latest-set`.
    pub op: String,
    /// Value size in bytes.
    pub size: usize,
    /// Operations per round.
    pub ops: u64,
    /// Rounds; the median round is reported.
    pub rounds: u32,
    /// Nanoseconds per operation in the median round.
    pub ns_per_op: f64,
}

fn err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

fn create(dir: &Path, name: &str, size: usize) -> io::Result<Latest> {
    Latest::builder(name)
        .max_value(size.max(8))
        .max_writers(1)
        .dir(dir)
        .create()
        .map_err(err)
}

fn open(dir: &Path, name: &str) -> io::Result<Latest> {
    Latest::open_options(name).dir(dir).open().map_err(err)
}

/// Times `count` calls of `op`; nanoseconds per call.
pub fn per_op(count: u64, mut op: impl FnMut() -> io::Result<()>) -> io::Result<f64> {
    let t0 = Instant::now();
    for _ in 0..count {
        op()?;
    }
    Ok(t0.elapsed().as_nanos() as f64 / count.max(1) as f64)
}

/// The one-process figures for values of `size` bytes: `copy`,
/// `latest-get` and `latest-set`, `count` operations per round, `rounds`
/// interleaved rounds. The slot (named after `tag`) is made in `dir` and
/// removed before returning.
///
/// # Errors
///
/// Any failure to create, open, write or read the slot.
pub fn ops(
    dir: &Path,
    tag: &str,
    size: usize,
    count: u64,
    rounds: u32,
) -> io::Result<Vec<OpResult>> {
    let name = format!("{tag}.latest");
    let value = payload(size);
    let mut writer = create(dir, &name, size)?;
    let mut reader = open(dir, &name)?;
    writer.set(&value).map_err(err)?;
    let mut buf = Vec::with_capacity(size.max(8));
    let mut copy = Vec::with_capacity(size.max(8));
    let rounds = rounds.max(1);
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..rounds {
        samples[0].push(per_op(count, || {
            copy.clear();
            copy.extend_from_slice(black_box(&value));
            black_box(&mut copy);
            Ok(())
        })?);
        samples[1].push(per_op(count, || {
            let v = reader.get_into(&mut buf).map_err(err)?;
            black_box((v, &mut buf));
            Ok(())
        })?);
        // The value written stays the same: what is timed is the write.
        samples[2].push(per_op(count, || {
            black_box(writer.set(black_box(&value)).map_err(err)?);
            Ok(())
        })?);
    }
    if buf != value {
        return Err(bad("latest-get read back something else than was set"));
    }
    drop((writer, reader));
    memlane::remove(Some(dir), &name).map_err(err)?;
    Ok(median_rows(
        &["copy", "latest-get", "latest-set"],
        samples,
        size,
        count,
        rounds,
    ))
}

/// One [`OpResult`] per operation of `ops`, from its rounds' figures in
/// `samples` (in the same order): the median round.
pub fn median_rows(
    ops: &[&str],
    samples: impl IntoIterator<Item = Vec<f64>>,
    size: usize,
    count: u64,
    rounds: u32,
) -> Vec<OpResult> {
    ops.iter()
        .zip(samples)
        .map(|(op, mut s)| {
            s.sort_by(f64::total_cmp);
            OpResult {
                op: op.to_string(),
                size,
                ops: count,
                rounds,
                ns_per_op: s[s.len() / 2],
            }
        })
        .collect()
}

fn names(job: &Job) -> (String, String) {
    (format!("{}.lping", job.tag), format!("{}.lpong", job.tag))
}

/// Polls `slot` until it holds a value newer than the last one this
/// handle read.
fn spin_until_changed(slot: &Latest) {
    while !slot.has_changed() {
        std::hint::spin_loop();
    }
}

/// Runs a `latest-spin` or `latest-wake` job as the parent.
///
/// # Errors
///
/// Any failure of the slots or of the child.
pub fn run(mode: LatestMode, launcher: &Launcher, job: &Job) -> io::Result<LatencyResult> {
    if job.size < 8 {
        return Err(bad("latest benchmarks need values of at least 8 bytes"));
    }
    let (ping, pong) = names(job);
    let mut ping = create(&job.dir, &ping, job.size)?;
    let mut pong = create(&job.dir, &pong, job.size)?;
    let mut child = launcher.spawn(job)?;
    child.expect_line("ready")?;
    let msg = payload(job.size);
    let mut buf = Vec::with_capacity(job.size);
    let mut hist = stats::histogram();
    for i in 0..job.warmup + job.count {
        let sample = match mode {
            LatestMode::Spin => {
                let t0 = Instant::now();
                ping.set(&msg).map_err(err)?;
                spin_until_changed(&pong);
                pong.get_into(&mut buf).map_err(err)?;
                // Round trip; halved below like every ping-pong.
                t0.elapsed().as_nanos() as u64
            }
            LatestMode::Wake => {
                std::thread::sleep(WAKE_GAP);
                let t0 = sys::shared_clock_ns();
                ping.set(&msg).map_err(err)?;
                spin_until_changed(&pong);
                pong.get_into(&mut buf).map_err(err)?;
                let t1 = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
                // One way, doubled so that halving gives it back.
                2 * t1.saturating_sub(t0)
            }
        };
        if buf.len() != job.size {
            return Err(bad(format!(
                "answer of {} bytes, sent {}",
                buf.len(),
                job.size
            )));
        }
        if i >= job.warmup {
            hist.saturating_record(sample.max(1));
        }
    }
    child.finish()?;
    drop((ping, pong));
    let (a, b) = names(job);
    memlane::remove(Some(&job.dir), &a).map_err(err)?;
    memlane::remove(Some(&job.dir), &b).map_err(err)?;
    Ok(LatencyResult::from_round_trips(job, &hist))
}

/// Runs a `latest-spin` or `latest-wake` job as the child: prints `ready`
/// once both slots are open, then answers every value.
///
/// # Errors
///
/// Any failure of the slots.
pub fn serve(mode: LatestMode, job: &Job) -> io::Result<()> {
    use std::io::Write;
    proc::die_with_parent();
    pin_to_cpu(1);
    let (ping, pong) = names(job);
    let mut ping = open(&job.dir, &ping)?;
    let mut pong = open(&job.dir, &pong)?;
    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut buf = Vec::with_capacity(job.size);
    for _ in 0..job.warmup + job.count {
        match mode {
            LatestMode::Spin => spin_until_changed(&ping),
            LatestMode::Wake => ping.wait(),
        }
        ping.get_into(&mut buf).map_err(err)?;
        if mode == LatestMode::Wake && buf.len() >= 8 {
            let now = sys::shared_clock_ns();
            buf[..8].copy_from_slice(&now.to_le_bytes());
        }
        pong.set(&buf).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names() {
        assert_eq!(LatestMode::from_name("latest-spin"), Some(LatestMode::Spin));
        assert_eq!(LatestMode::from_name("latest-wake"), Some(LatestMode::Wake));
        assert_eq!(LatestMode::from_name("memlane-spin"), None);
    }

    /// Three rows per size, in order, and nothing left in the directory
    /// (figures are never asserted).
    #[test]
    fn ops_reports_every_operation_and_cleans_up() {
        let dir = crate::TempDir::new("latest-ops-test").unwrap();
        for size in [8, 64, 4096] {
            let rows = ops(dir.path(), &format!("t{size}"), size, 50, 2).unwrap();
            let names: Vec<&str> = rows.iter().map(|r| r.op.as_str()).collect();
            assert_eq!(names, ["copy", "latest-get", "latest-set"]);
            for r in &rows {
                assert_eq!((r.size, r.ops, r.rounds), (size, 50, 2));
                assert!(r.ns_per_op.is_finite() && r.ns_per_op >= 0.0);
            }
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

//! Two transports measured in one pair of processes, in alternating blocks
//! of round trips: the ratio of their latencies as the machine was at each
//! moment.
//!
//! Separate jobs, even interleaved seconds apart, compare a transport
//! measured in one state of a shared host with another measured in
//! another: the virtual machines these benchmarks run on change speed
//! (a cache-line round trip of 130 ns one minute, 400 ns the next), and a
//! ratio of two such figures says more about the host than about the
//! transports. A paired job sets up both transports between the same two
//! processes and alternates between them every `block` round trips (a few
//! hundred microseconds), so that each block of B sits between blocks of A
//! measured moments before and after. Each pair of blocks gives one ratio
//! (B's median round trip over A's); the result is the median of those
//! ratios, with its quartiles, beside each transport's overall figures.
//!
//! The job's transport names both: `paired:A:B:BLOCK` (see [`name`]); A
//! and B are this crate's floors ([`Floor`]) or memlane's channels
//! ([`Memlane`]).
//!
//! Throughput is paired the same way ([`run_throughput`]): blocks of
//! `BLOCK` messages sent one way, each timed from its first send until the
//! child says it has the block's last message; each pair of blocks gives
//! B's messages/s over A's. Only transports that queue every message take
//! part (`floor-ring` and memlane's lossless modes: [`queues_messages`]).

use std::io;

use crate::floor::Floor;
use crate::lane::Memlane;
use crate::stats::{histogram, LatencyResult, ThroughputResult};
use crate::{bad, echo, pin_to_cpu, trip, ChildProc, Job, Launcher, Link, Transport, Workload};

/// Round trips per block unless the name says otherwise.
pub const DEFAULT_BLOCK: u64 = 2000;

/// Messages per block of a paired throughput job, the default of
/// `memlane-compare --paired-throughput` (a few ms per block here).
pub const DEFAULT_MESSAGE_BLOCK: u64 = 100_000;

/// What a paired job measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairedResult {
    /// A's one-way latency over all its blocks.
    pub a: LatencyResult,
    /// B's one-way latency over all its blocks.
    pub b: LatencyResult,
    /// Round trips per block.
    pub block: u64,
    /// B's median round trip over A's, for each pair of blocks, in order.
    pub block_ratios: Vec<f64>,
    /// The median of `block_ratios`.
    pub ratio_median: f64,
    /// Their first and third quartiles.
    pub ratio_quartiles: (f64, f64),
    /// The same ratio of each pair of blocks from their mean round trips
    /// (of the round trips up to each block's 99th percentile), the median
    /// of those: finer than the medians', which move in the steps in which
    /// a busy-polling receiver sees a message arrive.
    pub mean_ratio_median: f64,
}

/// What a paired throughput job measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairedThroughputResult {
    /// A's throughput over all its blocks.
    pub a: ThroughputResult,
    /// B's throughput over all its blocks.
    pub b: ThroughputResult,
    /// Messages per block.
    pub block: u64,
    /// B's messages/s over A's, for each pair of blocks, in order (higher
    /// is better for B).
    pub block_ratios: Vec<f64>,
    /// The median of `block_ratios`.
    pub ratio_median: f64,
    /// Their first and third quartiles.
    pub ratio_quartiles: (f64, f64),
}

/// Whether the transport named `name` queues every message sent (so that
/// blocks of them can be sent back to back and all received): the
/// minimal ring and memlane's lossless modes. The other floors hold one
/// message at a time, and a lossy subscriber may lose some.
///
/// # Examples
///
/// ```
/// use memlane_benchkit::paired::queues_messages;
/// assert!(queues_messages("floor-ring") && queues_messages("memlane-block"));
/// assert!(!queues_messages("floor-spin") && !queues_messages("memlane-lossy"));
/// ```
pub fn queues_messages(name: &str) -> bool {
    Floor::from_name(name) == Some(Floor::Ring)
        || Memlane::from_name(name).is_some_and(|m| m != Memlane::Lossy)
}

/// The transport name of a paired job: `paired:A:B:BLOCK`.
///
/// # Examples
///
/// ```
/// let name = memlane_benchkit::paired::name("floor-spin", "memlane-spin", 2000);
/// assert_eq!(name, "paired:floor-spin:memlane-spin:2000");
/// assert!(memlane_benchkit::paired::is_paired(&name));
/// ```
pub fn name(a: &str, b: &str, block: u64) -> String {
    format!("paired:{a}:{b}:{block}")
}

/// Whether `transport` names a paired job.
pub fn is_paired(transport: &str) -> bool {
    transport.starts_with("paired:")
}

/// A's name, B's name and the block size of a paired job's transport.
fn parse(transport: &str) -> io::Result<(&str, &str, u64)> {
    let rest = transport
        .strip_prefix("paired:")
        .ok_or_else(|| bad(format!("{transport} is not a paired job")))?;
    let mut parts = rest.split(':');
    let (Some(a), Some(b), Some(block), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!("{transport}: expected paired:A:B:BLOCK")));
    };
    let block: u64 = block
        .parse()
        .ok()
        .filter(|&n| n >= 10)
        .ok_or_else(|| bad(format!("{transport}: the block is at least 10 round trips")))?;
    Ok((a, b, block))
}

/// The job of one side: its own transport and files.
fn side(job: &Job, transport: &str, which: &str) -> Job {
    Job {
        transport: transport.to_string(),
        tag: format!("{}-{which}", job.tag),
        ..job.clone()
    }
}

/// Calls `$f::<A, B>(&a, &b, $args...)` with the transports A and B named
/// `$a` and `$b` (each a floor or a memlane mode): one instance per
/// combination, so that neither side pays for a dynamic dispatch.
macro_rules! with_pair {
    ($a:expr, $b:expr, $f:ident($($arg:expr),*)) => {{
        let (a, b) = ($a, $b);
        match (Floor::from_name(a), Memlane::from_name(a), Floor::from_name(b), Memlane::from_name(b)) {
            (Some(x), _, Some(y), _) => $f(&x, &y, $($arg),*),
            (Some(x), _, _, Some(y)) => $f(&x, &y, $($arg),*),
            (_, Some(x), Some(y), _) => $f(&x, &y, $($arg),*),
            (_, Some(x), _, Some(y)) => $f(&x, &y, $($arg),*),
            _ => Err(bad(format!(
                "a paired job compares two of the floors and memlane's modes, not {a} and {b}"
            ))),
        }
    }};
}

/// Runs a paired latency job as the parent (`job.transport` as [`name`]
/// makes it; `job.count` round trips in all, half on each transport).
///
/// # Errors
///
/// A malformed name, an unknown transport, a throughput job, or any
/// failure of the transports or the child.
pub fn run(launcher: &Launcher, job: &Job) -> io::Result<PairedResult> {
    let (a, b, block) = checked(job, Workload::Latency, "round trip")?;
    with_pair!(a, b, run_pair(launcher, job, a, b, block))
}

/// A's name, B's name and the block of a paired job of `workload`, whose
/// `count` (of `unit`s: round trips, messages) holds a pair of blocks.
///
/// # Errors
///
/// Another workload, a malformed name, or too few for two blocks.
fn checked<'j>(
    job: &'j Job,
    workload: Workload,
    unit: &str,
) -> io::Result<(&'j str, &'j str, u64)> {
    if job.workload != workload {
        return Err(bad(format!(
            "{} is a {:?} job; this runs {workload:?} jobs (paired::run for latency, \
             paired::run_throughput for throughput)",
            job.transport, job.workload
        )));
    }
    let (a, b, block) = parse(&job.transport)?;
    if job.count < 2 * block {
        return Err(bad(format!(
            "a paired job of {} {unit}s holds no pair of {block}-{} blocks",
            job.count,
            unit.replace(' ', "-")
        )));
    }
    Ok((a, b, block))
}

#[allow(clippy::too_many_arguments)]
fn run_pair<A: Transport, B: Transport>(
    ta: &A,
    tb: &B,
    launcher: &Launcher,
    job: &Job,
    a: &str,
    b: &str,
    block: u64,
) -> io::Result<PairedResult> {
    let (ja, jb) = (side(job, a, "a"), side(job, b, "b"));
    let (mut la, mut lb, child) = connect(ta, tb, launcher, job, &ja, &jb)?;
    let msg = crate::payload(job.size);
    let mut buf = vec![0u8; job.size.max(1)];
    for _ in 0..job.warmup {
        trip(&mut la, &msg, &mut buf)?;
        trip(&mut lb, &msg, &mut buf)?;
    }
    let (mut ha, mut hb, mut blk) = (histogram(), histogram(), histogram());
    let (mut ratios, mut mean_ratios) = (Vec::new(), Vec::new());
    let (mut a_median, mut a_mean) = (0, 0.0);
    for i in 0..blocks(job.count, block) {
        blk.reset();
        for _ in 0..block {
            let rt = if i % 2 == 0 {
                trip(&mut la, &msg, &mut buf)?
            } else {
                trip(&mut lb, &msg, &mut buf)?
            };
            blk.saturating_record(rt);
        }
        let (median, mean) = (blk.value_at_quantile(0.5), trimmed_mean(&blk));
        if i % 2 == 0 {
            ha.add(&blk).map_err(io::Error::other)?;
            (a_median, a_mean) = (median, mean);
        } else {
            hb.add(&blk).map_err(io::Error::other)?;
            ratios.push(median as f64 / a_median.max(1) as f64);
            mean_ratios.push(mean / a_mean.max(1.0));
        }
    }
    child.finish()?;
    let (ratio_median, ratio_quartiles) = median_and_quartiles(&ratios);
    let (mean_ratio_median, _) = median_and_quartiles(&mean_ratios);
    Ok(PairedResult {
        a: LatencyResult::from_round_trips(&ja, &ha),
        b: LatencyResult::from_round_trips(&jb, &hb),
        block,
        block_ratios: ratios,
        ratio_median,
        ratio_quartiles,
        mean_ratio_median,
    })
}

/// Both sides' parent links (A's side `ja`, B's `jb`) and the child, once
/// it said it is ready. A's set-up starts the child through B's, so that
/// both sides' files exist before the child opens them.
fn connect<A: Transport, B: Transport>(
    ta: &A,
    tb: &B,
    launcher: &Launcher,
    job: &Job,
    ja: &Job,
    jb: &Job,
) -> io::Result<(A::L, B::L, ChildProc)> {
    let mut link_b = None;
    let mut spawn_b = || -> io::Result<ChildProc> {
        let (l, child) = tb.parent(jb, &mut || launcher.spawn(job))?;
        link_b = Some(l);
        Ok(child)
    };
    let (la, mut child) = ta.parent(ja, &mut spawn_b)?;
    let lb = link_b.ok_or_else(|| bad("paired job: B's side was not set up"))?;
    child.expect_line("ready")?;
    Ok((la, lb, child))
}

/// Runs a paired throughput job as the parent (`job.transport` as
/// [`name`] makes it; `job.count` messages in all, half on each transport,
/// in blocks; `job.warmup` more on each before).
///
/// # Errors
///
/// A malformed name, a transport that does not queue messages (see
/// [`queues_messages`]), a latency job, or any failure of the transports
/// or the child.
pub fn run_throughput(launcher: &Launcher, job: &Job) -> io::Result<PairedThroughputResult> {
    let (a, b, block) = checked(job, Workload::Throughput, "message")?;
    if let Some(t) = [a, b].into_iter().find(|t| !queues_messages(t)) {
        return Err(bad(format!(
            "{t} does not queue messages: paired throughput takes floor-ring and memlane's \
             lossless modes"
        )));
    }
    with_pair!(a, b, run_pair_throughput(launcher, job, a, b, block))
}

#[allow(clippy::too_many_arguments)]
fn run_pair_throughput<A: Transport, B: Transport>(
    ta: &A,
    tb: &B,
    launcher: &Launcher,
    job: &Job,
    a: &str,
    b: &str,
    block: u64,
) -> io::Result<PairedThroughputResult> {
    let (ja, jb) = (side(job, a, "a"), side(job, b, "b"));
    let (mut la, mut lb, mut child) = connect(ta, tb, launcher, job, &ja, &jb)?;
    let msg = crate::payload(job.size);
    for _ in 0..job.warmup {
        la.send(&msg)?;
    }
    for _ in 0..job.warmup {
        lb.send(&msg)?;
    }
    child.expect_line("warm")?;
    let (mut ta_total, mut tb_total) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    let (mut ratios, mut a_rate) = (Vec::new(), 0.0);
    for i in 0..blocks(job.count, block) {
        let t0 = std::time::Instant::now();
        for _ in 0..block {
            if i % 2 == 0 {
                la.send(&msg)?;
            } else {
                lb.send(&msg)?;
            }
        }
        child.expect_line("block")?;
        let took = t0.elapsed();
        let rate = block as f64 / took.as_secs_f64().max(1e-9);
        if i % 2 == 0 {
            ta_total += took;
            a_rate = rate;
        } else {
            tb_total += took;
            ratios.push(rate / a_rate);
        }
    }
    drop((la, lb));
    child.finish()?;
    let per_side = blocks(job.count, block) / 2 * block;
    let (ratio_median, ratio_quartiles) = median_and_quartiles(&ratios);
    Ok(PairedThroughputResult {
        a: ThroughputResult::new(
            &Job {
                count: per_side,
                ..ja
            },
            ta_total,
        ),
        b: ThroughputResult::new(
            &Job {
                count: per_side,
                ..jb
            },
            tb_total,
        ),
        block,
        block_ratios: ratios,
        ratio_median,
        ratio_quartiles,
    })
}

/// The mean of the values of `h` up to its 99th percentile.
fn trimmed_mean(h: &hdrhistogram::Histogram<u64>) -> f64 {
    let limit = h.value_at_quantile(0.99);
    let (mut sum, mut n) = (0.0, 0u64);
    for v in h.iter_recorded() {
        if v.value_iterated_to() <= limit {
            sum += v.value_iterated_to() as f64 * v.count_at_value() as f64;
            n += v.count_at_value();
        }
    }
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// Blocks of a job of `count` round trips: an even number, A's and B's in
/// turn.
fn blocks(count: u64, block: u64) -> u64 {
    count / block / 2 * 2
}

/// The median of `v` and its first and third quartiles (nearest rank);
/// NaN for none.
fn median_and_quartiles(v: &[f64]) -> (f64, (f64, f64)) {
    if v.is_empty() {
        return (f64::NAN, (f64::NAN, f64::NAN));
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    (at(0.5), (at(0.25), at(0.75)))
}

/// The child of a paired job: `Ok(false)` if `job` is not one.
///
/// # Errors
///
/// As for [`run`].
pub fn serve(job: &Job) -> io::Result<bool> {
    if !is_paired(&job.transport) {
        return Ok(false);
    }
    let (a, b, block) = parse(&job.transport)?;
    with_pair!(a, b, serve_pair(job, a, b, block))?;
    Ok(true)
}

fn serve_pair<A: Transport, B: Transport>(
    ta: &A,
    tb: &B,
    job: &Job,
    a: &str,
    b: &str,
    block: u64,
) -> io::Result<()> {
    use std::io::Write;
    crate::proc::die_with_parent();
    pin_to_cpu(1);
    let mut la = ta.child(&side(job, a, "a"))?;
    let mut lb = tb.child(&side(job, b, "b"))?;
    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut buf = vec![0u8; job.size.max(1)];
    if job.workload == Workload::Throughput {
        // Drains each block and says so; the parent times the block.
        for _ in 0..job.warmup {
            la.recv(&mut buf)?;
        }
        for _ in 0..job.warmup {
            lb.recv(&mut buf)?;
        }
        writeln!(out, "warm")?;
        out.flush()?;
        for i in 0..blocks(job.count, block) {
            for _ in 0..block {
                if i % 2 == 0 {
                    la.recv(&mut buf)?;
                } else {
                    lb.recv(&mut buf)?;
                }
            }
            writeln!(out, "block")?;
            out.flush()?;
        }
        return Ok(());
    }
    for _ in 0..job.warmup {
        echo(&mut la, &mut buf)?;
        echo(&mut lb, &mut buf)?;
    }
    for i in 0..blocks(job.count, block) {
        for _ in 0..block {
            if i % 2 == 0 {
                echo(&mut la, &mut buf)?;
            } else {
                echo(&mut lb, &mut buf)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_ones_are_refused() {
        let n = name("floor-spin", "memlane-spin", 500);
        assert_eq!(parse(&n).unwrap(), ("floor-spin", "memlane-spin", 500));
        for bad in [
            "paired:floor-spin:memlane-spin",
            "paired:floor-spin:memlane-spin:5",
            "paired:a:b:c:d",
            "floor-spin",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn blocks_come_in_pairs() {
        assert_eq!(blocks(10_000, 2000), 4);
        assert_eq!(blocks(8_000, 2000), 4);
        assert_eq!(blocks(3_999, 2000), 0);
    }

    #[test]
    fn the_trimmed_mean_leaves_out_the_slowest_percent() {
        let mut h = histogram();
        for _ in 0..99 {
            h.record(100).unwrap();
        }
        h.record(1_000_000).unwrap();
        assert_eq!(trimmed_mean(&h), 100.0);
        assert!(trimmed_mean(&histogram()).is_nan());
    }

    #[test]
    fn median_and_quartiles_by_nearest_rank() {
        let (m, (q1, q3)) = median_and_quartiles(&[1.4, 1.0, 1.2, 1.1, 1.3]);
        assert_eq!((m, q1, q3), (1.2, 1.1, 1.3));
        assert!(median_and_quartiles(&[]).0.is_nan());
    }
}

//! `memlane bench`: memlane against the hardware floor of this machine,
//! measured by two processes (this one and a copy of it started as the
//! hidden `memlane bench-child`), pinned one per CPU where there are two.
//!
//! The workloads and transports are those of `memlane-benchkit` (and of
//! `docs/benchmarks/README.md`): one-way latency for 8 B, 1 KiB and 64 KiB
//! over the cache-line and futex floors and memlane busy-polling, blocking
//! and always-sleeping; throughput for 64 B and 1 MiB over the minimal
//! ring, one-process memcpy and memlane copying and loaning; and latency
//! with 1 and 8 subscribers; and the latest-value slot (`memlane::Latest`,
//! 64 B and 4 KiB values): a read of an unchanged value and a write in one
//! process next to a plain copy, and the write-to-reader latency across
//! the two processes with the reader polling (`latest-spin`) or asleep in
//! `wait` (`latest-wake`); and the request-response round trip
//! (`memlane-rpc`: one `Client::call`) next to the channel ping-pong it is
//! built on (`memlane-block`). Each memlane figure is shown next to its floor
//! as a ratio. The peers (pipes, sockets, iceoryx2) are in the
//! separate `memlane-compare` benchmark.
//!
//! On Windows the blocking floor `floor-futex` is a pair of named
//! auto-reset events (there is no cross-process futex); the report says so.
//!
//! Everything lives in a fresh private directory (inside `--dir` if given,
//! else under `/dev/shm`, or the temporary directory on Windows) that is
//! removed on every path out, SIGINT and SIGTERM included (they are acted
//! on between measurements; exit status 130 or 143; on Windows Ctrl-C and
//! Ctrl-Break, see `interrupt.rs`).

use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use memlane_benchkit::latest::{self, OpResult};
use memlane_benchkit::paired::PairedResult;
use memlane_benchkit::{
    floor, pin_to_cpu, run_builtin, Job, LatencyResult, Launcher, Outcome, TempDir,
    ThroughputResult, Workload,
};
use serde::Serialize;

use crate::cli::{BenchArgs, BenchChildArgs};
use crate::interrupt::Interrupts;
use crate::output;

/// A latency figure and the floor it is compared with.
#[derive(Debug, Serialize)]
struct LatencyRow {
    #[serde(flatten)]
    result: LatencyResult,
    /// The floor transport this row is compared with.
    floor: &'static str,
    /// p50 divided by the floor's p50 (lower is better).
    ratio_to_floor: Option<f64>,
    /// Where the floor is not `floor-spin` (`latest-wake` only): p50
    /// divided by `floor-spin`'s p50 at the same size.
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_to_spin_floor: Option<f64>,
    /// `ratio_to_floor` in each round, in the order the rounds ran (the
    /// row's figures are those of the round with the median ratio).
    round_ratios: Vec<f64>,
}

/// A one-process figure of the latest-value slot and its floor.
#[derive(Debug, Serialize)]
struct OpRow {
    #[serde(flatten)]
    result: OpResult,
    /// The floor this row is compared with (`copy`).
    floor: &'static str,
    /// ns per op divided by the floor's (lower is better).
    ratio_to_floor: Option<f64>,
}

/// A throughput figure and the floor it is compared with.
#[derive(Debug, Serialize)]
struct ThroughputRow {
    #[serde(flatten)]
    result: ThroughputResult,
    /// The floor transport this row is compared with.
    floor: &'static str,
    /// Messages/s divided by the floor's (higher is better).
    ratio_to_floor: Option<f64>,
    /// `ratio_to_floor` in each round, in the order the rounds ran (the
    /// row's figures are those of the round with the median ratio; empty
    /// for `memcpy`, measured once).
    round_ratios: Vec<f64>,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct Report {
    /// CPUs, CPU model, operating system and kernel.
    machine: Machine,
    /// What `floor-futex` sleeps and wakes with on this platform (a shared
    /// futex on Linux, named auto-reset events on Windows).
    blocking_floor: &'static str,
    /// Whether the two processes were pinned to CPUs 0 and 1.
    pinned: bool,
    /// Whether this was a `--quick` run.
    quick: bool,
    /// Rounds of every two-process measurement (`--rounds`).
    rounds: u32,
    latency: Vec<LatencyRow>,
    /// memlane-spin (B) and floor-spin (A) in alternating blocks between
    /// one pair of processes, at 8 B and 1 KiB: B / A per pair of blocks.
    paired: Vec<PairedResult>,
    throughput: Vec<ThroughputRow>,
    /// The latest-value slot in one process: `copy` (the floor),
    /// `latest-get` of an unchanged value, `latest-set` with nobody waiting.
    latest_ops: Vec<OpRow>,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpus: usize,
    cpu_model: String,
    /// `linux`, `windows`, ... (`std::env::consts::OS`).
    os: &'static str,
    /// The kernel release; `unknown` where it is not known (Windows).
    kernel: String,
}

fn machine() -> Machine {
    let cpu_model = memlane_benchkit::cpu_model().unwrap_or_else(|| "unknown".into());
    let kernel = memlane_benchkit::kernel().unwrap_or_else(|| "unknown".into());
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model,
        os: std::env::consts::OS,
        kernel,
    }
}

/// The operating system's name for a person.
fn os_name(os: &str) -> &str {
    match os {
        "linux" => "Linux",
        "windows" => "Windows",
        other => other,
    }
}

/// The floor a transport is measured against.
fn floor_of(transport: &str, workload: Workload) -> &'static str {
    match (transport, workload) {
        ("memcpy", _) => "memcpy",
        // The typed API is compared with the byte API it is built on.
        ("memlane-typed", _) => "memlane-spin",
        ("memlane-typed-loan", _) => "memlane-loan",
        (_, Workload::Throughput) => "floor-ring",
        // A call is compared with the channel ping-pong it is built on.
        ("memlane-rpc", _) => "memlane-block",
        ("memlane-block" | "memlane-sleep" | "latest-wake" | "floor-futex", _) => "floor-futex",
        _ => "floor-spin",
    }
}

/// The jobs of one round, in order (every round the same but for the tags).
fn plan(args: &BenchArgs, dir: &Path, round: u32) -> Vec<Job> {
    let (rt, msgs_small, msgs_large) = if args.quick {
        (1_000, 20_000, 20)
    } else {
        (40_000, 1_000_000, 1_500)
    };
    let rt = args.round_trips.unwrap_or(rt);
    let msgs_small = args.messages.unwrap_or(msgs_small);
    let msgs_large = args.messages.map_or(msgs_large, |m| m.clamp(1, msgs_large));
    let mut jobs = Vec::new();
    let mut job = |transport: &str, workload, size: usize, count: u64, subscribers: u32| {
        let n = jobs.len();
        jobs.push(Job {
            transport: transport.to_string(),
            workload,
            size,
            count,
            warmup: (count / 10).max(10),
            subscribers,
            dir: dir.to_path_buf(),
            tag: format!("r{round}b{n}"),
        });
    };
    for size in [8, 1024, 64 << 10] {
        let n = if size > 4096 { (rt / 4).max(1) } else { rt };
        for t in [
            "floor-spin",
            "floor-futex",
            "floor-lines",
            "memlane-spin",
            "memlane-block",
            "memlane-sleep",
            "memlane-lossy",
            "memlane-rpc",
        ] {
            job(t, Workload::Latency, size, n, 1);
        }
    }
    for (size, n) in [(64, msgs_small), (1 << 20, msgs_large)] {
        for t in [
            "floor-ring",
            "memlane-spin",
            "memlane-block",
            "memlane-loan",
        ] {
            job(t, Workload::Throughput, size, n, 1);
            // Typed 64 B values, next to the bytes' figures.
            if t == "memlane-spin" && size == 64 {
                job("memlane-typed", Workload::Throughput, size, n, 1);
            }
            if t == "memlane-loan" && size == 64 {
                job("memlane-typed-loan", Workload::Throughput, size, n, 1);
            }
        }
    }
    job("memlane-spin", Workload::Latency, 8, rt, 8);
    // The latest-value slot, with floors at its sizes. Each latest-wake
    // sample pauses latest::WAKE_GAP first, so it gets fewer.
    let wake = (rt / 50).clamp(rt.min(200), 5_000);
    for size in LATEST_SIZES {
        job("floor-spin", Workload::Latency, size, rt, 1);
        // As many wake-ups as latest-wake: a sleeping ping-pong is slow.
        job("floor-futex", Workload::Latency, size, wake, 1);
        job("latest-spin", Workload::Latency, size, rt, 1);
        job("latest-wake", Workload::Latency, size, wake, 1);
    }
    jobs
}

/// Leaves with the signal's status once a Ctrl-C (or SIGTERM) has come,
/// having cleared the progress bar and removed the run's private directory
/// (which `process::exit` would not: it runs no destructor). A Ctrl-C also
/// stops a job's child, which fails the job: so this is checked before a
/// job's error is reported.
fn leave_if_interrupted(interrupts: &Interrupts, bar: &ProgressBar, tmp: &TempDir) {
    if let Some(status) = interrupts.caught() {
        bar.finish_and_clear();
        let _ = std::fs::remove_dir_all(tmp.path());
        std::process::exit(status);
    }
}

/// The receivers of the paired jobs: a `try_recv` loop and a blocking
/// `recv` (which polls as tightly before it sleeps).
const PAIRED: [&str; 2] = ["memlane-spin", "memlane-block"];

/// The paired jobs: each of [`PAIRED`] against floor-spin at 8 B and 1 KiB,
/// twice a round's round trips each (half on each transport), in blocks of
/// a twentieth of that (at most `paired::DEFAULT_BLOCK`, at least 10).
fn paired_plan(args: &BenchArgs, dir: &Path) -> Vec<Job> {
    let rt = args
        .round_trips
        .unwrap_or(if args.quick { 1_000 } else { 40_000 });
    let count = (2 * rt).max(20);
    let block = (count / 20).clamp(10, memlane_benchkit::paired::DEFAULT_BLOCK);
    PAIRED
        .into_iter()
        .flat_map(|memlane| [8, 1024].map(|size| (memlane, size)))
        .map(|(memlane, size)| Job {
            transport: memlane_benchkit::paired::name("floor-spin", memlane, block),
            workload: Workload::Latency,
            size,
            count,
            warmup: (count / 10).max(10),
            subscribers: 1,
            dir: dir.to_path_buf(),
            tag: format!("paired-{memlane}-{size}"),
        })
        .collect()
}

/// The value sizes of the latest-value slot's figures.
const LATEST_SIZES: [usize; 2] = [64, 4096];

/// Runs the benchmark.
pub fn run(dir: Option<&Path>, args: BenchArgs) -> anyhow::Result<()> {
    let interrupts = Interrupts::install()?;
    let machine = machine();
    let pinned = machine.cpus >= 2 && pin_to_cpu(0);
    let tmp = match dir {
        Some(d) => TempDir::new_in(d, "memlane-bench"),
        None => TempDir::new("memlane-bench"),
    }
    .context("creating a private directory for the benchmark's channels")?;
    // The job names its directory; the child needs nothing else.
    let launcher = Launcher::current_exe(&["bench-child"]).context("finding this program")?;
    let rounds = args.rounds.max(1);
    let plans: Vec<Vec<Job>> = (0..rounds).map(|r| plan(&args, tmp.path(), r)).collect();

    let paired_jobs = paired_plan(&args, tmp.path());
    let bar = ProgressBar::new(
        plans.iter().map(Vec::len).sum::<usize>() as u64 + 4 + paired_jobs.len() as u64,
    );
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Per round, the results in the plan's order.
    let mut latency: Vec<Vec<LatencyResult>> = vec![Vec::new(); rounds as usize];
    let mut throughput: Vec<Vec<ThroughputResult>> = vec![Vec::new(); rounds as usize];
    // One process, no other party: measured once, not in rounds.
    let mut memcpy = Vec::new();
    for (size, n) in [(64, 200_000), (1 << 20, 200)] {
        bar.set_message(format!("memcpy {}", output::size(size as u64)));
        let n = if args.quick { n / 10 } else { n };
        memcpy.push(floor::memcpy(size, n));
        bar.inc(1);
    }
    let mut ops: Vec<OpResult> = Vec::new();
    for size in LATEST_SIZES {
        bar.set_message(format!("latest get/set {}", output::size(size as u64)));
        let (n, rounds) = if args.quick {
            (100_000, 3)
        } else {
            (1_000_000, 7)
        };
        let n = if size > 1024 { n / 10 } else { n };
        let tag = format!("ops{size}");
        ops.extend(
            latest::ops(tmp.path(), &tag, size, n, rounds)
                .context("measuring the latest-value slot's get and set")?,
        );
        leave_if_interrupted(&interrupts, &bar, &tmp);
    }
    bar.inc(2);
    let jobs = plans
        .iter()
        .enumerate()
        .flat_map(|(r, plan)| plan.iter().map(move |j| (r, j)));
    for (round, job) in jobs {
        let what = match job.workload {
            Workload::Latency => "latency",
            Workload::Throughput => "throughput",
        };
        bar.set_message(format!(
            "round {}/{rounds}: {} {what} {}{}",
            round + 1,
            job.transport,
            output::size(job.size as u64),
            if job.subscribers > 1 {
                format!(" x{} subscribers", job.subscribers)
            } else {
                String::new()
            }
        ));
        let outcome = run_builtin(&launcher, job);
        leave_if_interrupted(&interrupts, &bar, &tmp);
        let outcome = outcome.with_context(|| {
            format!(
                "{} {what} benchmark with {} messages",
                job.transport,
                output::size(job.size as u64)
            )
        })?;
        match outcome {
            Outcome::Latency(l) => latency[round].push(l),
            Outcome::Throughput(t) => throughput[round].push(t),
        }
        bar.inc(1);
    }
    let mut paired = Vec::new();
    for job in paired_jobs {
        let what = format!(
            "{} paired with floor-spin, {} messages",
            job.transport.split(':').nth(2).unwrap_or("memlane"),
            output::size(job.size as u64)
        );
        bar.set_message(what.clone());
        let outcome = memlane_benchkit::paired::run(&launcher, &job);
        leave_if_interrupted(&interrupts, &bar, &tmp);
        paired.push(outcome.with_context(|| what)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    drop(tmp);

    let latency = latency_rows(&latency);
    // memcpy first, as measured; then the rounds' rows.
    let throughput: Vec<ThroughputRow> = memcpy
        .into_iter()
        .map(|m| ThroughputRow {
            result: m,
            floor: "memcpy",
            ratio_to_floor: Some(1.0),
            round_ratios: Vec::new(),
        })
        .chain(throughput_rows(&throughput))
        .collect();
    let latest_ops: Vec<OpRow> = ops
        .iter()
        .map(|o| {
            let base = ops.iter().find(|b| b.op == "copy" && b.size == o.size);
            OpRow {
                result: o.clone(),
                floor: "copy",
                ratio_to_floor: base.map(|b| o.ns_per_op / b.ns_per_op),
            }
        })
        .collect();
    let report = Report {
        machine,
        blocking_floor: floor::BLOCKING_FLOOR,
        pinned,
        quick: args.quick,
        rounds,
        latency,
        paired,
        throughput,
        latest_ops,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Of the rounds' figures of one row, the round with the median ratio
/// (ties, as in a floor's own row, broken by `value`, so a floor row shows
/// its median round too); with an even count, the lower middle.
fn median_round(ratios: &[Option<f64>], values: &[f64]) -> usize {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = ratios[a].unwrap_or(f64::NAN);
        let rb = ratios[b].unwrap_or(f64::NAN);
        ra.total_cmp(&rb).then(values[a].total_cmp(&values[b]))
    });
    order[(order.len() - 1) / 2]
}

/// One row per latency job: its median round, with its ratios to the
/// floors of the same round. Every round ran the same plan, so a job has
/// the same index in each.
fn latency_rows(rounds: &[Vec<LatencyResult>]) -> Vec<LatencyRow> {
    let in_round = |r: usize, floor: &str, l: &LatencyResult| {
        rounds[r]
            .iter()
            .find(|b| b.transport == floor && b.size == l.size && b.subscribers == 1)
            .map(|b| l.p50_ns / b.p50_ns)
    };
    (0..rounds[0].len())
        .map(|i| {
            let l = &rounds[0][i];
            let floor = floor_of(&l.transport, Workload::Latency);
            let ratios: Vec<Option<f64>> = (0..rounds.len())
                .map(|r| in_round(r, floor, &rounds[r][i]))
                .collect();
            let p50s: Vec<f64> = rounds.iter().map(|round| round[i].p50_ns).collect();
            let m = median_round(&ratios, &p50s);
            let spin = floor != "floor-spin" && l.transport.starts_with("latest-");
            LatencyRow {
                result: rounds[m][i].clone(),
                floor,
                ratio_to_floor: ratios[m],
                ratio_to_spin_floor: spin
                    .then(|| in_round(m, "floor-spin", &rounds[m][i]))
                    .flatten(),
                round_ratios: ratios.into_iter().flatten().collect(),
            }
        })
        .collect()
}

/// One row per throughput job, as [`latency_rows`].
fn throughput_rows(rounds: &[Vec<ThroughputResult>]) -> Vec<ThroughputRow> {
    (0..rounds[0].len())
        .map(|i| {
            let t = &rounds[0][i];
            let floor = floor_of(&t.transport, Workload::Throughput);
            let ratios: Vec<Option<f64>> = rounds
                .iter()
                .map(|round| {
                    round
                        .iter()
                        .find(|b| b.transport == floor && b.size == t.size)
                        .map(|b| round[i].msgs_per_s / b.msgs_per_s)
                })
                .collect();
            let rates: Vec<f64> = rounds.iter().map(|round| round[i].msgs_per_s).collect();
            let m = median_round(&ratios, &rates);
            ThroughputRow {
                result: rounds[m][i].clone(),
                floor,
                ratio_to_floor: ratios[m],
                round_ratios: ratios.into_iter().flatten().collect(),
            }
        })
        .collect()
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
}

/// The lowest and highest of a row's round ratios (`-` with fewer than two).
fn range(ratios: &[f64]) -> String {
    if ratios.len() < 2 {
        return "-".into();
    }
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.2}-{hi:.2}")
}

fn print_table(r: &Report) {
    println!(
        "machine: {} CPUs ({}), {}{}; processes {}pinned one per CPU{}",
        r.machine.cpus,
        r.machine.cpu_model,
        os_name(r.machine.os),
        if r.machine.kernel == "unknown" {
            String::new()
        } else {
            format!(" {}", r.machine.kernel)
        },
        if r.pinned { "" } else { "not " },
        if r.quick {
            "; --quick: few iterations, rough figures"
        } else {
            ""
        }
    );
    if r.rounds > 1 {
        println!(
            "{} interleaved rounds: each row is its median round; ratio = the median of the \
             rounds' ratios to the floor of the same round, range = the lowest and highest",
            r.rounds
        );
    }
    println!(
        "\none-way latency (half a round trip); ratio = p50 / the floor's p50, lower is better"
    );
    println!(
        "{:<15}{:>9}{:>6}{:>11}{:>11}{:>11}{:>9}{:>12}  floor",
        "transport", "size", "subs", "p50", "p99", "p99.9", "ratio", "range"
    );
    for row in r.latency.iter().filter(|r| !is_latest(&r.result.transport)) {
        let l = &row.result;
        println!(
            "{:<15}{:>9}{:>6}{:>11}{:>11}{:>11}{:>9}{:>12}  {}",
            l.transport,
            output::size(l.size as u64),
            l.subscribers,
            output::nanos(l.p50_ns as u64),
            output::nanos(l.p99_ns as u64),
            output::nanos(l.p999_ns as u64),
            ratio(row.ratio_to_floor),
            range(&row.round_ratios),
            row.floor
        );
    }
    if let Some(first) = r.paired.first() {
        println!(
            "\npaired: memlane (a try_recv loop, memlane-spin; a blocking recv, memlane-block) and \
             floor-spin in turns of {} round trips between one pair of processes;\nratio = \
             memlane's median round trip / the floor's in each pair of turns: their median, and \
             quartiles (steady when the machine's speed is not)",
            first.block
        );
        println!(
            "{:<15}{:<9}{:>14}{:>14}{:>9}{:>15}{:>7}",
            "receiver", "size", "memlane p50", "floor p50", "ratio", "quartiles", "pairs"
        );
        for p in &r.paired {
            println!(
                "{:<15}{:<9}{:>14}{:>14}{:>9}{:>15}{:>7}",
                p.b.transport,
                output::size(p.b.size as u64),
                output::nanos(p.b.p50_ns as u64),
                output::nanos(p.a.p50_ns as u64),
                ratio(Some(p.ratio_median)),
                format!("{:.2}-{:.2}", p.ratio_quartiles.0, p.ratio_quartiles.1),
                p.block_ratios.len()
            );
        }
    }
    println!("\nthroughput, one direction; ratio = messages/s / the floor's, higher is better");
    println!(
        "{:<18}{:>9}{:>12}{:>10}{:>9}{:>12}  floor",
        "transport", "size", "M msgs/s", "GB/s", "ratio", "range"
    );
    for row in &r.throughput {
        let t = &row.result;
        println!(
            "{:<18}{:>9}{:>12.3}{:>10.2}{:>9}{:>12}  {}",
            t.transport,
            output::size(t.size as u64),
            t.msgs_per_s / 1e6,
            t.bytes_per_s / 1e9,
            ratio(row.ratio_to_floor),
            range(&row.round_ratios),
            row.floor
        );
    }
    println!(
        "\nmemlane-loan writes and reads 8 bytes of each message in place: its GB/s is \
         the size carried, not bytes copied."
    );
    println!(
        "memlane-typed sends and receives 64-byte values ([u64; 8]) with the typed API, \
         memlane-typed-loan loans them (writing and reading one word in place); their ratios \
         are to memlane-spin and memlane-loan, the byte API, in the same run."
    );
    println!("floor-futex sleeps and wakes with: {}.", r.blocking_floor);
    println!(
        "floor-lines is floor-spin in the shape of a ring (each message in the next slot of \
         1 MiB): its ratio is what moving through fresh cache lines costs on this machine."
    );
    print_latest(r);
}

fn is_latest(transport: &str) -> bool {
    transport.starts_with("latest-")
}

fn print_latest(r: &Report) {
    println!(
        "\nlatest-value slot (memlane::Latest), one process: ns per operation \
         (median of rounds); ratio = / the copy floor's, lower is better"
    );
    println!(
        "{:<15}{:>9}{:>11}{:>9}  floor",
        "operation", "size", "ns/op", "ratio"
    );
    for row in &r.latest_ops {
        let o = &row.result;
        println!(
            "{:<15}{:>9}{:>11.1}{:>9}  {}",
            o.op,
            output::size(o.size as u64),
            o.ns_per_op,
            ratio(row.ratio_to_floor),
            row.floor
        );
    }
    println!(
        "\nlatest-value slot, two processes: one-way latency from set to the reader \
         having copied the value out; ratios = p50 / the floor's p50"
    );
    println!(
        "{:<15}{:>9}{:>11}{:>11}{:>11}{:>12}{:>13}",
        "transport", "size", "p50", "p99", "p99.9", "/floor-spin", "/floor-futex"
    );
    let p50 = |t: &str, size: usize| {
        r.latency
            .iter()
            .find(|row| row.result.transport == t && row.result.size == size)
            .map(|row| row.result.p50_ns)
    };
    for row in r.latency.iter().filter(|r| is_latest(&r.result.transport)) {
        let l = &row.result;
        let over = |floor: &str| p50(floor, l.size).map(|f| l.p50_ns / f);
        println!(
            "{:<15}{:>9}{:>11}{:>11}{:>11}{:>12}{:>13}",
            l.transport,
            output::size(l.size as u64),
            output::nanos(l.p50_ns as u64),
            output::nanos(l.p99_ns as u64),
            output::nanos(l.p999_ns as u64),
            ratio(over("floor-spin")),
            // Polling is compared with polling only.
            ratio(over("floor-futex").filter(|_| l.transport == "latest-wake")),
        );
    }
    println!(
        "latest-spin: the reader polls version(), half a round trip (as floor-spin); \
         latest-wake: the reader sleeps in wait() (the writer pauses {} µs first), \
         one way, timed at both ends on a clock both processes share.",
        latest::WAKE_GAP.as_micros()
    );
}

/// Runs the child half of one benchmark job.
pub fn run_child(args: BenchChildArgs) -> anyhow::Result<()> {
    let job = Job::from_args(&args.job)?;
    if !memlane_benchkit::serve_builtin(&job)? {
        anyhow::bail!("unknown benchmark transport {}", job.transport);
    }
    Ok(())
}

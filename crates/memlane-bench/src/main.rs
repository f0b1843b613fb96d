//! `memlane-compare`: memlane against the hardware floor, pipes, Unix
//! sockets and iceoryx2, all measured in one run on this machine.
//!
//! ```sh
//! cargo run --release -p memlane-bench -- --out docs/benchmarks          # full run (a few minutes)
//! cargo run --release -p memlane-bench -- --out /tmp/bench --quick       # smoke test (seconds)
//! cargo run --release -p memlane-bench -- --contention   # N → 1 and 1 → N processes, with iceoryx2
//! cargo run --release -p memlane-bench -- --setup        # create/open/join/leave/remove, memory
//! ```
//!
//! It writes `RESULTS.md` (every figure with its ratio to the floor and to
//! each peer, and the issue's targets met or missed) and SVG plots into the
//! output directory. The workloads are described in `docs/benchmarks/README.md`
//! and in `memlane-benchkit`. The binary re-executes itself with `--child`
//! for the second process.

#![deny(unsafe_code)]

mod asyncs;
mod contention;
mod latest;
mod peers;
mod plot;
mod report;
mod setup;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use memlane_benchkit::latest::OpResult;
use memlane_benchkit::{
    floor, pin_to_cpu, run_latency, run_throughput, serve, serve_builtin, Job, LatencyResult,
    Launcher, Outcome, TempDir, ThroughputResult, Transport, Workload,
};

use peers::{Iox2, Iox2Rpc, Pipe, SeqPacket, UnixStreamT};

/// Transports in the latency tables, in display order.
pub const LATENCY_TRANSPORTS: &[&str] = &[
    "floor-spin",
    "floor-futex",
    "memlane-spin",
    "memlane-block",
    "memlane-sleep",
    "iox2-spin",
    "iox2-event",
    "memlane-rpc",
    "iox2-rpc",
    "pipe",
    "uds-stream",
    "uds-seqpacket",
];
/// Message sizes of the latency tables.
pub const LATENCY_SIZES: &[usize] = &[8, 1024, 64 << 10];
/// Transports in the throughput tables.
pub const THROUGHPUT_TRANSPORTS: &[&str] = &[
    "floor-ring",
    "memlane-spin",
    "memlane-block",
    "memlane-loan",
    "iox2-spin",
    "pipe",
    "uds-stream",
    "uds-seqpacket",
];
/// Message sizes of the throughput tables.
pub const THROUGHPUT_SIZES: &[usize] = &[64, 1 << 20];
/// Transports of the latency-versus-size sweep.
pub const SWEEP_TRANSPORTS: &[&str] = &[
    "floor-spin",
    "memlane-spin",
    "memlane-block",
    "iox2-spin",
    "pipe",
    "uds-stream",
];
/// Sizes of the sweep.
pub const SWEEP_SIZES: &[usize] = &[8, 64, 512, 4 << 10, 32 << 10, 256 << 10, 1 << 20];
/// Subscriber counts of the fan-out runs.
pub const FANOUT: &[u32] = &[1, 2, 4, 8];

/// Everything one run measured.
#[derive(Debug, Default)]
pub struct Results {
    /// The main latency table.
    pub latency: Vec<LatencyResult>,
    /// The throughput table (memcpy included).
    pub throughput: Vec<ThroughputResult>,
    /// Latency versus size.
    pub sweep: Vec<LatencyResult>,
    /// Fan-out latency (8 B).
    pub fanout_latency: Vec<LatencyResult>,
    /// Fan-out throughput (64 B).
    pub fanout_throughput: Vec<ThroughputResult>,
    /// The latest-value comparison, one process: ns per operation of
    /// [`latest::OPS`] at each of [`latest::SIZES`].
    pub latest: Vec<OpResult>,
    /// Whether the two processes were pinned to CPUs 0 and 1.
    pub pinned: bool,
    /// `--quick`.
    pub quick: bool,
    /// CPUs available to the run (before pinning).
    pub cpus: usize,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
}

struct Options {
    out: PathBuf,
    quick: bool,
}

fn usage() -> ExitCode {
    eprintln!("usage: memlane-compare [--out DIR] [--quick]");
    eprintln!("       memlane-compare --single TRANSPORT latency|throughput SIZE COUNT");
    eprintln!("  --out DIR   where RESULTS.md and the SVG plots go (default docs/benchmarks)");
    eprintln!("  --quick     far fewer iterations: a smoke test, not a measurement");
    eprintln!("  --single    run one job and print its result (e.g. under strace or perf stat)");
    eprintln!("       memlane-compare --paired A B SIZE COUNT [BLOCK]");
    eprintln!(
        "  --paired    latency of A and B (floors, memlane modes) in alternating blocks of BLOCK"
    );
    eprintln!(
        "              round trips (default 2000) between one pair of processes; prints B / A"
    );
    eprintln!("       memlane-compare --paired-throughput A B SIZE COUNT [BLOCK]");
    eprintln!("  --paired-throughput  the same for throughput: blocks of BLOCK messages (default");
    eprintln!(
        "              100000) one way; floor-ring and memlane's lossless modes; B / A msgs/s"
    );
    eprintln!("       memlane-compare --async [--quick]");
    eprintln!(
        "  --async     async one-way latency (tokio) next to blocking recv and the futex floor"
    );
    eprintln!("       memlane-compare --contention [--quick] [--messages N] [--only TEXT]");
    eprintln!(
        "  --contention  N publisher processes -> 1 subscriber and 1 -> N (N = 1, 2, 4), next to iceoryx2"
    );
    eprintln!("       memlane-compare --setup [--quick] [--reps N]");
    eprintln!(
        "  --setup     create/open/join/leave/remove costs and memory per channel, next to iceoryx2"
    );
    ExitCode::from(2)
}

/// The number after `flag` in `args`, if there is one.
fn number_after(args: &[String], flag: &str) -> Result<Option<u64>, String> {
    match args.iter().position(|a| a == flag) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{flag} takes a number")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return match child(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: benchmark child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some("--async") {
        let quick = args.iter().any(|a| a == "--quick");
        return exit_with(async_table(quick));
    }
    if let Some(mode @ ("--contention" | "--setup")) = args.first().map(String::as_str) {
        let quick = args.iter().any(|a| a == "--quick");
        let run = if mode == "--contention" {
            number_after(&args, "--messages")
                .map_err(io::Error::other)
                .and_then(|m| {
                    let only = args
                        .iter()
                        .position(|a| a == "--only")
                        .and_then(|i| args.get(i + 1));
                    contention::table(quick, m, only.map(String::as_str))
                })
        } else {
            number_after(&args, "--reps")
                .map_err(io::Error::other)
                .and_then(|r| setup::table(quick, r.map(|r| r as usize)))
        };
        return exit_with(run);
    }
    if args.first().map(String::as_str) == Some("--paired") {
        return exit_with(paired(&args[1..]));
    }
    if args.first().map(String::as_str) == Some("--paired-throughput") {
        return exit_with(paired_throughput(&args[1..]));
    }
    if args.first().map(String::as_str) == Some("--single") {
        return exit_with(single(&args[1..]));
    }
    let mut opts = Options {
        out: PathBuf::from("docs/benchmarks"),
        quick: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--out" => match it.next() {
                Some(d) => opts.out = PathBuf::from(d),
                None => return usage(),
            },
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    exit_with(run(&opts))
}

/// The exit status of a mode: success, or the error on standard error and
/// failure.
fn exit_with(r: io::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A number given on the command line.
fn number(s: &str) -> io::Result<u64> {
    s.parse::<u64>()
        .map_err(|_| memlane_benchkit::bad(format!("{s} is not a number")))
}

/// The job of `--single` or `--paired` in `dir`, with this process pinned
/// to CPU 0 where there are two (the child pins itself to CPU 1).
fn command_line_job(
    dir: &TempDir,
    transport: &str,
    workload: &str,
    size: &str,
    count: &str,
    warmup: u64,
) -> io::Result<Job> {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        pin_to_cpu(0);
    }
    Job::from_args(&[
        format!("transport={transport}"),
        format!("workload={workload}"),
        format!("size={}", number(size)?),
        format!("count={}", number(count)?),
        format!("warmup={warmup}"),
        "subscribers=1".to_string(),
        format!("dir={}", dir.path().display()),
        format!("tag=cmd-{}", std::process::id()),
    ])
}

/// One latency result as a line.
fn print_latency(l: &LatencyResult) {
    println!(
        "{} latency {} B x{}: p50 {:.0} ns, p99 {:.0} ns, p99.9 {:.0} ns",
        l.transport, l.size, l.round_trips, l.p50_ns, l.p99_ns, l.p999_ns
    );
}

/// `--single TRANSPORT WORKLOAD SIZE COUNT`: one job, its result on
/// standard output (for counting its system calls with `strace -c -f` or
/// `perf stat -e raw_syscalls:sys_enter`).
fn single(args: &[String]) -> io::Result<()> {
    let [transport, workload, size, count] = args else {
        return Err(memlane_benchkit::bad(
            "--single takes TRANSPORT latency|throughput SIZE COUNT",
        ));
    };
    let dir = TempDir::new("memlane-compare")?;
    let job = command_line_job(&dir, transport, workload, size, count, 100)?;
    let launcher = Launcher::current_exe(&["--child"])?;
    match run_job(&launcher, &job)? {
        Outcome::Latency(l) => print_latency(&l),
        Outcome::Throughput(t) => print_throughput(&t),
    }
    Ok(())
}

/// One throughput result as a line.
fn print_throughput(t: &ThroughputResult) {
    println!(
        "{} throughput {} B x{}: {:.3} M msgs/s, {:.2} GB/s",
        t.transport,
        t.size,
        t.messages,
        t.msgs_per_s / 1e6,
        t.bytes_per_s / 1e9
    );
}

/// `--paired A B SIZE COUNT [BLOCK]`: A and B in alternating blocks
/// between one pair of processes (`memlane_benchkit::paired`), B / A per
/// pair of blocks.
fn paired(args: &[String]) -> io::Result<()> {
    let (dir, job) = paired_job(
        args,
        "--paired",
        "latency",
        memlane_benchkit::paired::DEFAULT_BLOCK,
    )?;
    let launcher = Launcher::current_exe(&["--child"])?;
    let r = memlane_benchkit::paired::run(&launcher, &job)?;
    drop(dir);
    print_cpu();
    print_latency(&r.a);
    print_latency(&r.b);
    println!(
        "{} / {}: median {:.3} (quartiles {:.3}-{:.3}; of means {:.3}) over {} pairs of \
         {}-round-trip blocks",
        r.b.transport,
        r.a.transport,
        r.ratio_median,
        r.ratio_quartiles.0,
        r.ratio_quartiles.1,
        r.mean_ratio_median,
        r.block_ratios.len(),
        r.block
    );
    Ok(())
}

/// The job of `FLAG A B SIZE COUNT [BLOCK]` (`--paired`,
/// `--paired-throughput`) and the directory it runs in.
fn paired_job(
    args: &[String],
    flag: &str,
    workload: &str,
    default_block: u64,
) -> io::Result<(TempDir, Job)> {
    let (a, b, size, count, block) = match args {
        [a, b, size, count] => (a, b, size, count, None),
        [a, b, size, count, block] => (a, b, size, count, Some(block)),
        _ => {
            return Err(memlane_benchkit::bad(format!(
                "{flag} takes A B SIZE COUNT [BLOCK]"
            )))
        }
    };
    let block = block.map_or(Ok(default_block), |b| number(b))?;
    let dir = TempDir::new("memlane-compare")?;
    let transport = memlane_benchkit::paired::name(a, b, block);
    let job = command_line_job(&dir, &transport, workload, size, count, 1000)?;
    Ok((dir, job))
}

/// The CPU the figures come from, first line of a paired result.
fn print_cpu() {
    println!(
        "{}",
        memlane_benchkit::cpu_model().unwrap_or_else(|| "unknown CPU".into())
    );
}

/// `--paired-throughput A B SIZE COUNT [BLOCK]`: A and B in alternating
/// blocks of messages between one pair of processes, B / A messages/s per
/// pair of blocks.
fn paired_throughput(args: &[String]) -> io::Result<()> {
    let (dir, job) = paired_job(
        args,
        "--paired-throughput",
        "throughput",
        memlane_benchkit::paired::DEFAULT_MESSAGE_BLOCK,
    )?;
    let launcher = Launcher::current_exe(&["--child"])?;
    let r = memlane_benchkit::paired::run_throughput(&launcher, &job)?;
    drop(dir);
    print_cpu();
    for t in [&r.a, &r.b] {
        print_throughput(t);
    }
    println!(
        "{} / {} (messages/s): median {:.3} (quartiles {:.3}-{:.3}) over {} pairs of \
         {}-message blocks",
        r.b.transport,
        r.a.transport,
        r.ratio_median,
        r.ratio_quartiles.0,
        r.ratio_quartiles.1,
        r.block_ratios.len(),
        r.block
    );
    Ok(())
}

fn child(args: &[String]) -> io::Result<()> {
    let job = Job::from_args(args)?;
    if asyncs::is_async(&job.transport) {
        return asyncs::serve(&job);
    }
    if contention::is_contention(&job.transport) {
        return contention::serve(&job);
    }
    if serve_builtin(&job)? {
        return Ok(());
    }
    match job.transport.as_str() {
        "pipe" => serve(&Pipe, &job),
        "uds-stream" => serve(&UnixStreamT, &job),
        "uds-seqpacket" => serve(&SeqPacket, &job),
        "iox2-spin" => serve(&Iox2::Spin, &job),
        "iox2-event" => serve(&Iox2::Event, &job),
        "iox2-rpc" => serve(&Iox2Rpc, &job),
        other => Err(memlane_benchkit::bad(format!("unknown transport {other}"))),
    }
}

/// Runs one job of any transport.
fn run_job(launcher: &Launcher, job: &Job) -> io::Result<Outcome> {
    fn go<T: Transport>(t: &T, launcher: &Launcher, job: &Job) -> io::Result<Outcome> {
        Ok(match job.workload {
            Workload::Latency => Outcome::Latency(run_latency(t, launcher, job)?),
            Workload::Throughput => Outcome::Throughput(run_throughput(t, launcher, job)?),
        })
    }
    match job.transport.as_str() {
        "pipe" => go(&Pipe, launcher, job),
        "uds-stream" => go(&UnixStreamT, launcher, job),
        "uds-seqpacket" => go(&SeqPacket, launcher, job),
        "iox2-spin" => go(&Iox2::Spin, launcher, job),
        "iox2-event" => go(&Iox2::Event, launcher, job),
        "iox2-rpc" => go(&Iox2Rpc, launcher, job),
        _ => memlane_benchkit::run_builtin(launcher, job),
    }
}

/// `--async`: the async latency table (8 B and 1 KiB), each figure the
/// median of interleaved rounds, with its ratio to the futex floor of the
/// same run; printed as markdown.
fn async_table(quick: bool) -> io::Result<()> {
    let dir = TempDir::new("memlane-compare")?;
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        pin_to_cpu(0);
    }
    let launcher = Launcher::current_exe(&["--child"])?;
    let (count, rounds) = if quick { (300, 1) } else { (20_000, 3) };
    let sizes = [8usize, 1024];
    let mut rows: Vec<Vec<LatencyResult>> =
        vec![Vec::new(); sizes.len() * asyncs::TRANSPORTS.len()];
    let mut n = 0;
    for _ in 0..rounds {
        for (si, &size) in sizes.iter().enumerate() {
            for (ti, t) in asyncs::TRANSPORTS.iter().enumerate() {
                n += 1;
                let job = Job {
                    transport: t.to_string(),
                    workload: Workload::Latency,
                    size,
                    count,
                    warmup: count / 10,
                    subscribers: 1,
                    dir: dir.path().to_path_buf(),
                    tag: format!("a{n}-{}", std::process::id()),
                };
                let r = if asyncs::is_async(t) {
                    asyncs::run(&launcher, &job)?
                } else {
                    match run_job(&launcher, &job)? {
                        Outcome::Latency(l) => l,
                        Outcome::Throughput(_) => unreachable!("a latency job"),
                    }
                };
                eprintln!(
                    "{t:<14} {size:>5} B  p50 {:>8.0} ns  p99 {:>8.0} ns",
                    r.p50_ns, r.p99_ns
                );
                rows[si * asyncs::TRANSPORTS.len() + ti].push(r);
            }
        }
    }
    println!(
        "CPU: {}; kernel {}; {} rounds of {count} round trips, medians",
        memlane_benchkit::cpu_model().unwrap_or_else(|| "unknown".into()),
        memlane_benchkit::kernel().unwrap_or_else(|| "unknown".into()),
        rounds
    );
    println!();
    println!(
        "| transport | size | one-way p50 | p99 | p50 / {} |",
        floor::BLOCKING_FLOOR
    );
    println!("|---|---|---|---|---|");
    for (si, &size) in sizes.iter().enumerate() {
        let med = |ti: usize| {
            median_by(rows[si * asyncs::TRANSPORTS.len() + ti].clone(), |r| {
                r.p50_ns
            })
            .expect("one round at least")
        };
        let floor_p50 = med(0).p50_ns;
        for (ti, t) in asyncs::TRANSPORTS.iter().enumerate() {
            let r = med(ti);
            println!(
                "| {t} | {size} B | {:.2} µs | {:.2} µs | {:.2}× |",
                r.p50_ns / 1e3,
                r.p99_ns / 1e3,
                r.p50_ns / floor_p50
            );
        }
    }
    Ok(())
}

/// Round trips for a latency run of `size` bytes.
fn round_trips(size: usize, quick: bool, sweep: bool) -> (u64, u64) {
    let n: u64 = if !sweep && size <= 64 << 10 {
        100_000
    } else if size <= 4 << 10 {
        20_000
    } else if size <= 32 << 10 {
        5_000
    } else if size <= 256 << 10 {
        1_000
    } else {
        400
    };
    if quick {
        ((n / 100).max(100), 20)
    } else {
        (n, (n / 10).max(100))
    }
}

/// Warm-up round trips: at least the job's own, and (outside `--quick`)
/// enough for two laps of a ring of the job's capacity, so that first-touch
/// page faults of the ring are not measured.
fn warmup_laps(job: &Job) -> u64 {
    if job.count < 10_000 && job.warmup < 100 {
        return job.warmup; // --quick
    }
    let record = (job.size as u64 + 16).next_multiple_of(16);
    job.warmup.max(2 * job.ring_capacity() / record)
}

/// Interleaved rounds of the throughput jobs (each transport once per
/// round); each figure is the median of its rounds. The host moves the
/// floor by 2x or more from one minute to the next, so a single run per
/// transport could put a floor and memlane in different host states.
pub(crate) fn throughput_rounds(quick: bool) -> usize {
    if quick {
        1
    } else {
        3
    }
}

/// Interleaved rounds of a main-table latency job: five for the
/// busy-polling transports (a few hundred milliseconds each, and a host
/// that changes state between two of them would otherwise set a floor
/// against a memlane figure measured in another state), one for those
/// that sleep (seconds each, and a kernel wake-up dwarfs the host's
/// states).
pub(crate) fn latency_rounds(transport: &str, quick: bool) -> usize {
    let busy = transport.ends_with("-spin") || transport == "memlane-block";
    if quick || !busy {
        1
    } else {
        5
    }
}

/// The round whose `key` is the median (`None` for no rounds).
fn median_by<T>(mut rounds: Vec<T>, key: impl Fn(&T) -> f64) -> Option<T> {
    rounds.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let mid = rounds.len() / 2;
    rounds.into_iter().nth(mid)
}

/// Messages for a throughput run of `size` bytes.
fn messages(size: usize, quick: bool) -> u64 {
    let n: u64 = if size <= 4096 { 2_000_000 } else { 3_000 };
    if quick {
        (n / 100).max(50)
    } else {
        n
    }
}

struct Runner<'a> {
    launcher: Launcher,
    dir: &'a TempDir,
    next: u32,
    done: usize,
    total: usize,
    /// Set by SIGINT/SIGTERM: stop after the current job (the private
    /// directory is then removed on the way out).
    signal: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Runner<'_> {
    fn job(
        &mut self,
        transport: &str,
        workload: Workload,
        size: usize,
        count: u64,
        warmup: u64,
        subs: u32,
    ) -> Job {
        self.next += 1;
        Job {
            transport: transport.to_string(),
            workload,
            size,
            count,
            warmup,
            subscribers: subs,
            dir: self.dir.path().to_path_buf(),
            tag: format!("j{}-{}", self.next, std::process::id()),
        }
    }

    /// A latency job, its warm-up at least two laps of the ring (see
    /// [`warmup_laps`]).
    fn latency_job(&mut self, transport: &str, size: usize, n: u64, w: u64, subs: u32) -> Job {
        let job = self.job(transport, Workload::Latency, size, n, w, subs);
        Job {
            warmup: warmup_laps(&job),
            ..job
        }
    }

    /// The latest-value comparison at `size` (one process, no child).
    fn latest(&mut self, size: usize, quick: bool) -> io::Result<Vec<OpResult>> {
        self.done += 1;
        if self.signal.load(std::sync::atomic::Ordering::Relaxed) != 0 {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        let (count, rounds) = latest::counts(size, quick);
        eprint!(
            "[{:>3}/{}] {:<14} {:<10} {:>8} B    ... ",
            self.done, self.total, "latest value", "get/set", size
        );
        let t0 = std::time::Instant::now();
        self.next += 1;
        let tag = format!("j{}-{}", self.next, std::process::id());
        let rows = latest::measure(self.dir.path(), &tag, size, count, rounds)
            .map_err(|e| io::Error::other(format!("latest value {size} B: {e}")))?;
        for x in &rows {
            eprint!("{} {:.1} ns  ", x.op, x.ns_per_op);
        }
        eprintln!("({:.1}s)", t0.elapsed().as_secs_f64());
        Ok(rows)
    }

    fn run(&mut self, job: &Job) -> io::Result<Outcome> {
        self.done += 1;
        if self.signal.load(std::sync::atomic::Ordering::Relaxed) != 0 {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        eprint!(
            "[{:>3}/{}] {:<14} {:<10} {:>8} B x{:<2} ... ",
            self.done,
            self.total,
            job.transport,
            match job.workload {
                Workload::Latency => "latency",
                Workload::Throughput => "throughput",
            },
            job.size,
            job.subscribers
        );
        let t0 = std::time::Instant::now();
        let out = run_job(&self.launcher, job).map_err(|e| {
            io::Error::other(format!(
                "{} {:?} {} B: {e}",
                job.transport, job.workload, job.size
            ))
        })?;
        match &out {
            Outcome::Latency(l) => eprintln!(
                "p50 {:>10.0} ns  p99 {:>10.0} ns  ({:.1}s)",
                l.p50_ns,
                l.p99_ns,
                t0.elapsed().as_secs_f64()
            ),
            Outcome::Throughput(t) => eprintln!(
                "{:>8.2} M msg/s  {:>6.2} GB/s  ({:.1}s)",
                t.msgs_per_s / 1e6,
                t.bytes_per_s / 1e9,
                t.seconds
            ),
        }
        Ok(out)
    }
}

fn run(opts: &Options) -> io::Result<()> {
    let start = std::time::Instant::now();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = cpus >= 2 && pin_to_cpu(0);
    let dir = TempDir::new("memlane-compare")?;
    let lat_jobs: usize = LATENCY_SIZES
        .iter()
        .map(|&s| {
            LATENCY_TRANSPORTS
                .iter()
                .filter(|t| peers::supports(t, Workload::Latency, s))
                .map(|t| latency_rounds(t, opts.quick))
                .sum::<usize>()
        })
        .sum();
    let thr_jobs: usize = THROUGHPUT_SIZES
        .iter()
        .map(|&s| {
            THROUGHPUT_TRANSPORTS
                .iter()
                .filter(|t| peers::supports(t, Workload::Throughput, s))
                .count()
        })
        .sum();
    let sweep_jobs: usize = SWEEP_SIZES
        .iter()
        .map(|&s| {
            SWEEP_TRANSPORTS
                .iter()
                .filter(|t| peers::supports(t, Workload::Latency, s))
                .count()
        })
        .sum();
    let signal = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_usize(sig, std::sync::Arc::clone(&signal), sig as usize)?;
    }
    let mut r = Runner {
        signal,
        launcher: Launcher::current_exe(&["--child"])?,
        dir: &dir,
        next: 0,
        done: 0,
        total: latest::SIZES.len()
            + lat_jobs
            + throughput_rounds(opts.quick) * thr_jobs
            + sweep_jobs
            + 2 * FANOUT.len(),
    };
    let mut res = Results {
        pinned,
        cpus,
        quick: opts.quick,
        ..Results::default()
    };
    for &size in latest::SIZES {
        res.latest.extend(r.latest(size, opts.quick)?);
    }
    for &size in LATENCY_SIZES {
        let transports: Vec<&str> = LATENCY_TRANSPORTS
            .iter()
            .copied()
            .filter(|t| peers::supports(t, Workload::Latency, size))
            .collect();
        let mut rounds: Vec<Vec<LatencyResult>> = vec![Vec::new(); transports.len()];
        let most = transports
            .iter()
            .map(|t| latency_rounds(t, opts.quick))
            .max()
            .unwrap_or(1);
        for round in 0..most {
            for (t, got) in transports.iter().zip(&mut rounds) {
                if round >= latency_rounds(t, opts.quick) {
                    continue;
                }
                let (n, w) = round_trips(size, opts.quick, false);
                let job = r.latency_job(t, size, n, w, 1);
                if let Outcome::Latency(l) = r.run(&job)? {
                    got.push(l);
                }
            }
        }
        res.latency.extend(
            rounds
                .into_iter()
                .filter_map(|r| median_by(r, |l: &LatencyResult| l.p50_ns)),
        );
    }
    for &size in THROUGHPUT_SIZES {
        let n = messages(size, opts.quick);
        let transports: Vec<&str> = THROUGHPUT_TRANSPORTS
            .iter()
            .copied()
            .filter(|t| peers::supports(t, Workload::Throughput, size))
            .collect();
        let mut memcpy = Vec::new();
        let mut rounds: Vec<Vec<ThroughputResult>> = vec![Vec::new(); transports.len()];
        for _ in 0..throughput_rounds(opts.quick) {
            memcpy.push(floor::memcpy(size, n));
            for (t, got) in transports.iter().zip(&mut rounds) {
                let job = r.job(t, Workload::Throughput, size, n, 0, 1);
                if let Outcome::Throughput(x) = r.run(&job)? {
                    got.push(x);
                }
            }
        }
        res.throughput.extend(
            std::iter::once(memcpy)
                .chain(rounds)
                .filter_map(|r| median_by(r, |t: &ThroughputResult| t.msgs_per_s)),
        );
    }
    for &subs in FANOUT {
        let (n, w) = round_trips(8, opts.quick, false);
        let job = r.latency_job("memlane-spin", 8, n / 2, w, subs);
        if let Outcome::Latency(l) = r.run(&job)? {
            res.fanout_latency.push(l);
        }
        let job = r.job(
            "memlane-spin",
            Workload::Throughput,
            64,
            messages(64, opts.quick) / 2,
            0,
            subs,
        );
        if let Outcome::Throughput(x) = r.run(&job)? {
            res.fanout_throughput.push(x);
        }
    }
    for &size in SWEEP_SIZES {
        for t in SWEEP_TRANSPORTS {
            if !peers::supports(t, Workload::Latency, size) {
                continue;
            }
            let (n, w) = round_trips(size, opts.quick, true);
            let job = r.latency_job(t, size, n, w, 1);
            if let Outcome::Latency(l) = r.run(&job)? {
                res.sweep.push(l);
            }
        }
    }
    res.seconds = start.elapsed().as_secs_f64();
    std::fs::create_dir_all(&opts.out)?;
    let md = report::markdown(&res);
    std::fs::write(opts.out.join("RESULTS.md"), md)?;
    plot::all(&res, &opts.out)?;
    eprintln!(
        "wrote {} and plots in {:.0} s",
        opts.out.join("RESULTS.md").display(),
        res.seconds
    );
    Ok(())
}

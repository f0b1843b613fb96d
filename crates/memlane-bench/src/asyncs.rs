//! `memlane-compare --async`: async one-way latency (memlane's
//! `recv_async` on tokio's current-thread and multi-thread runtimes) next
//! to the blocking `recv` and the futex floor, measured in the same run.
//!
//! Both processes of an async job run the same runtime: the whole
//! ping-pong loop is one task spawned on it (on a current-thread runtime
//! it runs on the thread that blocks on it; on a multi-thread runtime on a
//! worker), sending with `send` and receiving with `recv_async`. One-way
//! latency is half a round trip, as for every other transport.

use std::io;
use std::time::Instant;

use memlane::Channel;
use memlane_benchkit::{payload, pin_to_cpu, Job, LatencyResult, Launcher, Workload};

/// The transports of the async table, in display order.
pub const TRANSPORTS: &[&str] = &[
    "floor-futex",
    "memlane-block",
    "memlane-sleep",
    "async-ct",
    "async-mt",
];

fn err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

fn runtime(transport: &str) -> io::Result<tokio::runtime::Runtime> {
    match transport {
        "async-ct" => tokio::runtime::Builder::new_current_thread().build(),
        "async-mt" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build(),
        other => Err(memlane_benchkit::bad(format!(
            "{other} is not an async transport"
        ))),
    }
}

fn names(job: &Job) -> (String, String) {
    (format!("{}.ping", job.tag), format!("{}.pong", job.tag))
}

fn create(job: &Job, name: &str) -> io::Result<Channel> {
    Channel::builder(name)
        .capacity(job.ring_capacity())
        .max_message(job.size.max(8))
        .max_publishers(1)
        .dir(&job.dir)
        .create()
        .map_err(err)
}

fn open(job: &Job, name: &str) -> io::Result<Channel> {
    Channel::open_options(name)
        .dir(&job.dir)
        .open()
        .map_err(err)
}

/// Whether `transport` is one of this module's.
pub fn is_async(transport: &str) -> bool {
    transport.starts_with("async-")
}

/// The parent of an async latency job: round trips timed on its runtime.
pub fn run(launcher: &Launcher, job: &Job) -> io::Result<LatencyResult> {
    let (ping, pong) = names(job);
    let ping = create(job, &ping)?;
    let pong = create(job, &pong)?;
    let mut publ = ping.publisher().map_err(err)?;
    let mut sub = pong.subscriber().map_err(err)?;
    let mut child = launcher.spawn(job)?;
    child.expect_line("ready")?;
    let rt = runtime(&job.transport)?;
    let (warmup, count, size) = (job.warmup, job.count, job.size);
    let task = rt.spawn(async move {
        let msg = payload(size);
        let mut rtts = Vec::with_capacity(count as usize);
        for i in 0..warmup + count {
            let t0 = Instant::now();
            publ.send(&msg).map_err(err)?;
            let n = sub.recv_async().await.map_err(err)?.len();
            if n != size {
                return Err(memlane_benchkit::bad(format!(
                    "echo of {n} bytes, sent {size}"
                )));
            }
            if i >= warmup {
                rtts.push(t0.elapsed().as_nanos() as u64);
            }
        }
        Ok(rtts)
    });
    let mut rtts = rt.block_on(task).map_err(err)??;
    child.finish()?;
    rtts.sort_unstable();
    let q = |p: f64| rtts[((rtts.len() - 1) as f64 * p) as usize] as f64 / 2.0;
    Ok(LatencyResult {
        transport: job.transport.clone(),
        size: job.size,
        subscribers: 1,
        round_trips: rtts.len() as u64,
        p50_ns: q(0.5),
        p99_ns: q(0.99),
        p999_ns: q(0.999),
        max_ns: q(1.0),
    })
}

/// The child of an async latency job: echoes on its runtime.
pub fn serve(job: &Job) -> io::Result<()> {
    use std::io::Write;
    if job.workload != Workload::Latency {
        return Err(memlane_benchkit::bad(
            "the async transports measure latency only",
        ));
    }
    pin_to_cpu(1);
    let (ping, pong) = names(job);
    let mut sub = open(job, &ping)?.subscriber().map_err(err)?;
    let mut publ = open(job, &pong)?.publisher().map_err(err)?;
    let rt = runtime(&job.transport)?;
    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let rounds = job.warmup + job.count;
    let task = rt.spawn(async move {
        let mut buf = Vec::new();
        for _ in 0..rounds {
            {
                let m = sub.recv_async().await.map_err(err)?;
                buf.clear();
                buf.extend_from_slice(&m);
            }
            publ.send(&buf).map_err(err)?;
        }
        Ok::<(), io::Error>(())
    });
    rt.block_on(task).map_err(err)?
}

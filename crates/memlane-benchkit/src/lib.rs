//! # memlane-benchkit — two-process benchmarks of memlane and of the hardware floor
//!
//! The harness behind `memlane bench` and the `memlane-compare` binary of
//! `memlane-bench`. Every figure comes from **two processes**: the parent
//! (pinned to CPU 0 where there are two CPUs) re-executes its own binary in
//! a child role (pinned to CPU 1), and the two exchange messages through
//! one [`Transport`]:
//!
//! * **latency** ([`Workload::Latency`]): the parent sends a message of
//!   `size` bytes, the child copies it out and sends it back; each round
//!   trip goes into a histogram, and one-way latency is half of it;
//! * **throughput** ([`Workload::Throughput`]): the parent sends `count`
//!   messages as fast as the transport takes them, the child copies each
//!   out; the clock stops when the child reports that it has them all.
//!
//! Receivers always copy the payload out (pipes and sockets must; doing the
//! same for shared memory keeps the comparison fair), except where a
//! transport's name says otherwise (`memlane-loan`).
//!
//! The transports in this crate are the floor ([`floor`]: a cache line
//! ping-ponged with busy polling, the same with a shared futex wait/wake
//! (named auto-reset events on Windows), a minimal SPSC byte ring,
//! one-process memcpy), memlane's channels ([`lane`]) and its latest-value
//! slot ([`latest`]: one-process read and write costs, and a two-process
//! ping-pong of values, polling or sleeping in `wait`). `memlane-bench`
//! adds pipes, Unix sockets and iceoryx2.
//!
//! [`paired`] measures two of these transports between one pair of
//! processes in alternating blocks, for a ratio that a host changing speed
//! does not skew.
//!
//! Everything a run creates lives in a private directory ([`TempDir`],
//! under `/dev/shm` when writable on Unix, else in the system temporary
//! directory) that is removed when it is dropped.

#![deny(unsafe_code)]

pub mod floor;
pub mod lane;
pub mod latest;
pub mod paired;
mod proc;
pub mod rpc;
mod shm;
mod stats;
mod sys;
pub mod typed;

use std::io;
use std::path::PathBuf;

pub use proc::{pin_to_cpu, ChildProc, Launcher, TempDir};
pub use stats::{LatencyResult, ThroughputResult};

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Round trips of one message; one-way latency is half a round trip.
    Latency,
    /// One direction, as many messages per second as the transport takes.
    Throughput,
}

impl Workload {
    fn as_str(self) -> &'static str {
        match self {
            Workload::Latency => "latency",
            Workload::Throughput => "throughput",
        }
    }
}

/// One measurement: what the parent runs and tells its child on the
/// command line (as `key=value` arguments).
#[derive(Debug, Clone)]
pub struct Job {
    /// The transport's name (e.g. `floor-spin`, `memlane-spin`, `pipe`).
    pub transport: String,
    /// Latency or throughput.
    pub workload: Workload,
    /// Message size in bytes.
    pub size: usize,
    /// Measured round trips (latency) or messages (throughput).
    pub count: u64,
    /// Round trips before measuring (latency only).
    pub warmup: u64,
    /// Subscribers in the child (memlane fan-out; 1 otherwise).
    pub subscribers: u32,
    /// The private directory for the run's files.
    pub dir: PathBuf,
    /// A tag unique to this job within `dir` (names its files).
    pub tag: String,
}

impl Job {
    /// The job as `key=value` arguments for the child.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            format!("transport={}", self.transport),
            format!("workload={}", self.workload.as_str()),
            format!("size={}", self.size),
            format!("count={}", self.count),
            format!("warmup={}", self.warmup),
            format!("subscribers={}", self.subscribers),
            format!("dir={}", self.dir.display()),
            format!("tag={}", self.tag),
        ]
    }

    /// Parses what [`Job::to_args`] wrote.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a missing or malformed argument.
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> io::Result<Job> {
        let get = |key: &str| -> io::Result<&str> {
            args.iter()
                .map(AsRef::as_ref)
                .find_map(|a| a.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .ok_or_else(|| bad(format!("benchmark child: missing argument {key}=...")))
        };
        let num = |key: &str| -> io::Result<u64> {
            get(key)?
                .parse()
                .map_err(|_| bad(format!("benchmark child: {key} is not a number")))
        };
        let workload = match get("workload")? {
            "latency" => Workload::Latency,
            "throughput" => Workload::Throughput,
            other => return Err(bad(format!("benchmark child: unknown workload {other}"))),
        };
        Ok(Job {
            transport: get("transport")?.to_string(),
            workload,
            size: num("size")? as usize,
            count: num("count")?,
            warmup: num("warmup")?,
            subscribers: num("subscribers")? as u32,
            dir: PathBuf::from(get("dir")?),
            tag: get("tag")?.to_string(),
        })
    }

    /// A ring (or buffer) capacity that comfortably holds this job's
    /// messages: a power of two, at least 1 MiB and at least 2 messages
    /// (4 MiB for 1 MiB messages; 1–4 MiB rings were fastest on the
    /// reference machine).
    pub fn ring_capacity(&self) -> u64 {
        ((self.size as u64 + 64) * 2)
            .next_power_of_two()
            .max(1 << 20)
    }

    /// A path for a file of this job in the private directory.
    pub fn path(&self, what: &str) -> PathBuf {
        self.dir.join(format!("{}.{what}", self.tag))
    }
}

/// The CPU model, if known (for reports): the `model name` of
/// `/proc/cpuinfo`; on Windows `%PROCESSOR_IDENTIFIER%` (family, model,
/// stepping and vendor, e.g. `Intel64 Family 6 Model 85 Stepping 7,
/// GenuineIntel`).
pub fn cpu_model() -> Option<String> {
    if cfg!(windows) {
        return std::env::var("PROCESSOR_IDENTIFIER")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
    }
    std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_string())
    })
}

/// The kernel release (`/proc/sys/kernel/osrelease`), if readable; `None`
/// where there is no such file (Windows).
pub fn kernel() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Nanoseconds on a clock that every process of the machine shares
/// (`CLOCK_MONOTONIC` on Linux; the precise system time on Windows): a
/// time taken in one process minus a time taken in another is the time
/// between them (one-way latency timed at both ends).
pub fn shared_clock_ns() -> u64 {
    sys::shared_clock_ns()
}

/// In a child process: die with the parent (a busy-polling child must not
/// outlive it). Linux: `PR_SET_PDEATHSIG`; Windows: nothing, the parent
/// put the child in a kill-on-close job object when it started it.
pub fn die_with_parent() {
    proc::die_with_parent();
}

/// The CPU flags of `/proc/cpuinfo` that bear on shared-memory messaging
/// (a virtual machine or not, the timestamp counter, wide copies, the
/// wait and cache-line instructions), space-separated; `None` where there
/// is no `/proc/cpuinfo`.
pub fn cpu_flags() -> Option<String> {
    const RELEVANT: &[&str] = &[
        "hypervisor",
        "constant_tsc",
        "nonstop_tsc",
        "erms",
        "fsrm",
        "avx2",
        "avx512f",
        "cldemote",
        "waitpkg",
        "monitorx",
        "movdiri",
    ];
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let flags = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, f)| f.split_whitespace().collect::<Vec<_>>())?;
    Some(
        RELEVANT
            .iter()
            .map(|r| {
                if flags.contains(r) {
                    r.to_string()
                } else {
                    format!("no-{r}")
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// An `InvalidInput` error with a message.
pub fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// One side of a two-process message path: it sends and receives whole
/// messages of the job's size.
pub trait Link {
    /// Sends `msg`, waiting (spinning or sleeping, per transport) while the
    /// path is full.
    ///
    /// # Errors
    ///
    /// The transport's I/O error.
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;
    /// Receives the next message, copying it into `buf`; returns its length.
    ///
    /// # Errors
    ///
    /// The transport's I/O error (a closed peer is `UnexpectedEof`).
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

/// A message path between the parent and its child.
pub trait Transport {
    /// The link each side gets.
    type L: Link;
    /// Parent side: creates what the child opens, calls `spawn` once to
    /// start the child, finishes the connection and returns its link.
    ///
    /// # Errors
    ///
    /// Any setup failure.
    fn parent(
        &self,
        job: &Job,
        spawn: &mut dyn FnMut() -> io::Result<ChildProc>,
    ) -> io::Result<(Self::L, ChildProc)>;
    /// Child side: opens what the parent created and returns its link.
    ///
    /// # Errors
    ///
    /// Any setup failure.
    fn child(&self, job: &Job) -> io::Result<Self::L>;
}

/// Runs `job` over `t` as the parent: starts the child through `launcher`
/// and measures.
///
/// # Errors
///
/// Any failure of the transport or of the child (its exit status and
/// standard error are in the message).
pub fn run_latency<T: Transport>(
    t: &T,
    launcher: &Launcher,
    job: &Job,
) -> io::Result<LatencyResult> {
    let mut spawn = || launcher.spawn(job);
    let (mut link, mut child) = t.parent(job, &mut spawn)?;
    child.expect_line("ready")?;
    let msg = payload(job.size);
    let mut buf = vec![0u8; job.size.max(1)];
    let mut hist = stats::histogram();
    for _ in 0..job.warmup {
        link.send(&msg)?;
        link.recv(&mut buf)?;
    }
    for _ in 0..job.count {
        hist.saturating_record(trip(&mut link, &msg, &mut buf)?);
    }
    child.finish()?;
    Ok(LatencyResult::from_round_trips(job, &hist))
}

/// One timed round trip over `l` (nanoseconds): `msg` out, its echo into
/// `buf`, which must be as long as `msg`.
pub(crate) fn trip<L: Link>(l: &mut L, msg: &[u8], buf: &mut [u8]) -> io::Result<u64> {
    let t0 = std::time::Instant::now();
    l.send(msg)?;
    let n = l.recv(buf)?;
    let rt = t0.elapsed();
    if n != msg.len() {
        return Err(bad(format!("echo of {n} bytes, sent {}", msg.len())));
    }
    Ok(rt.as_nanos() as u64)
}

/// One echo on `l`, as the child of a latency job does.
pub(crate) fn echo<L: Link>(l: &mut L, buf: &mut [u8]) -> io::Result<()> {
    let n = l.recv(buf)?;
    l.send(&buf[..n])
}

/// Runs a throughput `job` over `t` as the parent.
///
/// # Errors
///
/// As for [`run_latency`].
pub fn run_throughput<T: Transport>(
    t: &T,
    launcher: &Launcher,
    job: &Job,
) -> io::Result<ThroughputResult> {
    let mut spawn = || launcher.spawn(job);
    let (mut link, mut child) = t.parent(job, &mut spawn)?;
    child.expect_line("ready")?;
    let msg = payload(job.size);
    let t0 = std::time::Instant::now();
    for _ in 0..job.count {
        link.send(&msg)?;
    }
    child.expect_line("done")?;
    let elapsed = t0.elapsed();
    drop(link);
    child.finish()?;
    Ok(ThroughputResult::new(job, elapsed))
}

/// Runs `job` over `t` as the child: prints `ready` once connected, then
/// echoes (latency) or drains (throughput, then prints `done`).
///
/// # Errors
///
/// Any failure of the transport.
pub fn serve<T: Transport>(t: &T, job: &Job) -> io::Result<()> {
    use std::io::Write;
    proc::die_with_parent();
    pin_to_cpu(1);
    let mut link = t.child(job)?;
    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut buf = vec![0u8; job.size.max(1)];
    match job.workload {
        Workload::Latency => {
            for _ in 0..job.warmup + job.count {
                echo(&mut link, &mut buf)?;
            }
        }
        Workload::Throughput => {
            for _ in 0..job.count {
                link.recv(&mut buf)?;
            }
            writeln!(out, "done")?;
            out.flush()?;
        }
    }
    Ok(())
}

/// The child role for the transports of this crate: `Ok(false)` if
/// `job.transport` is not one of them.
///
/// # Errors
///
/// As for [`serve`].
pub fn serve_builtin(job: &Job) -> io::Result<bool> {
    if paired::serve(job)? {
        return Ok(true);
    }
    if let Some(t) = floor::Floor::from_name(&job.transport) {
        serve(&t, job)?;
    } else if let Some(t) = lane::Memlane::from_name(&job.transport) {
        serve(&t, job)?;
    } else if let Some(t) = typed::Typed::from_name(&job.transport) {
        serve(&t, job)?;
    } else if let Some(t) = rpc::Rpc::from_name(&job.transport) {
        serve(&t, job)?;
    } else if let Some(mode) = latest::LatestMode::from_name(&job.transport) {
        latest::serve(mode, job)?;
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// A message of `size` bytes with a recognisable pattern.
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// Runs a job of one of this crate's transports as the parent.
///
/// # Errors
///
/// As for [`run_latency`]; `InvalidInput` for an unknown transport.
pub fn run_builtin(launcher: &Launcher, job: &Job) -> io::Result<Outcome> {
    fn go<T: Transport>(t: &T, launcher: &Launcher, job: &Job) -> io::Result<Outcome> {
        Ok(match job.workload {
            Workload::Latency => Outcome::Latency(run_latency(t, launcher, job)?),
            Workload::Throughput => Outcome::Throughput(run_throughput(t, launcher, job)?),
        })
    }
    if let Some(t) = floor::Floor::from_name(&job.transport) {
        go(&t, launcher, job)
    } else if let Some(t) = lane::Memlane::from_name(&job.transport) {
        go(&t, launcher, job)
    } else if let Some(t) = typed::Typed::from_name(&job.transport) {
        go(&t, launcher, job)
    } else if let Some(t) = rpc::Rpc::from_name(&job.transport) {
        go(&t, launcher, job)
    } else if let Some(mode) = latest::LatestMode::from_name(&job.transport) {
        if job.workload != Workload::Latency {
            return Err(bad(format!("{} measures latency only", job.transport)));
        }
        Ok(Outcome::Latency(latest::run(mode, launcher, job)?))
    } else {
        Err(bad(format!("unknown transport {}", job.transport)))
    }
}

/// What a job measured.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// From [`run_latency`].
    Latency(LatencyResult),
    /// From [`run_throughput`].
    Throughput(ThroughputResult),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_arguments_round_trip() {
        let job = Job {
            transport: "memlane-spin".into(),
            workload: Workload::Throughput,
            size: 65536,
            count: 12,
            warmup: 3,
            subscribers: 8,
            dir: PathBuf::from("/dev/shm/some dir"),
            tag: "j7-42".into(),
        };
        let back = Job::from_args(&job.to_args()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{job:?}"));
        assert!(Job::from_args(&["transport=x"]).is_err());
        let mut bad = job.to_args();
        bad[1] = "workload=sideways".into();
        assert!(Job::from_args(&bad).is_err());
    }

    #[test]
    fn ring_capacity_holds_two_messages() {
        let job = |size| Job {
            transport: String::new(),
            workload: Workload::Latency,
            size,
            count: 1,
            warmup: 0,
            subscribers: 1,
            dir: PathBuf::new(),
            tag: String::new(),
        };
        assert_eq!(job(8).ring_capacity(), 1 << 20);
        assert_eq!(job(1 << 20).ring_capacity(), 4 << 20);
        for size in [8, 1000, 65536, 300_000, 1 << 20] {
            let cap = job(size).ring_capacity();
            assert!(cap.is_power_of_two() && cap >= 2 * (size as u64 + 64));
        }
    }
}

//! `memlane-compare --contention`: several publisher processes into one
//! channel (N → 1) and one publisher into several subscriber processes
//! (1 → N), N = 1, 2, 4, memlane next to iceoryx2 with the same topology.
//!
//! Every endpoint is its own process (the binary re-executed with
//! `--child`). Where the processes are no more than the CPUs (the 1 → 1
//! rows here), each is pinned to a CPU of its own; otherwise none is, and
//! the scheduler spreads them. The parent only creates the channel (or
//! service), starts the subscribers, then the publishers, waits until each
//! says `ready`,
//! lets the subscribers connect to the publishers (iceoryx2's
//! `update_connections`; an iceoryx2 publisher that fills the queue of a
//! subscriber not yet connected drops the sample), and starts the
//! publishers all at once by creating a `go` file.
//!
//! Messages are 64 bytes: the publisher's index, its sequence number and
//! the send time on a clock every process shares
//! ([`memlane_benchkit::shared_clock_ns`]). Each subscriber fails on a
//! message out of order or received twice, and counts the gaps as lost; a
//! memlane row that lost any fails the run (iceoryx2 rows report them).
//! Two workloads, each with its own processes:
//!
//! * **throughput**: publishers send as fast as the transport takes them
//!   (a full ring or queue makes them wait, as each library does);
//!   messages/s is what the subscribers received, from the `go` to the
//!   last message of the slowest subscriber;
//! * **paced latency**: each publisher sleeps [`PACE`] between sends, so
//!   the queue is empty when a message arrives; one-way latency is the
//!   receive time minus the send time carried in the message.
//!
//! How subscribers wait ([`TRANSPORTS`]): `memlane-poll` and `iox2-poll`
//! poll (`try_recv` / `receive`) in a loop; in rows with more processes
//! than CPUs, after [`SPINS`] empty polls in a row they give the CPU away
//! (`sched_yield`) on each further empty poll, since a pure spin would
//! starve the publishers. `memlane-block` calls `recv` (it polls briefly,
//! then sleeps on the channel's futex). iceoryx2 publish-subscribe has no
//! blocking receive of its own (that takes a separate event service and a
//! notify per sample).
//!
//! memlane's channel in the N → 1 rows is made with `max_publishers(4)`
//! for every N (so each send claims its place with a CAS, even at N = 1);
//! in the 1 → N rows with `max_publishers(1)` (the single-writer path, as
//! in the other tables). Otherwise the defaults (1 MiB ring). iceoryx2's
//! service has room for 4 publishers or 4 subscribers, a subscriber queue
//! of 256 samples per publisher, no history, and waits when a queue is full
//! (`RetryUntilDelivered`), as in the main tables.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;
use memlane::{Channel, TryRecvError};
use memlane_benchkit::{bad, shared_clock_ns, Job, Launcher, Workload};

/// Message size.
pub const SIZE: usize = 64;
/// Process counts of each topology.
pub const COUNTS: &[u32] = &[1, 2, 4];
/// Transports, in display order.
pub const TRANSPORTS: &[&str] = &["memlane-poll", "memlane-block", "iox2-poll"];
/// Sleep between two sends of one publisher in the paced-latency rows.
pub const PACE: Duration = Duration::from_micros(100);
/// How long a subscriber waits for more once every publisher has finished
/// (only a lost message makes it wait that long).
pub const QUIET: Duration = Duration::from_millis(100);
/// Empty polls in a row before a polling subscriber starts yielding.
pub const SPINS: u32 = 200;

/// Whether this (child) process's polls yield (see [`SPINS`]).
static YIELDS: AtomicBool = AtomicBool::new(false);

fn err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

fn ierr(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("iceoryx2: {e:?}"))
}

/// Many publishers into one subscriber, or one into many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// N publisher processes → 1 subscriber process.
    ManyToOne,
    /// 1 publisher process → N subscriber processes.
    OneToMany,
}

impl Topology {
    fn label(self, n: u32) -> String {
        match self {
            Topology::ManyToOne => format!("{n} → 1"),
            Topology::OneToMany => format!("1 → {n}"),
        }
    }
}

/// One row's shape and size.
#[derive(Debug, Clone)]
pub struct Row {
    /// One of [`TRANSPORTS`].
    pub transport: String,
    /// Throughput or paced latency.
    pub workload: Workload,
    /// Publisher processes.
    pub publishers: u32,
    /// Subscriber processes.
    pub subscribers: u32,
    /// Messages each publisher sends.
    pub per_publisher: u64,
    /// Whether the memlane channel allows several publishers
    /// (`max_publishers(4)`, the CAS claim) or one.
    pub multi_publisher: bool,
}

/// What one row measured.
#[derive(Debug, Clone)]
pub struct RowResult {
    /// The row.
    pub row: Row,
    /// Messages each subscriber received (every one checked: each
    /// publisher's messages exactly once, in order).
    pub received: Vec<u64>,
    /// Messages sent but never received, all subscribers together (a
    /// gap in a publisher's sequence, or its last messages missing).
    pub lost: u64,
    /// Messages/s received, all subscribers together.
    pub total_per_s: f64,
    /// One-way latency percentiles (paced rows), ns: p50, p99, max.
    pub latency_ns: Option<(f64, f64, f64)>,
}

/// The parts of a child's role, carried in its job's transport name:
/// `contention:TRANSPORT:pub|sub:INDEX:PUBLISHERS:SUBSCRIBERS:MULTI`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Role {
    transport: String,
    publisher: bool,
    index: u32,
    publishers: u32,
    subscribers: u32,
    multi: bool,
}

impl Role {
    fn encode(&self) -> String {
        format!(
            "contention:{}:{}:{}:{}:{}:{}",
            self.transport,
            if self.publisher { "pub" } else { "sub" },
            self.index,
            self.publishers,
            self.subscribers,
            u8::from(self.multi)
        )
    }

    fn decode(s: &str) -> io::Result<Role> {
        let p: Vec<&str> = s.split(':').collect();
        let num = |x: &str| {
            x.parse::<u32>()
                .map_err(|_| bad(format!("contention role {s}: {x} is not a number")))
        };
        match p.as_slice() {
            ["contention", t, role, i, np, ns, m] => Ok(Role {
                transport: t.to_string(),
                publisher: *role == "pub",
                index: num(i)?,
                publishers: num(np)?,
                subscribers: num(ns)?,
                multi: *m == "1",
            }),
            _ => Err(bad(format!("bad contention role {s}"))),
        }
    }
}

/// Whether a child job is one of this module's.
pub fn is_contention(transport: &str) -> bool {
    transport.starts_with("contention:")
}

fn channel_name(job: &Job) -> String {
    format!("{}.cont", job.tag)
}

/// The iceoryx2 configuration of a job: its files under the job's private
/// directory and, in `/dev/shm`, under a prefix of its own (so that what is
/// left can be found and removed).
fn iox_config(dir: &Path, tag: &str) -> io::Result<Config> {
    let mut cfg = Config::default();
    cfg.global.prefix = FileName::new(iox_prefix(tag).as_bytes()).map_err(ierr)?;
    let root = format!("{}/iox2-{tag}/", dir.display());
    cfg.global
        .set_root_path(&iceoryx2::prelude::Path::new(root.as_bytes()).map_err(ierr)?);
    Ok(cfg)
}

fn iox_prefix(tag: &str) -> String {
    format!("mlb_{tag}_")
}

/// Removes what iceoryx2 left in `/dev/shm` under the job's prefix;
/// returns how many it found.
pub fn remove_iox_leftovers(tag: &str) -> usize {
    let prefix = iox_prefix(tag);
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir("/dev/shm") {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                n += 1;
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    n
}

struct IoxService {
    service:
        iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>,
    // Dropped last: the service and its ports need their node.
    _node: Node<ipc::Service>,
}

fn iox_service(job: &Job, role_pubs: u32, role_subs: u32) -> io::Result<IoxService> {
    set_log_level(LogLevel::Error);
    let cfg = iox_config(&job.dir, &job.tag)?;
    let node = NodeBuilder::new()
        .config(&cfg)
        .create::<ipc::Service>()
        .map_err(ierr)?;
    let name = ServiceName::new(&format!("memlane-bench/{}/cont", job.tag)).map_err(ierr)?;
    let service = node
        .service_builder(&name)
        .publish_subscribe::<[u8]>()
        .max_publishers(role_pubs.max(4) as usize)
        .max_subscribers(role_subs.max(4) as usize)
        .history_size(0)
        .subscriber_max_buffer_size(256)
        .enable_safe_overflow(false)
        .open_or_create()
        .map_err(ierr)?;
    Ok(IoxService {
        service,
        _node: node,
    })
}

fn wait_for(path: &Path) {
    while !path.exists() {
        std::thread::sleep(Duration::from_micros(50));
    }
}

fn touch(path: &Path) -> io::Result<()> {
    std::fs::write(path, b"")
}

/// Runs one row as the parent.
///
/// # Errors
///
/// Any failure to set up, of a child, or a subscriber that did not get
/// every message exactly once.
pub fn run_row(launcher: &Launcher, dir: &Path, tag: &str, row: &Row) -> io::Result<RowResult> {
    let job = Job {
        transport: String::new(),
        workload: row.workload,
        size: SIZE,
        count: row.per_publisher,
        warmup: 0,
        subscribers: 1,
        dir: dir.to_path_buf(),
        tag: tag.to_string(),
    };
    // What the parent holds while the row runs: the channel or the service.
    let keep: (Option<Channel>, Option<IoxService>) = if row.transport.starts_with("memlane") {
        let ch = Channel::builder(&channel_name(&job))
            .max_publishers(if row.multi_publisher { 4 } else { 1 })
            .dir(dir)
            .create()
            .map_err(err)?;
        (Some(ch), None)
    } else {
        (
            None,
            Some(iox_service(&job, row.publishers, row.subscribers)?),
        )
    };
    let result = run_children(launcher, &job, row);
    drop(keep);
    if row.transport.starts_with("memlane") {
        let _ = memlane::remove(Some(dir), &channel_name(&job));
    } else {
        let left = remove_iox_leftovers(tag);
        if left > 0 {
            eprintln!("note: removed {left} iceoryx2 files left in /dev/shm by row {tag}");
        }
    }
    let _ = std::fs::remove_dir_all(dir.join(format!("iox2-{tag}")));
    result
}

fn run_children(launcher: &Launcher, job: &Job, row: &Row) -> io::Result<RowResult> {
    let role = |publisher: bool, index: u32| Role {
        transport: row.transport.clone(),
        publisher,
        index,
        publishers: row.publishers,
        subscribers: row.subscribers,
        multi: row.multi_publisher,
    };
    let spawn = |r: Role| {
        let j = Job {
            transport: r.encode(),
            ..job.clone()
        };
        launcher.spawn(&j)
    };
    let mut subs = Vec::new();
    for i in 0..row.subscribers {
        subs.push(spawn(role(false, i))?);
    }
    for s in &mut subs {
        s.expect_line("ready")?;
    }
    let mut pubs = Vec::new();
    for i in 0..row.publishers {
        pubs.push(spawn(role(true, i))?);
    }
    for p in &mut pubs {
        p.expect_line("ready")?;
    }
    // Every port exists: the subscribers connect to the publishers before
    // any message is sent (an iceoryx2 publisher that fills the queue of a
    // subscriber not yet connected to it drops the sample).
    touch(&job.path("connect"))?;
    for s in &mut subs {
        s.expect_line("connected")?;
    }
    let t0 = shared_clock_ns();
    touch(&job.path("go"))?;
    for s in subs {
        s.finish()?;
    }
    touch(&job.path("end"))?;
    for p in pubs {
        p.finish()?;
    }
    let mut received = Vec::new();
    let mut lost = 0;
    let mut last = t0;
    let mut lat = Vec::new();
    for i in 0..row.subscribers {
        let path = job.path(&format!("res{i}"));
        let text = std::fs::read_to_string(&path)?;
        let _ = std::fs::remove_file(&path);
        let mut lines = text.lines();
        let head: Vec<u64> = lines
            .next()
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let [n, t, l] = head[..] else {
            return Err(bad(format!("subscriber {i} wrote no result")));
        };
        received.push(n);
        lost += l;
        last = last.max(t);
        lat.extend(lines.filter_map(|l| l.parse::<u64>().ok()));
    }
    for f in ["connect", "go", "end"] {
        let _ = std::fs::remove_file(job.path(f));
    }
    for i in 0..row.publishers {
        let _ = std::fs::remove_file(job.path(&format!("sent{i}")));
    }
    let total: u64 = received.iter().sum();
    let secs = (last.saturating_sub(t0) as f64 / 1e9).max(1e-9);
    lat.sort_unstable();
    let latency_ns = (!lat.is_empty()).then(|| {
        let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize] as f64;
        (q(0.5), q(0.99), q(1.0))
    });
    Ok(RowResult {
        row: row.clone(),
        received,
        lost,
        total_per_s: total as f64 / secs,
        latency_ns,
    })
}

/// A subscriber of either library.
enum Sub {
    Memlane(memlane::Subscriber, bool),
    Iox(
        Subscriber<ipc::Service, [u8], ()>,
        #[allow(dead_code)] IoxService,
    ),
}

fn copy(m: &[u8], buf: &mut [u8; SIZE]) -> io::Result<()> {
    if m.len() != SIZE {
        return Err(bad(format!("a message of {} bytes, sent {SIZE}", m.len())));
    }
    buf.copy_from_slice(m);
    Ok(())
}

impl Sub {
    /// Receives one message into `buf` (`true`), or finds that every
    /// publisher has finished and nothing came for [`QUIET`] (`false`):
    /// how a subscriber ends when a message was lost. memlane's blocking
    /// receive is given the same chance with `recv_timeout`.
    fn recv_or_quiet(
        &mut self,
        buf: &mut [u8; SIZE],
        job: &Job,
        publishers: u32,
    ) -> io::Result<bool> {
        loop {
            let got = match self {
                Sub::Memlane(s, true) => match s.recv_timeout(QUIET) {
                    Ok(m) => {
                        copy(&m, buf)?;
                        true
                    }
                    Err(memlane::RecvTimeoutError::Timeout) => false,
                    Err(e) => return Err(err(e)),
                },
                _ => self.poll_for(buf, QUIET)?,
            };
            if got {
                return Ok(true);
            }
            if (0..publishers).all(|i| job.path(&format!("sent{i}")).exists()) {
                // Every publisher is done: one last look.
                return self.poll_for(buf, QUIET);
            }
        }
    }

    /// Polls for up to `limit`: spinning, and where this row has more
    /// processes than the machine has CPUs, yielding after [`SPINS`] empty
    /// polls in a row.
    fn poll_for(&mut self, buf: &mut [u8; SIZE], limit: Duration) -> io::Result<bool> {
        let start = std::time::Instant::now();
        let mut empty = 0u32;
        loop {
            let got = match self {
                Sub::Memlane(s, _) => match s.try_recv() {
                    Ok(m) => {
                        copy(&m, buf)?;
                        true
                    }
                    Err(TryRecvError::Empty) => false,
                    Err(e) => return Err(err(e)),
                },
                Sub::Iox(s, _) => match s.receive().map_err(ierr)? {
                    Some(m) => {
                        copy(m.payload(), buf)?;
                        true
                    }
                    None => false,
                },
            };
            if got {
                return Ok(true);
            }
            empty = empty.wrapping_add(1);
            if empty % 64 == 0 && start.elapsed() > limit {
                return Ok(false);
            }
            if empty > SPINS && YIELDS.load(Ordering::Relaxed) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// A publisher of either library.
enum Pub {
    Memlane(memlane::Publisher),
    Iox(
        Publisher<ipc::Service, [u8], ()>,
        #[allow(dead_code)] IoxService,
    ),
}

impl Pub {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match self {
            Pub::Memlane(p) => p.send(msg).map_err(err),
            Pub::Iox(p, _) => {
                let s = p.loan_slice_uninit(msg.len()).map_err(ierr)?;
                s.write_from_slice(msg).send().map_err(ierr)?;
                Ok(())
            }
        }
    }
}

/// The child side of a contention job.
///
/// # Errors
///
/// Any failure of the transport; a subscriber that receives a message out
/// of order, twice, or from an unknown publisher.
pub fn serve(job: &Job) -> io::Result<()> {
    use std::io::Write;
    memlane_benchkit::die_with_parent();
    let role = Role::decode(&job.transport)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let processes = (role.publishers + role.subscribers) as usize;
    YIELDS.store(processes > cpus, Ordering::Relaxed);
    if processes <= cpus {
        // A CPU each, as in the other tables: publishers first, then
        // subscribers. (Left to itself the kernel sometimes put a 1 → 1
        // pair on one CPU, where a spinning subscriber holds the CPU its
        // publisher needs.)
        let slot = if role.publisher {
            role.index
        } else {
            role.publishers + role.index
        };
        memlane_benchkit::pin_to_cpu(slot as usize);
    }
    let memlane = role.transport.starts_with("memlane");
    let mut out = io::stdout().lock();
    if role.publisher {
        let mut publ = if memlane {
            let ch = Channel::open_options(&channel_name(job))
                .dir(&job.dir)
                .open()
                .map_err(err)?;
            Pub::Memlane(ch.publisher().map_err(err)?)
        } else {
            let s = iox_service(job, role.publishers, role.subscribers)?;
            let p = s
                .service
                .publisher_builder()
                .initial_max_slice_len(SIZE)
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .create()
                .map_err(ierr)?;
            Pub::Iox(p, s)
        };
        writeln!(out, "ready")?;
        out.flush()?;
        wait_for(&job.path("go"));
        if let Pub::Iox(p, _) = &publ {
            p.update_connections().map_err(ierr)?;
        }
        let mut msg = memlane_benchkit::payload(SIZE);
        msg[..4].copy_from_slice(&role.index.to_le_bytes());
        let paced = job.workload == Workload::Latency;
        for seq in 0..job.count {
            if paced {
                std::thread::sleep(PACE);
            }
            msg[8..16].copy_from_slice(&seq.to_le_bytes());
            if paced {
                msg[16..24].copy_from_slice(&shared_clock_ns().to_le_bytes());
            }
            publ.send(&msg)?;
        }
        touch(&job.path(&format!("sent{}", role.index)))?;
        // Stay (and keep the samples and the ring alive) until every
        // subscriber has them all.
        while !job.path("end").exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
        return Ok(());
    }
    let mut sub = if memlane {
        let ch = Channel::open_options(&channel_name(job))
            .dir(&job.dir)
            .open()
            .map_err(err)?;
        Sub::Memlane(
            ch.subscriber().map_err(err)?,
            role.transport == "memlane-block",
        )
    } else {
        let s = iox_service(job, role.publishers, role.subscribers)?;
        let sub = s.service.subscriber_builder().create().map_err(ierr)?;
        Sub::Iox(sub, s)
    };
    writeln!(out, "ready")?;
    out.flush()?;
    wait_for(&job.path("connect"));
    if let Sub::Iox(s, _) = &sub {
        s.update_connections().map_err(ierr)?;
    }
    writeln!(out, "connected")?;
    out.flush()?;
    let mut next = vec![0u64; role.publishers as usize];
    let paced = job.workload == Workload::Latency;
    let mut lat = Vec::new();
    let mut buf = [0u8; SIZE];
    let word =
        |b: &[u8; SIZE], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let (mut received, mut lost) = (0u64, 0u64);
    let mut last = shared_clock_ns();
    // Until the last message of every publisher is in (or, should one be
    // lost, every publisher has finished and nothing more comes).
    while next.iter().any(|&n| n < job.count) {
        if !sub.recv_or_quiet(&mut buf, job, role.publishers)? {
            break;
        }
        // The clock is read per message only where latency is measured.
        let now = if paced { shared_clock_ns() } else { 0 };
        let from = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
        let seq = word(&buf, 8);
        match next.get_mut(from) {
            Some(n) if *n <= seq && seq < job.count => {
                lost += seq - *n;
                *n = seq + 1;
            }
            Some(n) => {
                return Err(bad(format!(
                    "subscriber {}: publisher {from}'s message {seq} again or out of order \
                     (expected {n} next)",
                    role.index
                )))
            }
            None => return Err(bad(format!("a message from publisher {from}"))),
        }
        received += 1;
        if paced {
            last = now;
            lat.push(now.saturating_sub(word(&buf, 16)));
        } else if received % 1024 == 0 || next.iter().all(|&n| n >= job.count) {
            // Throughput: the time of the last message (a subscriber that
            // ends after a quiet spell, having lost some, is late by at
            // most 1023 messages, not by the quiet spell).
            last = shared_clock_ns();
        }
    }
    lost += next
        .iter()
        .map(|&n| job.count - n.min(job.count))
        .sum::<u64>();
    let mut text = format!("{received} {last} {lost}\n");
    for l in lat {
        text.push_str(&format!("{l}\n"));
    }
    std::fs::write(job.path(&format!("res{}", role.index)), text)?;
    drop(sub);
    Ok(())
}

/// Messages per publisher (throughput; paced) for a row.
fn counts(topology: Topology, n: u32, quick: bool) -> (u64, u64) {
    let total: u64 = if quick { 20_000 } else { 1_000_000 };
    let paced: u64 = if quick { 100 } else { 3_000 };
    match topology {
        Topology::ManyToOne => (total / u64::from(n), paced),
        Topology::OneToMany => (total, paced),
    }
}

/// Every row of the table, in order.
pub fn rows(quick: bool) -> Vec<(Topology, u32, Row)> {
    let mut v = Vec::new();
    for topology in [Topology::ManyToOne, Topology::OneToMany] {
        for &n in COUNTS {
            for t in TRANSPORTS {
                let (thr, paced) = counts(topology, n, quick);
                for (workload, count) in [(Workload::Throughput, thr), (Workload::Latency, paced)] {
                    let (publishers, subscribers) = match topology {
                        Topology::ManyToOne => (n, 1),
                        Topology::OneToMany => (1, n),
                    };
                    v.push((
                        topology,
                        n,
                        Row {
                            transport: t.to_string(),
                            workload,
                            publishers,
                            subscribers,
                            per_publisher: count,
                            multi_publisher: topology == Topology::ManyToOne,
                        },
                    ));
                }
            }
        }
    }
    v
}

/// `--contention [--quick] [--messages N] [--only TEXT]`: runs every row
/// and prints the table. `messages` (for the test) sets every row's
/// messages per publisher; `only` keeps the rows whose
/// `TOPOLOGY TRANSPORT MULTI` (e.g. `1 → 2 memlane-block false`) contains it.
///
/// # Errors
///
/// As for [`run_row`]; a subscriber that received another number of
/// messages than were sent to it.
pub fn table(quick: bool, messages: Option<u64>, only: Option<&str>) -> io::Result<()> {
    let dir = memlane_benchkit::TempDir::new("memlane-contention")?;
    let launcher = Launcher::current_exe(&["--child"])?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut all = rows(quick);
    if let Some(only) = only {
        all.retain(|(t, n, row)| {
            format!("{} {} {}", t.label(*n), row.transport, row.multi_publisher).contains(only)
        });
    }
    if let Some(m) = messages {
        for (_, _, row) in &mut all {
            row.per_publisher = m;
        }
    }
    let rounds = if quick || messages.is_some() {
        1
    } else {
        ROUNDS
    };
    let mut got: Vec<Vec<RowResult>> = vec![Vec::new(); all.len()];
    let mut k = 0;
    for round in 0..rounds {
        for (i, (topology, n, row)) in all.iter().enumerate() {
            k += 1;
            let tag = format!("c{k}-{}", std::process::id());
            let t = std::time::Instant::now();
            let r = run_row(&launcher, dir.path(), &tag, row)?;
            check_counts(&r)?;
            eprintln!(
                "[{}/{rounds} {:>2}/{}] {:<6} {:<14} {:<10} {:>8.3} M msg/s {} ({:.1}s)",
                round + 1,
                i + 1,
                all.len(),
                topology.label(*n),
                row.transport,
                if row.workload == Workload::Latency {
                    "paced"
                } else {
                    "throughput"
                },
                r.total_per_s / 1e6,
                r.latency_ns
                    .map(|(p50, p99, _)| format!("p50 {:.1} µs p99 {:.1} µs", p50 / 1e3, p99 / 1e3))
                    .unwrap_or_default(),
                t.elapsed().as_secs_f64()
            );
            got[i].push(r);
        }
    }
    let results: Vec<(Topology, u32, Summary)> = all
        .iter()
        .zip(got)
        .map(|((t, n, _), rounds)| (*t, *n, Summary::of(rounds)))
        .collect();
    print!("{}", markdown(&results, cpus, quick));
    Ok(())
}

/// Interleaved rounds of every row (each figure is the median round).
pub const ROUNDS: usize = 3;

/// Fails if a memlane subscriber missed a message, or if what the
/// subscribers received and lost does not add up to what was sent; notes
/// iceoryx2's losses.
fn check_counts(r: &RowResult) -> io::Result<()> {
    let row = &r.row;
    let want = row.per_publisher * u64::from(row.publishers);
    let sum: u64 = r.received.iter().sum();
    // memlane is lossless: every subscriber must have every message.
    // iceoryx2 rows report what they lost (the figures of such a row are
    // still printed), but what came must add up.
    if (row.transport.starts_with("memlane") && r.received.iter().any(|&got| got != want))
        || sum + r.lost != want * u64::from(row.subscribers)
    {
        return Err(io::Error::other(format!(
            "{row:?}: subscribers received {:?} messages and lost {}, {want} each were sent",
            r.received, r.lost
        )));
    }
    if r.lost > 0 {
        eprintln!(
            "note: {} lost {} of {} messages ({row:?})",
            row.transport,
            r.lost,
            want * u64::from(row.subscribers)
        );
    }
    Ok(())
}

/// The rounds of one row: the median round (by messages/s, or by p50 for
/// paced rows), the lowest and highest of that figure, and what all rounds
/// lost.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The median round.
    pub median: RowResult,
    /// Lowest and highest messages/s (throughput) or p50 ns (paced).
    pub range: (f64, f64),
    /// Messages lost over all rounds.
    pub lost: u64,
    /// Rounds.
    pub rounds: usize,
}

impl Summary {
    fn of(mut rounds: Vec<RowResult>) -> Summary {
        let key = |r: &RowResult| match r.latency_ns {
            Some((p50, _, _)) => p50,
            None => r.total_per_s,
        };
        rounds.sort_by(|a, b| key(a).total_cmp(&key(b)));
        let range = (
            rounds.first().map_or(f64::NAN, key),
            rounds.last().map_or(f64::NAN, key),
        );
        let lost = rounds.iter().map(|r| r.lost).sum();
        let n = rounds.len();
        Summary {
            median: rounds.swap_remove(n / 2),
            range,
            lost,
            rounds: n,
        }
    }
}

/// The machine line printed with every table of this binary's modes.
pub fn machine_line(cpus: usize) -> String {
    format!(
        "CPU: {} ({cpus} CPUs available); flags: {}; kernel {}",
        memlane_benchkit::cpu_model().unwrap_or_else(|| "unknown".into()),
        memlane_benchkit::cpu_flags().unwrap_or_else(|| "unknown".into()),
        memlane_benchkit::kernel().unwrap_or_else(|| "unknown".into()),
    )
}

/// The markdown table of a run.
pub fn markdown(results: &[(Topology, u32, Summary)], cpus: usize, quick: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let rounds = results.first().map_or(0, |r| r.2.rounds);
    let _ = writeln!(s, "{}", machine_line(cpus));
    let _ = writeln!(
        s,
        "{SIZE} B messages, one process per endpoint (pinned one per CPU where they are no \
         more than the CPUs, else not pinned); {rounds} interleaved \
         round(s) of every row, the median round shown (range: lowest–highest){}; paced: \
         each publisher sleeps {} µs between sends",
        if quick { "; --quick (a smoke run)" } else { "" },
        PACE.as_micros()
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| topology | transport | processes | received, M msgs/s (all subscribers) | range | \
         per subscriber | paced one-way p50 | range | p99 | max | lost |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for (topology, n, r) in results {
        let row = &r.median.row;
        if row.workload != Workload::Throughput {
            continue;
        }
        let paced = results.iter().find(|(t2, n2, x)| {
            t2 == topology
                && n2 == n
                && x.median.row.transport == row.transport
                && x.median.row.workload == Workload::Latency
        });
        let us = |ns: f64| format!("{:.1} µs", ns / 1e3);
        let (p50, range, p99, max) = paced
            .and_then(|(_, _, x)| x.median.latency_ns.map(|l| (l, x.range)))
            .map(|((a, b, c), (lo, hi))| {
                (
                    us(a),
                    format!("{:.1}–{:.1}", lo / 1e3, hi / 1e3),
                    us(b),
                    format!("{:.0} µs", c / 1e3),
                )
            })
            .unwrap_or_else(|| ("–".into(), "–".into(), "–".into(), "–".into()));
        let procs = row.publishers + row.subscribers;
        let total = r.median.total_per_s / 1e6;
        let _ = writeln!(
            s,
            "| {} | {} | {procs}{} | {total:.2} | {:.2}–{:.2} | {:.2} | {p50} | {range} | {p99} \
             | {max} | {} |",
            topology.label(*n),
            row.transport,
            if procs as usize > cpus {
                " (> CPUs)"
            } else {
                ""
            },
            r.range.0 / 1e6,
            r.range.1 / 1e6,
            total / f64::from(row.subscribers),
            r.lost + paced.map_or(0, |(_, _, x)| x.lost),
        );
    }
    let _ = writeln!(
        s,
        "\nChecked in every row: each subscriber got each publisher's messages in order and \
         none twice; `lost` counts those that never came, throughput and paced rows and all \
         rounds together (a memlane row that loses one fails the run)."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        let r = Role {
            transport: "iox2-poll".into(),
            publisher: true,
            index: 3,
            publishers: 4,
            subscribers: 1,
            multi: true,
        };
        assert_eq!(Role::decode(&r.encode()).unwrap(), r);
        assert!(Role::decode("contention:x").is_err());
    }
}

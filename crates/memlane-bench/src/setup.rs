//! `memlane-compare --setup`: what it costs to set a channel up and take it
//! down, next to iceoryx2's service and port creation, in one run; and the
//! memory one channel takes with the defaults.
//!
//! **Timings.** Each step of a channel's life, timed alone (`Instant`
//! around the one call), [`REPS`] times with a fresh name each time, in one
//! process; the table gives the median and the 90th percentile.
//!
//! * memlane: `Channel::builder(name).create()` with the defaults (1 MiB
//!   ring, 64 KiB messages, 8 publishers, 8 subscribers), a second handle
//!   by `Channel::open_options(name).open()`, `publisher()` and
//!   `subscriber()` on it (join), dropping each (leave), dropping both
//!   channel handles (close), `memlane::remove`.
//! * iceoryx2 0.10 (`ipc::Service`, publish-subscribe of `[u8]`): a node,
//!   the service's `create` on a fresh name (and `open_or_create` on
//!   another fresh name), its `open` from a second node (as another
//!   process would), a publisher and a subscriber port, dropping each,
//!   dropping the service handles (the last one removes the service), and
//!   dropping a node. Settings comparable with memlane's defaults: 8
//!   publishers, 8 subscribers, publishers' slices up to 64 KiB, the
//!   library's other defaults (a subscriber queue of 2, no history).
//!
//! **Memory.** One channel (one service) with those settings, a publisher
//! and a subscriber joined, then one 64-byte message sent and received:
//! the size of its files, the space tmpfs gave them (`st_blocks`), the
//! resident pages of its mappings in this process (`Rss` of
//! `/proc/self/smaps`) and the growth of the process's `VmRSS`.
//!
//! Everything lives in a private directory (iceoryx2's own files under its
//! root path there, its shared memory in `/dev/shm` under a prefix of this
//! run), removed at the end.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use iceoryx2::prelude::*;
use memlane::Channel;
use memlane_benchkit::{bad, TempDir};

/// Repetitions of each step (`--quick`: [`QUICK_REPS`]).
pub const REPS: usize = 200;
/// Repetitions with `--quick`.
pub const QUICK_REPS: usize = 20;

fn err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

fn ierr(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("iceoryx2: {e:?}"))
}

/// The memlane steps, in the table's order.
pub const MEMLANE_STEPS: &[&str] = &[
    "create (defaults)",
    "open",
    "join as publisher",
    "join as subscriber",
    "leave (publisher)",
    "leave (subscriber)",
    "close (both handles)",
    "remove",
];

/// The iceoryx2 steps, in the table's order.
pub const IOX_STEPS: &[&str] = &[
    "node create",
    "service create",
    "service open_or_create (new)",
    "service open (second node)",
    "publisher port",
    "subscriber port",
    "drop publisher",
    "drop subscriber",
    "drop services (removes them)",
    "node drop",
];

fn us(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6
}

/// Microseconds per step of memlane, `reps` repetitions each.
fn memlane_steps(dir: &Path, reps: usize) -> io::Result<Vec<Vec<f64>>> {
    let mut s = vec![Vec::with_capacity(reps); MEMLANE_STEPS.len()];
    for i in 0..reps {
        let name = format!("setup{i}");
        let t = Instant::now();
        let created = Channel::builder(&name).dir(dir).create().map_err(err)?;
        s[0].push(us(t));
        let t = Instant::now();
        let opened = Channel::open_options(&name).dir(dir).open().map_err(err)?;
        s[1].push(us(t));
        let t = Instant::now();
        let publ = opened.publisher().map_err(err)?;
        s[2].push(us(t));
        let t = Instant::now();
        let sub = opened.subscriber().map_err(err)?;
        s[3].push(us(t));
        let t = Instant::now();
        drop(publ);
        s[4].push(us(t));
        let t = Instant::now();
        drop(sub);
        s[5].push(us(t));
        let t = Instant::now();
        drop((opened, created));
        s[6].push(us(t));
        let t = Instant::now();
        memlane::remove(Some(dir), &name).map_err(err)?;
        s[7].push(us(t));
    }
    Ok(s)
}

/// The iceoryx2 configuration of this run: its files under `dir`, its
/// shared memory under `prefix`.
fn iox_config(dir: &Path, prefix: &str) -> io::Result<Config> {
    let mut cfg = Config::default();
    cfg.global.prefix = FileName::new(prefix.as_bytes()).map_err(ierr)?;
    let root = format!("{}/iox2/", dir.display());
    cfg.global
        .set_root_path(&iceoryx2::prelude::Path::new(root.as_bytes()).map_err(ierr)?);
    Ok(cfg)
}

type IoxFactory =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>;

fn iox_builder<'a>(
    node: &'a Node<ipc::Service>,
    name: &'a ServiceName,
) -> iceoryx2::service::builder::publish_subscribe::Builder<[u8], (), ipc::Service> {
    node.service_builder(name)
        .publish_subscribe::<[u8]>()
        .max_publishers(8)
        .max_subscribers(8)
}

fn iox_service_name(tag: &str, i: usize, what: &str) -> io::Result<ServiceName> {
    ServiceName::new(&format!("memlane-bench/{tag}/setup{i}/{what}")).map_err(ierr)
}

/// Microseconds per step of iceoryx2.
fn iox_steps(cfg: &Config, tag: &str, reps: usize) -> io::Result<Vec<Vec<f64>>> {
    let mut s = vec![Vec::with_capacity(reps); IOX_STEPS.len()];
    let node2 = NodeBuilder::new()
        .config(cfg)
        .create::<ipc::Service>()
        .map_err(ierr)?;
    for i in 0..reps {
        let t = Instant::now();
        let node = NodeBuilder::new()
            .config(cfg)
            .create::<ipc::Service>()
            .map_err(ierr)?;
        s[0].push(us(t));
        let name = iox_service_name(tag, i, "a")?;
        let name_b = iox_service_name(tag, i, "b")?;
        let t = Instant::now();
        let created: IoxFactory = iox_builder(&node, &name).create().map_err(ierr)?;
        s[1].push(us(t));
        let t = Instant::now();
        let created_b: IoxFactory = iox_builder(&node, &name_b).open_or_create().map_err(ierr)?;
        s[2].push(us(t));
        let t = Instant::now();
        let opened: IoxFactory = iox_builder(&node2, &name).open().map_err(ierr)?;
        s[3].push(us(t));
        let t = Instant::now();
        let publ = opened
            .publisher_builder()
            .initial_max_slice_len(memlane::DEFAULT_MAX_MESSAGE)
            .create()
            .map_err(ierr)?;
        s[4].push(us(t));
        let t = Instant::now();
        let sub = opened.subscriber_builder().create().map_err(ierr)?;
        s[5].push(us(t));
        let t = Instant::now();
        drop(publ);
        s[6].push(us(t));
        let t = Instant::now();
        drop(sub);
        s[7].push(us(t));
        let t = Instant::now();
        drop((opened, created, created_b));
        s[8].push(us(t));
        let t = Instant::now();
        drop(node);
        s[9].push(us(t));
    }
    drop(node2);
    Ok(s)
}

/// Resident kilobytes of this process's mappings whose path contains
/// `needle` (`/proc/self/smaps`), and how many mappings there were.
fn smaps_rss_kb(needle: &str) -> io::Result<(u64, usize)> {
    let text = std::fs::read_to_string("/proc/self/smaps")?;
    let mut kb = 0;
    let mut maps = 0;
    let mut inside = false;
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: "start-end perms offset dev inode path".
            inside = line.contains(needle);
            if inside {
                maps += 1;
            }
        } else if inside {
            if let Some(v) = line.strip_prefix("Rss:") {
                kb += v
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0);
            }
        }
    }
    Ok((kb, maps))
}

/// This process's `VmRSS`, kB.
fn vm_rss_kb() -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/self/status")?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| bad("no VmRSS in /proc/self/status"))
}

/// Sizes (apparent, allocated) of the files under `dir` (recursively)
/// whose name starts with `prefix` (all files if `prefix` is empty), and
/// their number.
fn files(dir: &Path, prefix: &str) -> (u64, u64, usize) {
    let mut out = (0, 0, 0);
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if m.is_dir() {
            let (a, b, c) = files(&e.path(), prefix);
            out = (out.0 + a, out.1 + b, out.2 + c);
        } else if e.file_name().to_string_lossy().starts_with(prefix) {
            out = (out.0 + m.len(), out.1 + m.blocks() * 512, out.2 + 1);
        }
    }
    out
}

/// The memory of one channel or service.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// Files (shared memory and others).
    pub files: usize,
    /// Their total size, bytes.
    pub file_bytes: u64,
    /// Space tmpfs gave them, bytes.
    pub allocated_bytes: u64,
    /// Resident kB of its mappings in this process after create (for
    /// iceoryx2: after the service's create, before any port).
    pub rss_created_kb: u64,
    /// Resident kB of its mappings after a publisher and a subscriber
    /// joined and one message went through.
    pub rss_used_kb: u64,
    /// Mappings of it in this process.
    pub mappings: usize,
    /// Growth of `VmRSS`, kB, from before create to after the message.
    pub vm_rss_delta_kb: i64,
}

fn memlane_memory(dir: &Path) -> io::Result<Memory> {
    let before = vm_rss_kb()?;
    let ch = Channel::builder("setup-mem")
        .dir(dir)
        .create()
        .map_err(err)?;
    let needle = ch.path().display().to_string();
    let (created, _) = smaps_rss_kb(&needle)?;
    let mut publ = ch.publisher().map_err(err)?;
    let mut sub = ch.subscriber().map_err(err)?;
    publ.send(&memlane_benchkit::payload(64)).map_err(err)?;
    let got = sub.recv().map_err(err)?.len();
    if got != 64 {
        return Err(bad("the memory probe's message came back wrong"));
    }
    let (used, mappings) = smaps_rss_kb(&needle)?;
    let after = vm_rss_kb()?;
    let (file_bytes, allocated_bytes, n) = files(dir, "");
    drop((publ, sub, ch));
    memlane::remove(Some(dir), "setup-mem").map_err(err)?;
    Ok(Memory {
        files: n,
        file_bytes,
        allocated_bytes,
        rss_created_kb: created,
        rss_used_kb: used,
        mappings,
        vm_rss_delta_kb: after as i64 - before as i64,
    })
}

fn iox_memory(cfg: &Config, dir: &Path, prefix: &str, tag: &str) -> io::Result<Memory> {
    let before = vm_rss_kb()?;
    let node = NodeBuilder::new()
        .config(cfg)
        .create::<ipc::Service>()
        .map_err(ierr)?;
    let name = iox_service_name(tag, 0, "mem")?;
    let service: IoxFactory = iox_builder(&node, &name).create().map_err(ierr)?;
    let (created, _) = smaps_rss_kb(prefix)?;
    let publ = service
        .publisher_builder()
        .initial_max_slice_len(memlane::DEFAULT_MAX_MESSAGE)
        .create()
        .map_err(ierr)?;
    let sub = service.subscriber_builder().create().map_err(ierr)?;
    {
        use iceoryx2::port::update_connections::UpdateConnections;
        publ.update_connections().map_err(ierr)?;
        let s = publ.loan_slice_uninit(64).map_err(ierr)?;
        s.write_from_slice(&memlane_benchkit::payload(64))
            .send()
            .map_err(ierr)?;
        let got = sub
            .receive()
            .map_err(ierr)?
            .map(|m| m.payload().len())
            .ok_or_else(|| bad("iceoryx2's memory probe received nothing"))?;
        if got != 64 {
            return Err(bad("iceoryx2's memory probe's message came back wrong"));
        }
    }
    let (used, mappings) = smaps_rss_kb(prefix)?;
    let after = vm_rss_kb()?;
    let shm = files(Path::new("/dev/shm"), prefix);
    let own = files(&dir.join("iox2"), "");
    drop((publ, sub, service, node));
    Ok(Memory {
        files: shm.2 + own.2,
        file_bytes: shm.0 + own.0,
        allocated_bytes: shm.1 + own.1,
        rss_created_kb: created,
        rss_used_kb: used,
        mappings,
        vm_rss_delta_kb: after as i64 - before as i64,
    })
}

fn median_p90(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (q(0.5), q(0.9))
}

/// Removes what iceoryx2 left in `/dev/shm` under `prefix`; returns the
/// names of the files it found.
fn remove_shm_prefix(prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/dev/shm") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(prefix) {
                let _ = std::fs::remove_file(e.path());
                names.push(name);
            }
        }
    }
    names
}

/// `--setup [--quick] [--reps N]`: measures and prints the tables.
///
/// # Errors
///
/// Any failure of either library, or of reading `/proc/self`.
pub fn table(quick: bool, reps: Option<usize>) -> io::Result<()> {
    let reps = reps.unwrap_or(if quick { QUICK_REPS } else { REPS }).max(1);
    let dir = TempDir::new("memlane-setup")?;
    let tag = format!("s{}", std::process::id());
    let prefix = format!("mlb_{tag}_");
    let cfg = iox_config(dir.path(), &prefix)?;
    set_log_level(LogLevel::Error);
    let chans = dir.path().join("channels");
    std::fs::create_dir(&chans)?;
    let result = (|| {
        // Interleaved: half of each library's repetitions, then the rest,
        // so that a change of the host's state hits both.
        let first = reps / 2;
        let mut m = memlane_steps(&chans, first)?;
        let mut x = iox_steps(&cfg, &format!("{tag}a"), first)?;
        let m2 = memlane_steps(&chans, reps - first)?;
        let x2 = iox_steps(&cfg, &format!("{tag}b"), reps - first)?;
        for (a, b) in m.iter_mut().zip(m2) {
            a.extend(b);
        }
        for (a, b) in x.iter_mut().zip(x2) {
            a.extend(b);
        }
        let mm = memlane_memory(&chans)?;
        let xm = iox_memory(&cfg, dir.path(), &prefix, &tag)?;
        Ok::<_, io::Error>((m, x, mm, xm))
    })();
    let left = remove_shm_prefix(&prefix);
    let (m, x, mm, xm) = result?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{}", crate::contention::machine_line(cpus));
    println!(
        "{reps} repetitions of each step, fresh names, one process{}; median and 90th \
         percentile, µs",
        if quick { "; --quick (a smoke run)" } else { "" }
    );
    println!();
    println!("| step | memlane p50 | p90 | | iceoryx2 0.10 step | p50 | p90 |");
    println!("|---|---|---|---|---|---|---|");
    let rows = MEMLANE_STEPS.len().max(IOX_STEPS.len());
    for i in 0..rows {
        let cell = |names: &[&str], v: &[Vec<f64>]| match names.get(i) {
            Some(n) => {
                let (p50, p90) = median_p90(v[i].clone());
                format!("{n} | {p50:.1} | {p90:.1}")
            }
            None => " | | ".to_string(),
        };
        println!(
            "| {} | | {} |",
            cell(MEMLANE_STEPS, &m),
            cell(IOX_STEPS, &x)
        );
    }
    let sum = |v: &[Vec<f64>], idx: &[usize]| -> f64 {
        idx.iter().map(|&i| median_p90(v[i].clone()).0).sum()
    };
    println!();
    println!(
        "Sums of medians: memlane create + join both + leave both + close + remove = {:.0} µs; \
         iceoryx2 node + service create + both ports + drop ports + drop services + node drop \
         = {:.0} µs.",
        sum(&m, &[0, 2, 3, 4, 5, 6, 7]),
        sum(&x, &[0, 1, 4, 5, 6, 7, 8, 9]),
    );
    println!();
    println!(
        "| memory of one channel, defaults | files | file size | allocated (tmpfs) | \
         resident after create | after join + 1 message | mappings | process VmRSS growth |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (what, mem) in [
        (
            "memlane (1 MiB ring, 64 KiB messages, 8 + 8 endpoints)",
            &mm,
        ),
        (
            "iceoryx2 service (64 KiB slices, 8 + 8 ports, queue 2; one node)",
            &xm,
        ),
    ] {
        println!(
            "| {what} | {} | {:.0} KiB | {:.0} KiB | {} KiB | {} KiB | {} | {} KiB |",
            mem.files,
            mem.file_bytes as f64 / 1024.0,
            mem.allocated_bytes as f64 / 1024.0,
            mem.rss_created_kb,
            mem.rss_used_kb,
            mem.mappings,
            mem.vm_rss_delta_kb
        );
    }
    if !left.is_empty() {
        println!();
        println!(
            "(iceoryx2 left {} file(s) in /dev/shm after every port, service and node was \
             dropped: {}; removed)",
            left.len(),
            left.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaps_finds_a_mapping_of_a_channel() {
        let dir = TempDir::new("setup-test").unwrap();
        let ch = Channel::builder("probe").dir(dir.path()).create().unwrap();
        let (kb, maps) = smaps_rss_kb(&ch.path().display().to_string()).unwrap();
        assert!(maps >= 1, "no mapping of {}", ch.path().display());
        assert!(kb > 0);
        assert!(vm_rss_kb().unwrap() > 0);
        let (size, _, n) = files(dir.path(), "");
        assert_eq!(n, 1);
        assert!(size >= memlane::DEFAULT_CAPACITY);
        drop(ch);
    }

    #[test]
    fn median_and_p90() {
        let (a, b) = median_p90((1..=11).map(f64::from).collect());
        assert_eq!((a, b), (6.0, 10.0));
    }
}

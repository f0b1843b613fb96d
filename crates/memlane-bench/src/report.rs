//! `RESULTS.md`: every figure with its ratio to the floor and to each peer,
//! and the targets, met or missed.

use std::fmt::Write;

use memlane_benchkit::{LatencyResult, ThroughputResult};

use crate::{
    Results, LATENCY_SIZES, LATENCY_TRANSPORTS, SWEEP_SIZES, SWEEP_TRANSPORTS, THROUGHPUT_SIZES,
};

/// The machine: CPUs, CPU model, kernel.
pub fn machine(cpus: usize) -> String {
    let model = memlane_benchkit::cpu_model().unwrap_or_else(|| "unknown CPU".into());
    let kernel = memlane_benchkit::kernel().unwrap_or_else(|| "unknown".into());
    format!("{cpus} CPUs ({model}), Linux {kernel}")
}

fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A size for people: 8 B, 1 KiB, 64 KiB, 1 MiB.
pub fn size(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// Nanoseconds for people: 612 ns, 5.31 µs, 1.20 ms.
pub fn ns(v: f64) -> String {
    if v < 1_000.0 {
        format!("{v:.0} ns")
    } else if v < 1_000_000.0 {
        format!("{:.2} µs", v / 1e3)
    } else {
        format!("{:.2} ms", v / 1e6)
    }
}

fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    }
}

/// The result for `transport` at `size` in `v`.
pub fn lat<'a>(v: &'a [LatencyResult], transport: &str, size: usize) -> Option<&'a LatencyResult> {
    v.iter()
        .find(|r| r.transport == transport && r.size == size)
}

/// The throughput result for `transport` at `size`.
pub fn thr<'a>(
    v: &'a [ThroughputResult],
    transport: &str,
    size: usize,
) -> Option<&'a ThroughputResult> {
    v.iter()
        .find(|r| r.transport == transport && r.size == size)
}

const LAT_PEERS: &[&str] = &[
    "floor-spin",
    "floor-futex",
    "iox2-spin",
    "iox2-event",
    "iox2-rpc",
    "pipe",
    "uds-stream",
    "uds-seqpacket",
];
const THR_PEERS: &[&str] = &[
    "floor-ring",
    "memcpy",
    "iox2-spin",
    "pipe",
    "uds-stream",
    "uds-seqpacket",
];

/// One target: what, the measured ratio, the bound, whether met.
pub struct Target {
    /// What is compared.
    pub what: String,
    /// The measured figures.
    pub measured: String,
    /// Met?
    pub met: Option<bool>,
}

/// The issue-5 targets evaluated on `r`.
pub fn targets(r: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let p50 = |t: &str, s: usize| lat(&r.latency, t, s).map(|x| x.p50_ns);
    for s in [8, 1024] {
        let (m, f, i) = (
            p50("memlane-spin", s),
            p50("floor-spin", s),
            p50("iox2-spin", s),
        );
        out.push(Target {
            what: format!(
                "busy-poll one-way p50, {}: ≤ 1.3× cache-line floor and below iceoryx2",
                size(s)
            ),
            measured: match (m, f, i) {
                (Some(m), Some(f), Some(i)) => format!(
                    "memlane {} = {:.2}× floor ({}); iceoryx2 {} ({:.2}× memlane)",
                    ns(m),
                    m / f,
                    ns(f),
                    ns(i),
                    i / m
                ),
                _ => "not measured".into(),
            },
            met: match (m, f, i) {
                (Some(m), Some(f), Some(i)) => Some(m <= 1.3 * f && m < i),
                _ => None,
            },
        });
    }
    for s in LATENCY_SIZES.iter().copied() {
        let m = p50("memlane-block", s);
        let f = p50("floor-futex", s);
        let p = p50("pipe", s);
        let u = p50("uds-stream", s);
        out.push(Target {
            what: format!(
                "blocking (`recv`) one-way p50, {}: ≤ 1.3× futex floor, below pipe and Unix socket",
                size(s)
            ),
            measured: match (m, f, p, u) {
                (Some(m), Some(f), Some(p), Some(u)) => format!(
                    "memlane {} = {:.2}× futex floor ({}); pipe {}, Unix stream {}",
                    ns(m),
                    m / f,
                    ns(f),
                    ns(p),
                    ns(u)
                ),
                _ => "not measured".into(),
            },
            met: match (m, f, p, u) {
                (Some(m), Some(f), Some(p), Some(u)) => Some(m <= 1.3 * f && m < p && m < u),
                _ => None,
            },
        });
    }
    for s in LATENCY_SIZES.iter().copied() {
        let m = p50("memlane-sleep", s);
        let f = p50("floor-futex", s);
        let p = p50("pipe", s);
        let u = p50("uds-stream", s);
        out.push(Target {
            what: format!(
                "for information, not a target: no spin (`set_spin(0)`: every receive sleeps, the same kernel wake-up as a pipe or socket), {}",
                size(s)
            ),
            measured: match (m, f, p, u) {
                (Some(m), Some(f), Some(p), Some(u)) => format!(
                    "memlane {} = {:.2}× futex floor; {:.2}× pipe, {:.2}× Unix stream",
                    ns(m),
                    m / f,
                    m / p,
                    m / u
                ),
                _ => "not measured".into(),
            },
            met: None,
        });
    }
    let tp = |t: &str, s: usize| thr(&r.throughput, t, s).map(|x| x.msgs_per_s);
    let (m, f) = (tp("memlane-spin", 64), tp("floor-ring", 64));
    out.push(Target {
        what: "64 B throughput: ≥ 0.5× the minimal-ring floor".into(),
        measured: match (m, f) {
            (Some(m), Some(f)) => format!(
                "memlane {:.1} M/s = {:.2}× ring ({:.1} M/s)",
                m / 1e6,
                m / f,
                f / 1e6
            ),
            _ => "not measured".into(),
        },
        met: m.zip(f).map(|(m, f)| m >= 0.5 * f),
    });
    let mb = 1 << 20;
    let (m, f, l) = (
        tp("memlane-spin", mb),
        tp("floor-ring", mb),
        tp("memlane-loan", mb),
    );
    out.push(Target {
        what: "1 MiB throughput, copying send: ≥ 0.9× the minimal-ring floor".into(),
        measured: match (m, f) {
            (Some(m), Some(f)) => format!(
                "memlane {:.2} GB/s = {:.2}× ring ({:.2} GB/s)",
                m * mb as f64 / 1e9,
                m / f,
                f * mb as f64 / 1e9
            ),
            _ => "not measured".into(),
        },
        met: m.zip(f).map(|(m, f)| m >= 0.9 * f),
    });
    let l64 = tp("memlane-loan", 64);
    out.push(Target {
        what: "1 MiB with a loan: no copy (cost independent of size)".into(),
        measured: match (l, l64) {
            (Some(l), Some(l64)) => format!(
                "loan+commit of 1 MiB: {:.2} M msgs/s (of 64 B: {:.2} M/s); an equivalent {:.0} GB/s",
                l / 1e6,
                l64 / 1e6,
                l * mb as f64 / 1e9
            ),
            (Some(l), None) => format!("loan+commit of 1 MiB: {:.2} M msgs/s", l / 1e6),
            _ => "not measured".into(),
        },
        met: None,
    });
    let one = lat(&r.fanout_latency, "memlane-spin", 8).filter(|x| x.subscribers == 1);
    let eight = r.fanout_latency.iter().find(|x| x.subscribers == 8);
    out.push(Target {
        what: "8 subscribers: one-way p50 within 2× of 1 subscriber".into(),
        measured: match (one, eight) {
            (Some(a), Some(b)) => format!(
                "{} vs {} = {:.2}×",
                ns(b.p50_ns),
                ns(a.p50_ns),
                b.p50_ns / a.p50_ns
            ),
            _ => "not measured".into(),
        },
        met: one.zip(eight).map(|(a, b)| b.p50_ns <= 2.0 * a.p50_ns),
    });
    out
}

/// The figure of latest-value operation `op` at `size`, ns per operation.
pub fn latest_op(r: &Results, op: &str, size: usize) -> Option<f64> {
    r.latest
        .iter()
        .find(|x| x.op == op && x.size == size)
        .map(|x| x.ns_per_op)
}

/// The latest-value comparison: memlane `Latest` against the iceoryx2
/// blackboard, with the copy floor, per operation and size.
fn latest_section(r: &Results, s: &mut String) {
    let _ = writeln!(
        s,
        "\n## Latest value (memlane `Latest` against the iceoryx2 blackboard, one process)\n"
    );
    let rounds = r.latest.first().map_or(0, |x| x.rounds);
    let _ = writeln!(
        s,
        "Nanoseconds per operation, the median of {rounds} interleaved rounds (every operation \
         once per round). Read: `Latest::get_into` into a `Vec` against the blackboard reader's \
         `EntryHandle::get` (a copy returned by value), of a value nobody writes. Write, nobody \
         waiting: `Latest::set` against `EntryHandleMut::update_with_copy` of a `[u8; N]`. The \
         floor, `copy`: the value copied into a `Vec`. The blackboard cannot wake a reader, so \
         it has no wake-up figure; memlane's is in `memlane bench`, next to the futex floor.\n"
    );
    let _ = writeln!(
        s,
        "| operation | value | memlane | iceoryx2 blackboard | memlane ÷ iceoryx2 | copy (floor) | \
         memlane ÷ copy | iceoryx2 ÷ copy |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (what, m, i) in [
        ("read, unchanged value", "latest-get", "blackboard-get"),
        ("write, nobody waiting", "latest-set", "blackboard-set"),
    ] {
        for &sz in crate::latest::SIZES {
            let (m, i, c) = (
                latest_op(r, m, sz),
                latest_op(r, i, sz),
                latest_op(r, "copy", sz),
            );
            if m.is_none() && i.is_none() {
                continue;
            }
            let fig = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1} ns"));
            let _ = writeln!(
                s,
                "| {what} | {} | {} | {} | {} | {} | {} | {} |",
                size(sz),
                fig(m),
                fig(i),
                m.map_or("–".into(), |m| ratio(m, i)),
                fig(c),
                m.map_or("–".into(), |m| ratio(m, c)),
                i.map_or("–".into(), |i| ratio(i, c)),
            );
        }
    }
}

/// The whole `RESULTS.md`.
pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# memlane benchmark results\n");
    let _ = writeln!(
        s,
        "Measured {} by `cargo run --release -p memlane-bench -- --out docs/benchmarks`{} on {}; \
         the two processes {}pinned one per CPU. The run took {:.0} s. How each workload works: \
         [README.md](README.md).\n",
        today(),
        if r.quick {
            " **with `--quick`** (a smoke test: few iterations, not a measurement)"
        } else {
            ""
        },
        machine(r.cpus),
        if r.pinned { "" } else { "not " },
        r.seconds
    );
    let _ = writeln!(s, "## Issue-5 targets\n");
    let _ = writeln!(s, "| target | measured | met |\n|---|---|---|");
    for t in targets(r) {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "see text",
        };
        let _ = writeln!(s, "| {} | {} | {} |", t.what, t.measured, met);
    }
    let _ = writeln!(s, "\n## One-way latency (half a round trip)\n");
    let _ = writeln!(
        s,
        "Ratios are this transport's p50 divided by the other's p50: below 1× is faster. \
         Busy-polling transports (`*-spin`, `memlane-block`) ran {} interleaved rounds and \
         show the round with the median p50; the others (seconds per job, dominated by \
         the kernel's wake-up) one.\n",
        crate::latency_rounds("floor-spin", r.quick)
    );
    for &sz in LATENCY_SIZES {
        let _ = writeln!(s, "### {}\n", size(sz));
        let _ = write!(s, "| transport | p50 | p99 | p99.9 |");
        for p in LAT_PEERS {
            let _ = write!(s, " ÷ {p} |");
        }
        let _ = write!(s, "\n|---|---:|---:|---:|");
        for _ in LAT_PEERS {
            let _ = write!(s, "---:|");
        }
        let _ = writeln!(s);
        for t in LATENCY_TRANSPORTS {
            let Some(x) = lat(&r.latency, t, sz) else {
                continue;
            };
            let _ = write!(
                s,
                "| {t} | {} | {} | {} |",
                ns(x.p50_ns),
                ns(x.p99_ns),
                ns(x.p999_ns)
            );
            for p in LAT_PEERS {
                let _ = write!(
                    s,
                    " {} |",
                    ratio(x.p50_ns, lat(&r.latency, p, sz).map(|y| y.p50_ns))
                );
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Throughput, one direction\n");
    let _ = writeln!(
        s,
        "Each figure is the median of {} interleaved rounds (every transport once per round). \
         Ratios are this transport's messages/s divided by the other's: above 1× is faster. \
         `memlane-loan` writes 8 bytes of each loan in place and its receiver reads 8 bytes in \
         place: its GB/s is what the same messages would carry, not bytes copied.\n",
        crate::throughput_rounds(r.quick)
    );
    for &sz in THROUGHPUT_SIZES {
        let _ = writeln!(s, "### {}\n", size(sz));
        let _ = write!(s, "| transport | M msgs/s | GB/s |");
        for p in THR_PEERS {
            let _ = write!(s, " ÷ {p} |");
        }
        let _ = write!(s, "\n|---|---:|---:|");
        for _ in THR_PEERS {
            let _ = write!(s, "---:|");
        }
        let _ = writeln!(s);
        for x in r.throughput.iter().filter(|x| x.size == sz) {
            let _ = write!(
                s,
                "| {} | {:.3} | {:.2} |",
                x.transport,
                x.msgs_per_s / 1e6,
                x.bytes_per_s / 1e9
            );
            for p in THR_PEERS {
                let _ = write!(
                    s,
                    " {} |",
                    ratio(
                        x.msgs_per_s,
                        thr(&r.throughput, p, sz).map(|y| y.msgs_per_s)
                    )
                );
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Fan-out (memlane, busy-polling subscribers)\n");
    let _ = writeln!(
        s,
        "The child holds N subscribers (one process: N spinning processes cannot each have a \
         core on a small machine); a message counts as delivered when all N have it. Latency: \
         8 B; throughput: 64 B, messages/s per subscriber.\n"
    );
    let _ = writeln!(s, "| subscribers | p50 | p99 | p99.9 | p50 ÷ 1 subscriber | M msgs/s | ÷ 1 subscriber |\n|---:|---:|---:|---:|---:|---:|---:|");
    let l1 = r
        .fanout_latency
        .iter()
        .find(|x| x.subscribers == 1)
        .map(|x| x.p50_ns);
    let t1 = r
        .fanout_throughput
        .iter()
        .find(|x| x.subscribers == 1)
        .map(|x| x.msgs_per_s);
    for x in &r.fanout_latency {
        let t = r
            .fanout_throughput
            .iter()
            .find(|y| y.subscribers == x.subscribers);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            x.subscribers,
            ns(x.p50_ns),
            ns(x.p99_ns),
            ns(x.p999_ns),
            ratio(x.p50_ns, l1),
            t.map_or("–".into(), |t| format!("{:.2}", t.msgs_per_s / 1e6)),
            t.map_or("–".into(), |t| ratio(t.msgs_per_s, t1)),
        );
    }
    latest_section(r, &mut s);
    let _ = writeln!(
        s,
        "\n## Latency versus size (one-way p50; in brackets: ÷ floor-spin)\n"
    );
    let _ = write!(s, "| size |");
    for t in SWEEP_TRANSPORTS {
        let _ = write!(s, " {t} |");
    }
    let _ = write!(s, "\n|---:|");
    for _ in SWEEP_TRANSPORTS {
        let _ = write!(s, "---:|");
    }
    let _ = writeln!(s);
    for &sz in SWEEP_SIZES {
        let _ = write!(s, "| {} |", size(sz));
        let f = lat(&r.sweep, "floor-spin", sz).map(|x| x.p50_ns);
        for t in SWEEP_TRANSPORTS {
            match lat(&r.sweep, t, sz) {
                Some(x) if *t == "floor-spin" => {
                    let _ = write!(s, " {} |", ns(x.p50_ns));
                }
                Some(x) => {
                    let _ = write!(s, " {} ({}) |", ns(x.p50_ns), ratio(x.p50_ns, f));
                }
                None => {
                    let _ = write!(s, " – |");
                }
            }
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "\nPlots: [latency_vs_size.svg](latency_vs_size.svg), [latency_8B.svg](latency_8B.svg), \
         [throughput_64B.svg](throughput_64B.svg), [throughput_1MiB.svg](throughput_1MiB.svg), \
         [fanout.svg](fanout.svg)."
    );
    s
}

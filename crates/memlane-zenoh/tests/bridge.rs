//! Two bridge processes, each with its own channel directory, standing for
//! two machines, on explicit 127.0.0.1 TCP endpoints (multicast scouting
//! off). Publishers and subscribers are child processes (this test binary
//! re-executed in a role).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use memlane::Channel;

const LONG: Duration = Duration::from_secs(600);

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"))
}

fn open_channel(dir: &str, name: &str) -> Channel {
    let start = Instant::now();
    loop {
        match Channel::open_options(name).dir(dir).open() {
            Ok(c) => return c,
            Err(e) if start.elapsed() > Duration::from_secs(60) => panic!("open {name}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The child roles; does nothing in a normal test run.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let dir = env("DIR");
    let chan = env("CHAN");
    match role.as_str() {
        // Sends COUNT test messages tagged TAG (or until STOP exists), one
        // every PACE_US microseconds (0: as fast as the ring allows).
        "publish" => {
            let tag: u8 = env("TAG").parse().unwrap();
            let count: u64 = std::env::var("COUNT")
                .map(|c| c.parse().unwrap())
                .unwrap_or(u64::MAX);
            let pace = Duration::from_micros(
                std::env::var("PACE_US")
                    .map(|p| p.parse().unwrap())
                    .unwrap_or(0),
            );
            let stop = std::env::var("STOP").ok().map(PathBuf::from);
            let small = std::env::var("SMALL").is_ok();
            let channel = open_channel(&dir, &chan);
            let mut publ = channel.publisher().unwrap();
            let mut rng = Rng::new(u64::from(tag));
            let mut seq = 0;
            while seq < count {
                if stop.as_ref().is_some_and(|s| s.exists()) {
                    break;
                }
                seq += 1;
                let mut m = make_message(tag, seq, &mut rng);
                if small {
                    m = small_message(tag, seq);
                }
                publ.send(&m).unwrap();
                if !pace.is_zero() {
                    std::thread::sleep(pace);
                }
            }
            println!("sent {seq}");
        }
        // Receives until it has EXPECT ("tag:count,...") messages, each
        // publisher's in order from 1 and none twice, then checks that
        // nothing more arrives for QUIET_MS. With GAPS=1: until STOP exists,
        // sequence numbers only increasing; PROGRESS gets "count last missing".
        "subscribe" => {
            let channel = open_channel(&dir, &chan);
            let mut sub = channel.subscriber().unwrap();
            std::fs::write(env("READY"), b"").unwrap();
            let gaps = std::env::var("GAPS").is_ok();
            let mut last: BTreeMap<u8, u64> = BTreeMap::new();
            let (mut count, mut missing) = (0u64, 0u64);
            if gaps {
                let stop = PathBuf::from(env("STOP"));
                let progress = PathBuf::from(env("PROGRESS"));
                let mut last_write = Instant::now();
                let mut written = 0;
                let mut seq = 0;
                while !stop.exists() {
                    let Ok(m) = sub.recv_timeout(Duration::from_millis(50)) else {
                        // Idle: what arrived last is written too.
                        if written != count {
                            let tmp = progress.with_extension("tmp");
                            std::fs::write(&tmp, format!("{count} {seq} {missing}")).unwrap();
                            if std::fs::rename(&tmp, &progress).is_ok() {
                                written = count;
                            }
                        }
                        continue;
                    };
                    let tag;
                    (tag, seq) = check_message(&m);
                    let prev = last.entry(tag).or_insert(0);
                    assert!(
                        seq > *prev,
                        "tag {tag}: seq {seq} after {prev} (duplicate or out of order)"
                    );
                    missing += seq - *prev - 1;
                    *prev = seq;
                    count += 1;
                    if last_write.elapsed() > Duration::from_millis(20) {
                        let tmp = progress.with_extension("tmp");
                        std::fs::write(&tmp, format!("{count} {seq} {missing}")).unwrap();
                        // On Windows the rename fails while the test reads
                        // the file; the next write, 20 ms on, tries again.
                        if std::fs::rename(&tmp, &progress).is_ok() {
                            last_write = Instant::now();
                            written = count;
                        }
                    }
                }
                println!("received {count} missing {missing}");
                return;
            }
            let expect: BTreeMap<u8, u64> = env("EXPECT")
                .split(',')
                .map(|p| {
                    let (t, c) = p.split_once(':').unwrap();
                    (t.parse().unwrap(), c.parse().unwrap())
                })
                .collect();
            let total: u64 = expect.values().sum();
            while count < total {
                let m = sub
                    .recv_timeout(Duration::from_secs(120))
                    .expect("a message within 120 s");
                let (tag, seq) = check_message(&m);
                let prev = last.entry(tag).or_insert(0);
                assert_eq!(seq, *prev + 1, "tag {tag}: seq {seq} after {prev}");
                assert!(
                    seq <= expect[&tag],
                    "tag {tag}: more than {} messages",
                    expect[&tag]
                );
                *prev = seq;
                count += 1;
            }
            let quiet = Duration::from_millis(
                std::env::var("QUIET_MS")
                    .map(|q| q.parse().unwrap())
                    .unwrap_or(0),
            );
            if !quiet.is_zero() {
                if let Ok(m) = sub.recv_timeout(quiet) {
                    panic!("an extra message arrived: {:?}", check_message(&m));
                }
            }
            println!("received {count}");
        }
        other => panic!("unknown role {other}"),
    }
}

/// The child's report line (its stdout also has the test harness's lines).
fn line(stdout: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with("received") || l.starts_with("sent"))
        .unwrap_or_else(|| panic!("no report in {stdout:?}"))
        .to_string()
}

fn dir_of(side: &Side) -> String {
    side.dir.path.to_str().unwrap().to_string()
}

fn subscriber(side: &Side, chan: &str, expect: &str, quiet_ms: u64) -> Proc {
    let ready = side.dir.join(&format!("ready-{chan}"));
    let p = spawn_role(
        "child_role",
        "subscribe",
        &[
            ("DIR", dir_of(side)),
            ("CHAN", chan.into()),
            ("EXPECT", expect.into()),
            ("READY", ready.to_str().unwrap().into()),
            ("QUIET_MS", quiet_ms.to_string()),
        ],
    );
    let start = Instant::now();
    while !ready.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "subscriber never ready"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    p
}

/// A subscriber on `side`'s channel `chan` in GAPS mode (sequence numbers
/// only increasing, gaps counted) until `stop` exists, once it has joined;
/// returns it and its progress file (see [`progress`]).
fn gaps_subscriber(side: &Side, chan: &str, stop: &Path, bridge: &Proc) -> (Proc, PathBuf) {
    let (prog, ready) = (side.dir.join("progress"), side.dir.join("ready"));
    let sub = spawn_role(
        "child_role",
        "subscribe",
        &[
            ("DIR", dir_of(side)),
            ("CHAN", chan.into()),
            ("GAPS", "1".into()),
            ("STOP", stop.to_str().unwrap().into()),
            ("PROGRESS", prog.to_str().unwrap().into()),
            ("READY", ready.to_str().unwrap().into()),
        ],
    );
    wait_for(Duration::from_secs(60), "subscriber ready", bridge, || {
        ready.exists()
    });
    (sub, prog)
}

fn publisher(side: &Side, chan: &str, tag: u8, count: u64) -> Proc {
    spawn_publisher(side, chan, tag, count, &[])
}

/// [`publisher`] of small messages (100 bytes each).
fn small_publisher(side: &Side, chan: &str, tag: u8, count: u64) -> Proc {
    spawn_publisher(side, chan, tag, count, &[("SMALL", "1".into())])
}

fn spawn_publisher(side: &Side, chan: &str, tag: u8, count: u64, extra: &[(&str, String)]) -> Proc {
    let mut env = vec![
        ("DIR", dir_of(side)),
        ("CHAN", chan.into()),
        ("TAG", tag.to_string()),
        ("COUNT", count.to_string()),
    ];
    env.extend_from_slice(extra);
    spawn_role("child_role", "publish", &env)
}

/// A channel `name` on `side` (4 KiB ring, messages up to 1 KiB) created by
/// the test, with a subscriber that reads nothing until the test says so:
/// the ring stays full.
fn stuck_channel(side: &Side, name: &str) -> (Channel, memlane::Subscriber) {
    let channel = Channel::builder(name)
        .capacity(4096)
        .max_message(1024)
        .dir(&side.dir.path)
        .create()
        .unwrap();
    let stuck = channel.subscriber().unwrap();
    (channel, stuck)
}

fn stop_bridge(b: Proc) {
    b.stop();
    b.wait(Duration::from_secs(60));
}

fn u(side: &Side, name: &str, field: &str) -> u64 {
    side.counter(name, field)
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("{name}.{field}"))
}

/// 100,000 messages of mixed sizes (17 B to 16 KiB) with checksums each
/// way at once, A→B on one channel and B→A on another: all arrive, in
/// order, once.
#[test]
fn hundred_thousand_each_way_at_once() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    const N: u64 = 100_000;
    let (a, b) = (Side::new("a"), Side::new("b"));
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let ba = a.bridge(&["--out", "ab", "--in", "ba", "--listen", &ep]);
    let bb = b.bridge(&["--in", "ab", "--out", "ba", "--connect", &ep]);
    a.wait_matched("ab", &ba);
    b.wait_matched("ba", &bb);
    let sub_b = subscriber(&b, "ab", &format!("1:{N}"), 0);
    let sub_a = subscriber(&a, "ba", &format!("2:{N}"), 0);
    let pub_a = publisher(&a, "ab", 1, N);
    let pub_b = publisher(&b, "ba", 2, N);
    pub_a.wait(LONG);
    pub_b.wait(LONG);
    assert_eq!(line(&sub_b.wait(LONG)), format!("received {N}"));
    assert_eq!(line(&sub_a.wait(LONG)), format!("received {N}"));
    b.wait_counter("ab", "in_forwarded", N, &bb);
    a.wait_counter("ba", "in_forwarded", N, &ba);
    for (side, name) in [(&b, "ab"), (&a, "ba")] {
        for f in [
            "in_dropped_full",
            "in_dropped_oversized",
            "in_dropped_malformed",
            "in_dropped_duplicate",
            "in_missed",
        ] {
            assert_eq!(u(side, name, f), 0, "{name}.{f}");
        }
    }
    a.wait_counter("ab", "out_forwarded", N, &ba);
    b.wait_counter("ba", "out_forwarded", N, &bb);
    assert_eq!(u(&a, "ab", "out_forwarded"), N);
    assert_eq!(u(&b, "ba", "out_forwarded"), N);
    stop_bridge(ba);
    stop_bridge(bb);
}

/// A burst waiting in the channel travels in a few batched puts: the
/// sending bridge is stopped (SIGSTOP) while 2,000 messages are published,
/// then continued; all arrive once, in order, in ≤ 20 Zenoh puts (2,000 ×
/// 140 framed bytes in batches of up to 47.5 KiB: 6), each one sample on
/// the receiving side.
#[test]
#[cfg(unix)] // SIGSTOP: Windows has no way to pause a process from outside.
fn a_burst_travels_in_few_puts() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    const N: u64 = 2_000;
    let (a, b) = (Side::new("ba"), Side::new("bb"));
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let ba = a.bridge(&["--out", "burst", "--listen", &ep]);
    let bb = b.bridge(&["--in", "burst", "--connect", &ep]);
    a.wait_matched("burst", &ba);
    let sub = subscriber(&b, "burst", &format!("3:{N}"), 300);
    assert!(ba.signal("STOP"), "kill -STOP");
    let publ = small_publisher(&a, "burst", 3, N);
    let sent = publ.wait(LONG); // the ring (1 MiB) holds all of it
    assert!(ba.signal("CONT"), "kill -CONT");
    assert_eq!(line(&sent), format!("sent {N}"));
    assert_eq!(line(&sub.wait(LONG)), format!("received {N}"));
    a.wait_counter("burst", "out_forwarded", N, &ba);
    b.wait_counter("burst", "in_forwarded", N, &bb);
    // Channels the bridge created order wake-ups with fences by default.
    let info = Channel::open_options("burst")
        .dir(&b.dir.path)
        .open()
        .unwrap()
        .info();
    assert!(!info.membarrier, "{info:?}");
    let puts = u(&a, "burst", "out_puts");
    assert!((6..=20).contains(&puts), "{N} messages in {puts} puts");
    // Bytes counted without the headers, on both sides (100-byte messages).
    assert_eq!(u(&a, "burst", "out_bytes"), 100 * N);
    b.wait_counter("burst", "in_bytes", 100 * N, &bb);
    b.wait_counter("burst", "in_samples", puts, &bb);
    assert_eq!(u(&b, "burst", "in_samples"), puts);
    assert_eq!(u(&b, "burst", "in_dropped_duplicate"), 0);
    assert_eq!(u(&b, "burst", "in_missed"), 0);
    stop_bridge(ba);
    stop_bridge(bb);
}

/// Runs a publisher of `n` messages on A and a subscriber on B that is
/// paused (SIGSTOP) for `pause` once the publisher has started, with both
/// bridges started with `extra` arguments. Returns what the subscriber
/// counted ("received R missing M"), how many messages A had forwarded when
/// the pause ended, B's counters and whether A's route ever lost its remote
/// subscriber (Zenoh closed the session).
#[cfg(unix)] // SIGSTOP
fn paused_subscriber(n: u64, pause: Duration, extra: &[&str]) -> Paused {
    let (a, b) = (Side::new("pa"), Side::new("pb"));
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let mut args_a = vec!["--out", "paused", "--listen", &ep];
    let mut args_b = vec!["--in", "paused", "--connect", &ep];
    args_a.extend_from_slice(extra);
    args_b.extend_from_slice(extra);
    let ba = a.bridge(&args_a);
    let bb = b.bridge(&args_b);
    a.wait_matched("paused", &ba);
    let stop = b.dir.join("stop-sub");
    let (sub, progress_file) = gaps_subscriber(&b, "paused", &stop, &bb);
    let publ = publisher(&a, "paused", 4, n);
    // Paused while the stream flows: the ring fills, then the link.
    wait_for(Duration::from_secs(60), "the stream flowing", &bb, || {
        progress(&progress_file).0 > 100
    });
    assert!(sub.signal("STOP"), "kill -STOP");
    std::thread::sleep(pause);
    let forwarded_while_paused = u(&a, "paused", "out_forwarded");
    assert!(sub.signal("CONT"), "kill -CONT");
    assert_eq!(line(&publ.wait(LONG)), format!("sent {n}"));
    // Everything the bridge published or dropped is accounted for.
    wait_for(
        Duration::from_secs(120),
        "B to account for every message",
        &bb,
        || {
            b.counter("paused", "in_forwarded")
                .and_then(|v| v.as_u64())
                .unwrap_or(0)
                + b.counter("paused", "in_dropped_full")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0)
                + b.counter("paused", "in_missed")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0)
                >= n
        },
    );
    let in_forwarded = u(&b, "paused", "in_forwarded");
    wait_for(
        Duration::from_secs(120),
        "the subscriber to read all",
        &bb,
        || progress(&progress_file).0 >= in_forwarded,
    );
    std::fs::write(&stop, b"").unwrap();
    let report = line(&sub.wait(LONG));
    let mut words = report.split_whitespace().skip(1);
    let received: u64 = words.next().unwrap().parse().unwrap();
    let missing: u64 = words.nth(1).unwrap().parse().unwrap();
    let log = std::fs::read_to_string(a.log_path()).unwrap_or_default();
    let session_lost = log.contains("no remote subscriber");
    stop_bridge(ba);
    stop_bridge(bb);
    Paused {
        received,
        missing,
        forwarded_while_paused,
        b,
        session_lost,
    }
}

/// What [`paused_subscriber`] saw.
#[cfg(unix)]
struct Paused {
    received: u64,
    missing: u64,
    forwarded_while_paused: u64,
    b: Side,
    session_lost: bool,
}

/// Back-pressure under `--full block` while a subscriber is paused for
/// less than the stall budget (half Zenoh's lease, raised here to 40 s):
/// the ring fills, the receiving bridge waits for room, the link and then
/// the sending bridge's puts stall, and the publisher blocks; after SIGCONT
/// every message arrives, in order, once. (Zenoh's own limit on a blocked
/// put, 5 s, would have closed the session: the bridge lifts it.)
#[test]
#[cfg(unix)] // SIGSTOP: Windows has no way to pause a process from outside.
fn a_subscriber_paused_within_the_lease_loses_nothing() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    // ~25 MB of mixed sizes: more than the rings, Zenoh's queues and the
    // sockets' buffers hold, so the publisher itself must block.
    const N: u64 = 60_000;
    let lease = ["--zenoh-set", "transport/link/tx/lease=40000"];
    let p = paused_subscriber(N, Duration::from_secs(12), &lease);
    assert!(
        p.forwarded_while_paused < N,
        "the publisher never had to wait: all {N} forwarded while the subscriber was paused"
    );
    assert_eq!((p.received, p.missing), (N, 0));
    assert!(!p.session_lost, "the session was closed");
    assert_eq!(u(&p.b, "paused", "in_dropped_full"), 0);
    assert_eq!(u(&p.b, "paused", "in_missed"), 0);
}

/// A subscriber paused for longer than the stall budget (Zenoh's default
/// lease, 10 s: 5 s): the receiving bridge stops waiting and drops what
/// arrives, counted, until the ring has room; the session stays up (a wait
/// for the whole lease would have closed it, losing what every route had
/// in flight), and the subscriber's gap is exactly the count.
#[test]
#[cfg(unix)] // SIGSTOP
fn a_subscriber_paused_past_the_budget_costs_counted_drops_not_the_session() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    const N: u64 = 60_000;
    let p = paused_subscriber(N, Duration::from_secs(12), &[]);
    assert!(!p.session_lost, "the session was closed");
    let dropped = u(&p.b, "paused", "in_dropped_full");
    assert!(dropped > 0, "nothing dropped");
    assert_eq!(u(&p.b, "paused", "in_missed"), 0);
    let received = p.received;
    assert_eq!(
        received + dropped,
        N,
        "received {received}, dropped {dropped}"
    );
    assert_eq!(p.missing, dropped);
}

/// A bridge asked to stop while its put waits for a remote that reads
/// nothing (the receiving bridge paused: a blocking put may wait a day for
/// a live remote) stops cleanly anyway, without waiting for the put: after
/// a grace period it closes the session under it.
#[test]
#[cfg(unix)] // SIGSTOP
fn a_bridge_stops_while_its_put_waits_for_a_stalled_remote() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let (a, b) = (Side::new("sa"), Side::new("sb"));
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let ba = a.bridge(&["--out", "stall", "--listen", &ep]);
    let bb = b.bridge(&["--in", "stall", "--connect", &ep]);
    a.wait_matched("stall", &ba);
    assert!(bb.signal("STOP"), "kill -STOP");
    let publ = publisher(&a, "stall", 5, 60_000);
    // The link's buffers fill and A's put waits: its count stops growing.
    let mut last = u64::MAX;
    wait_for(Duration::from_secs(60), "A's put to block", &ba, || {
        std::thread::sleep(Duration::from_millis(500));
        let now = a
            .counter("stall", "out_forwarded")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let still = now == last && now > 0;
        last = now;
        still
    });
    ba.stop();
    let log = ba.log.clone().unwrap();
    ba.wait(Duration::from_secs(60)); // exit status 0, within the watchdog
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("a put still waits"),
        "the put was not waiting:\n{log}"
    );
    assert!(bb.signal("CONT"), "kill -CONT");
    drop(publ);
    stop_bridge(bb);
}

/// A remote bridge that freezes (SIGSTOP: no reads, no keepalives, no
/// closed connection) while the sending bridge's put waits for it is given
/// up by the put's limit (8 s, before the 10 s lease), not after a day;
/// when it thaws, right after, the session comes back, forwarding resumes
/// and the gap is reported: the receiving bridge's count is what the
/// subscriber missed. (With the put's limit equal to the lease, both
/// closed the session, and in 2 of 7 CI runs the later close deleted the
/// session the thawed bridge had just reopened: matched, puts without an
/// error, nothing arriving; see `tie_waits_to_the_lease`.)
#[test]
#[cfg(unix)] // SIGSTOP
fn a_frozen_remote_bridge_is_given_up_and_forwarding_resumes() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let (a, b) = (Side::new("fa"), Side::new("fb"));
    let ba = freeze_and_thaw(&a, &b, &[]);
    assert!(
        !a.log_text_has(RESTARTED),
        "the bridge's defaults keep the session from being split"
    );
    stop_bridge(ba);
}

/// The same freeze with the put's limit at the lease and 5 keep-alives per
/// lease (close to the bridge's former defaults, set explicitly), which in
/// some runs (2 of 22 here) leaves the sending side's session split from
/// the thawed bridge: Zenoh routes to it, puts succeed, nothing arrives,
/// for good (see `Bridge::split`). The sending bridge notices within a
/// lease (the thawed bridge's liveliness token visible, no connection to
/// it), restarts itself (exec: same pid, sockets closed), and forwarding
/// resumes. Passes whether or not the split happens in a run; a split run
/// without the restart never recovers (the former defaults failed this way
/// in 2 of 7 CI runs).
#[test]
#[cfg(unix)] // SIGSTOP
fn a_split_session_restarts_the_bridge_and_forwarding_resumes() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let (a, b) = (Side::new("sa"), Side::new("sb"));
    let former = [
        "--zenoh-set",
        "transport/link/tx/queue/congestion_control/block/wait_before_close=10000000",
        "--zenoh-set",
        "transport/link/tx/keep_alive=5",
    ];
    let ba = freeze_and_thaw(&a, &b, &former);
    eprintln!(
        "the session was {}split",
        if a.log_text_has(RESTARTED) {
            ""
        } else {
            "not "
        }
    );
    stop_bridge(ba);
}

/// What bridge A logs when it restarted itself after a split session.
#[cfg(unix)]
const RESTARTED: &str = "restarted after its Zenoh session lost a remote bridge";

/// A stream A→B; B frozen (SIGSTOP) while A's put waits for it, until A
/// gives the session up, then thawed: forwarding resumes (1,000 more
/// messages arrive, in order). Unless A restarted itself meanwhile (a
/// split session), B's count of missed messages is exactly what the
/// subscriber missed (after a restart A is a new origin, whose messages
/// lost before B matched it are counted on A, in `out_unmatched`, not on
/// B). Both bridges get `extra`; returns A's, B's is stopped.
#[cfg(unix)] // SIGSTOP
fn freeze_and_thaw(a: &Side, b: &Side, extra: &[&str]) -> Proc {
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let ba = a.bridge(&[&["--out", "frozen", "--listen", &ep][..], extra].concat());
    let bb = b.bridge(&[&["--in", "frozen", "--connect", &ep][..], extra].concat());
    a.wait_matched("frozen", &ba);
    let stop = b.dir.join("stop");
    let (sub, prog) = gaps_subscriber(b, "frozen", &stop, &bb);
    let publ = spawn_role(
        "child_role",
        "publish",
        &[
            ("DIR", dir_of(a)),
            ("CHAN", "frozen".into()),
            ("TAG", "6".into()),
            ("STOP", stop.to_str().unwrap().into()),
        ],
    );
    wait_for(Duration::from_secs(60), "messages flowing", &bb, || {
        progress(&prog).0 > 1000
    });
    assert!(bb.signal("STOP"), "kill -STOP");
    // Given up while B is still frozen: at the put's limit.
    a.wait_for_field("frozen", "out_matched", serde_json::json!(false), &ba);
    assert!(bb.signal("CONT"), "kill -CONT");
    a.wait_matched("frozen", &ba);
    let (c0, _, _) = progress(&prog);
    wait_for(
        Duration::from_secs(120),
        "messages after the thaw",
        &bb,
        || progress(&prog).0 >= c0 + 1000,
    );
    std::fs::write(&stop, b"").unwrap();
    let sent = line(&publ.wait(LONG));
    let report = line(&sub.wait(LONG));
    if !a.log_text_has(RESTARTED) {
        b.wait_counter("frozen", "in_missed", 1, &bb); // the gap is reported
        let missing: u64 = report.split_whitespace().nth(3).unwrap().parse().unwrap();
        let lost = u(b, "frozen", "in_missed") + u(b, "frozen", "in_dropped_full");
        assert_eq!(missing, lost, "{report}; {sent}");
    }
    stop_bridge(bb);
    ba
}

/// Both bridges forward one channel both ways, publishers on both sides:
/// every message is seen exactly once on each side (none echoed back).
#[test]
fn no_echo_when_both_forward_both_ways() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    const N: u64 = 5_000;
    let (a, b) = (Side::new("ea"), Side::new("eb"));
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let ba = a.bridge(&["--both", "chat", "--listen", &ep]);
    let bb = b.bridge(&["--both", "chat", "--connect", &ep]);
    a.wait_matched("chat", &ba);
    b.wait_matched("chat", &bb);
    let expect = format!("1:{N},2:{N}");
    let sub_a = subscriber(&a, "chat", &expect, 1500);
    let sub_b = subscriber(&b, "chat", &expect, 1500);
    let pub_a = publisher(&a, "chat", 1, N);
    let pub_b = publisher(&b, "chat", 2, N);
    pub_a.wait(LONG);
    pub_b.wait(LONG);
    assert_eq!(line(&sub_a.wait(LONG)), format!("received {}", 2 * N));
    assert_eq!(line(&sub_b.wait(LONG)), format!("received {}", 2 * N));
    for (side, bridge) in [(&a, &ba), (&b, &bb)] {
        for f in ["out_echo_skipped", "out_forwarded", "in_forwarded"] {
            side.wait_counter("chat", f, N, bridge);
        }
        assert_eq!(u(side, "chat", "out_forwarded"), N);
        assert_eq!(u(side, "chat", "in_forwarded"), N);
        assert_eq!(u(side, "chat", "out_echo_skipped"), N);
        assert_eq!(u(side, "chat", "in_dropped_duplicate"), 0);
    }
    stop_bridge(ba);
    stop_bridge(bb);
}

/// Garbage, truncated, wrong-version, mislabelled and oversized payloads
/// on the key are counted and dropped; the bridge lives on and delivers
/// the valid message after them.
#[test]
fn bad_inbound_data_is_counted_and_dropped() {
    use memlane_zenoh::wire::{encode_header, Batch, Header, Kind, HEADER_LEN};
    use memlane_zenoh::zenoh::Wait;
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let b = Side::new("bad");
    let port = free_port();
    let bb = b.bridge(&["--in", "data", "--listen", &format!("tcp/127.0.0.1:{port}")]);
    wait_for(Duration::from_secs(60), "bridge started", &bb, || {
        b.stats().is_some()
    });
    let channel = Channel::open_options("data")
        .dir(&b.dir.path)
        .open()
        .unwrap();
    let max = channel.max_message();
    let mut sub = channel.subscriber().unwrap();

    let session = plain_session("connect", port);
    // Block, as the bridge puts: with Zenoh's default (drop when its queue
    // is full) a busy machine could lose a put and the test with it.
    let publ = session
        .declare_publisher("memlane/data")
        .congestion_control(memlane_zenoh::zenoh::qos::CongestionControl::Block)
        .wait()
        .unwrap();
    wait_for(
        Duration::from_secs(60),
        "the bridge's subscriber",
        &bb,
        || publ.matching_status().wait().unwrap().matching(),
    );
    let framed = |kind, seq, payload: &[u8]| {
        let mut v = Vec::new();
        encode_header(
            &mut v,
            Header {
                kind,
                origin: 42,
                seq,
            },
            payload.len(),
        );
        v.extend_from_slice(payload);
        v
    };
    let mut bad_version = framed(Kind::Channel, 1, b"x");
    bad_version[4] = 9;
    let mut bad_len = framed(Kind::Channel, 1, b"xyz");
    bad_len.pop();
    let malformed = [
        b"garbage".to_vec(),
        vec![0u8; 4096],
        bad_version,
        bad_len,
        framed(Kind::Latest, 1, b"a slot's value on a channel's key"),
    ];
    for m in &malformed {
        publ.put(m.clone()).wait().unwrap();
    }
    publ.put(framed(Kind::Channel, 1, &vec![7u8; max + 1]))
        .wait()
        .unwrap();
    publ.put(framed(Kind::Channel, 2, b"valid")).wait().unwrap();
    publ.put(framed(Kind::Channel, 2, b"a duplicate"))
        .wait()
        .unwrap();
    publ.put(framed(Kind::Channel, 3, b"also valid"))
        .wait()
        .unwrap();
    // Batches: a duplicate inside one is skipped, the frames after it are
    // delivered; a broken frame drops itself and what follows it.
    let batch = |frames: &[(u64, &[u8])]| {
        let mut b = Batch::default();
        for &(seq, payload) in frames {
            let h = Header {
                kind: Kind::Channel,
                origin: 42,
                seq,
            };
            b.push(h, payload);
        }
        b.take()
    };
    publ.put(batch(&[(4, b"batched 4"), (4, b"dup"), (5, b"batched 5")]))
        .wait()
        .unwrap();
    let mut broken = batch(&[(6, b"batched 6"), (7, b"never"), (8, b"never")]);
    broken[HEADER_LEN + 9] = b'X'; // the second frame's magic
    publ.put(broken).wait().unwrap();
    // The same in batches larger than a Zenoh transport batch (64 KiB):
    // they arrive reassembled in pieces, and are read frame by frame.
    let big = |c: u8| vec![c; 40_000];
    let (a, bb_, c, d) = (big(b'a'), big(b'b'), big(b'c'), big(b'd'));
    publ.put(batch(&[(11, &a), (11, b"dup"), (12, &bb_)]))
        .wait()
        .unwrap();
    let mut broken = batch(&[(13, &c), (14, &d), (15, b"never")]);
    broken[HEADER_LEN + c.len() + 4] = 9; // the second frame's version
    publ.put(broken).wait().unwrap();
    for (i, want) in [
        &b"valid"[..],
        b"also valid",
        b"batched 4",
        b"batched 5",
        b"batched 6",
        &a,
        &bb_,
        &c,
    ]
    .into_iter()
    .enumerate()
    {
        let got = sub
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| {
                panic!(
                    "valid message {i} ({} bytes): {e:?}; counters {:?}{}",
                    want.len(),
                    b.stats(),
                    bb.log_text()
                )
            });
        assert_eq!(&*got, want, "valid message {i}");
    }
    b.wait_counter("data", "in_forwarded", 8, &bb);
    b.wait_counter("data", "in_samples", malformed.len() as u64 + 8, &bb);
    assert_eq!(
        u(&b, "data", "in_dropped_malformed"),
        malformed.len() as u64 + 2
    );
    assert_eq!(u(&b, "data", "in_dropped_oversized"), 1);
    assert_eq!(u(&b, "data", "in_dropped_duplicate"), 3);
    assert!(
        sub.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing else delivered"
    );
    session.close().wait().unwrap();
    let log = bb.log_text();
    stop_bridge(bb);
    assert!(log.contains("malformed"), "the drops are logged:{log}");
}

/// A TCP relay standing for the network between the two machines: `cut`
/// closes every connection and stops listening, as a failed link would.
struct Link {
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Link {
    fn up(listen: u16, target: u16) -> Link {
        let listener = TcpListener::bind(("127.0.0.1", listen)).expect("bind the link's port");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, c) = (stop.clone(), conns.clone());
        let accept = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((inbound, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                inbound.set_nonblocking(false).unwrap();
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                for (mut from, mut to) in [
                    (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                    (outbound.try_clone().unwrap(), inbound.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 << 10];
                        while let Ok(n @ 1..) = from.read(&mut buf) {
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                c.lock().unwrap().extend([inbound, outbound]);
            }
        });
        Link {
            stop,
            conns,
            accept: Some(accept),
        }
    }

    fn cut(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.accept.take().unwrap().join();
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// (count, last seq, missing) from the subscriber's progress file.
fn progress(path: &std::path::Path) -> (u64, u64, u64) {
    let t = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<u64> = t
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    match v[..] {
        [c, l, m] => (c, l, m),
        _ => (0, 0, 0),
    }
}

/// A publisher of `side`'s channel `chan` sending a message every 500 µs
/// until `stop` exists.
fn paced_publisher(side: &Side, chan: &str, stop: &Path) -> Proc {
    spawn_role(
        "child_role",
        "publish",
        &[
            ("DIR", dir_of(side)),
            ("CHAN", chan.into()),
            ("TAG", "1".into()),
            ("PACE_US", "500".into()),
            ("STOP", stop.to_str().unwrap().into()),
        ],
    )
}

/// Waits until the subscriber whose progress file is `prog` received 300
/// more messages.
fn wait_for_300_more(prog: &Path, what: &str, bridge: &Proc) {
    let (c0, _, _) = progress(prog);
    wait_for(Duration::from_secs(120), what, bridge, || {
        progress(prog).0 >= c0 + 300
    });
}

/// After an outage and traffic resumed: `side`'s bridge reports a gap on
/// `chan`, exactly what the subscriber whose progress file is `prog`
/// missed, and no duplicate; returns the gap.
fn gap_is_what_the_subscriber_missed(side: &Side, chan: &str, prog: &Path, bridge: &Proc) -> u64 {
    side.wait_counter(chan, "in_missed", 1, bridge); // the gap is reported
    let missed = u(side, chan, "in_missed");
    // Both figures are final once traffic resumed; the subscriber's file
    // may lag a little.
    wait_for(
        Duration::from_secs(60),
        "the subscriber's count of missing messages",
        bridge,
        || progress(prog).2 >= missed,
    );
    assert_eq!(
        progress(prog).2,
        missed,
        "the bridge's gap is what the subscriber missed"
    );
    assert_eq!(u(side, chan, "in_dropped_duplicate"), 0);
    missed
}

/// A steady stream A→B survives: the link cut and restored (the gap is
/// counted by the receiving bridge, exactly the messages the subscriber
/// missed), the receiving bridge killed with SIGKILL and restarted, and the
/// sending bridge killed and restarted. Forwarding resumes each time, in
/// order, never a message twice.
#[test]
fn forwarding_resumes_after_link_loss_and_kill_9() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let (a, b) = (Side::new("ka"), Side::new("kb"));
    let (pb, pl) = (free_port(), free_port());
    let b_args = ["--in", "data", "--listen", &format!("tcp/127.0.0.1:{pb}")].map(String::from);
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let a_args = ["--out", "data", "--connect", &format!("tcp/127.0.0.1:{pl}")].map(String::from);
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let mut bb = b.bridge(&b_args);
    wait_for(Duration::from_secs(60), "bridge B started", &bb, || {
        b.stats().is_some()
    });
    let link = Link::up(pl, pb);
    let mut ba = a.bridge(&a_args);
    a.wait_matched("data", &ba);

    let stop = b.dir.join("stop");
    let (sub, prog) = gaps_subscriber(&b, "data", &stop, &bb);
    let publ = paced_publisher(&a, "data", &stop);
    let advance = |what: &str, bridge: &Proc| wait_for_300_more(&prog, what, bridge);
    advance("messages flowing", &bb);

    // The link fails and comes back: the bridges live on.
    link.cut();
    a.wait_for_field("data", "out_matched", serde_json::json!(false), &ba);
    std::thread::sleep(Duration::from_millis(500)); // puts while the link is down
    let link = Link::up(pl, pb);
    a.wait_matched("data", &ba);
    advance("messages after the link came back", &bb);
    let missed = gap_is_what_the_subscriber_missed(&b, "data", &prog, &bb);
    eprintln!("link cut: {missed} messages missed, reported by the receiving bridge");

    // The receiving bridge is killed and restarted.
    bb.kill9();
    bb = b.bridge(&b_args);
    a.wait_matched("data", &ba);
    advance("messages after bridge B restarted", &bb);

    // The sending bridge is killed and restarted.
    ba.kill9();
    ba = a.bridge(&a_args);
    a.wait_matched("data", &ba);
    advance("messages after bridge A restarted", &bb);

    std::fs::write(&stop, b"").unwrap();
    let sent = line(&publ.wait(LONG));
    let got = line(&sub.wait(LONG));
    eprintln!("publisher: {sent}; subscriber: {got}");
    drop(link);
    stop_bridge(ba);
    stop_bridge(bb);
}

/// Deployment through a router (docs/BRIDGE.md, "Deployment across
/// machines"): one bridge in router mode listens, two bridges in client
/// mode connect only to it. A stream from one client reaches the other
/// through the router, in order; the router killed with SIGKILL and
/// restarted, the clients reconnect and forwarding resumes, the gap
/// reported by the receiving client as exactly what its subscriber missed,
/// never a message twice.
#[test]
fn clients_forward_through_a_router_bridge_and_survive_its_restart() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let (r, a, b) = (Side::new("rr"), Side::new("ra"), Side::new("rb"));
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    // The router's machine has a route of its own (a channel nobody
    // publishes here), so the sending client's match can only be the other
    // client's subscriber, learnt through the router.
    let r_args = ["--mode", "router", "--listen", &ep, "--out", "local"];
    let mut br = r.bridge(&r_args);
    wait_for(Duration::from_secs(60), "the router started", &br, || {
        r.stats().is_some()
    });
    let bb = b.bridge(&["--mode", "client", "--connect", &ep, "--in", "data"]);
    let ba = a.bridge(&["--mode", "client", "--connect", &ep, "--out", "data"]);
    a.wait_matched("data", &ba);

    let stop = b.dir.join("stop");
    let (sub, prog) = gaps_subscriber(&b, "data", &stop, &bb);
    let publ = paced_publisher(&a, "data", &stop);
    let advance = |what: &str| wait_for_300_more(&prog, what, &bb);
    advance("messages flowing through the router");
    assert_eq!(u(&b, "data", "in_missed"), 0);

    br.kill9();
    a.wait_for_field("data", "out_matched", serde_json::json!(false), &ba);
    std::thread::sleep(Duration::from_millis(500)); // puts with no router
    br = r.bridge(&r_args);
    a.wait_matched("data", &ba);
    advance("messages after the router restarted");
    let missed = gap_is_what_the_subscriber_missed(&b, "data", &prog, &bb);
    eprintln!("router restarted: {missed} messages missed, reported by the receiving client");

    std::fs::write(&stop, b"").unwrap();
    let sent = line(&publ.wait(LONG));
    let got = line(&sub.wait(LONG));
    eprintln!("publisher: {sent}; subscriber: {got}");
    stop_bridge(ba);
    stop_bridge(bb);
    stop_bridge(br);
}

/// A latest-value slot travels as a Zenoh put; a bridge started later gets
/// the newest value from the sending bridge's queryable.
#[test]
fn latest_value_slot_travels_and_late_joiners_get_the_newest() {
    use memlane::Latest;
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let (a, b) = (Side::new("la"), Side::new("lb"));
    let mut pose = Latest::builder("pose")
        .dir(&a.dir.path)
        .max_value(256)
        .create()
        .unwrap();
    pose.set(b"x=1 y=2").unwrap();
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let ba = a.bridge(&["--latest-out", "pose", "--listen", &ep]);
    wait_for(Duration::from_secs(60), "bridge A started", &ba, || {
        a.stats().is_some()
    });
    a.wait_counter("pose", "out_forwarded", 1, &ba); // the value now, put with nobody listening
    let bb = b.bridge(&["--latest-in", "pose", "--connect", &ep]);
    wait_for(Duration::from_secs(60), "bridge B started", &bb, || {
        b.stats().is_some()
    });
    let mut view = Latest::open_options("pose")
        .dir(&b.dir.path)
        .open()
        .unwrap();
    let value = |view: &mut Latest| view.get().unwrap().map(|v| v.bytes().to_vec());
    wait_for(
        Duration::from_secs(60),
        "the newest value, by query",
        &bb,
        || value(&mut view).as_deref() == Some(&b"x=1 y=2"[..]),
    );
    a.wait_matched("pose", &ba);
    pose.set(b"x=3 y=4").unwrap();
    wait_for(Duration::from_secs(60), "the next value", &bb, || {
        value(&mut view).as_deref() == Some(&b"x=3 y=4"[..])
    });
    stop_bridge(ba);
    stop_bridge(bb);
}

/// A typed channel's message type travels: the receiving bridge creates
/// its channel with the sender's type record, so typed endpoints open it
/// on both machines; a record that fails its checks is ignored (the
/// channel is created untyped, and the bridge says why).
#[test]
fn typed_channels_carry_their_type() {
    use memlane_zenoh::zenoh::Wait;
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let (a, b) = (Side::new("ta"), Side::new("tb"));
    let source = Channel::builder("pose")
        .dir(&a.dir.path)
        .message_type::<[f64; 3]>()
        .create()
        .unwrap()
        .typed::<[f64; 3]>()
        .unwrap();
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let ba = a.bridge(&["--out", "pose", "--listen", &ep]);
    wait_for(Duration::from_secs(60), "bridge A started", &ba, || {
        a.stats().is_some()
    });
    let bb = b.bridge(&["--in", "pose", "--connect", &ep]);
    a.wait_matched("pose", &ba);
    let copy = open_channel(b.dir.path.to_str().unwrap(), "pose");
    assert_eq!(
        copy.message_type().unwrap(),
        source.channel().message_type().unwrap()
    );
    let copy = copy.typed::<[f64; 3]>().expect("the same type on B");
    let mut sub = copy.subscriber().unwrap();
    let mut publ = source.publisher().unwrap();
    for i in 0..100 {
        publ.send(&[f64::from(i), 1.5, -2.0]).unwrap();
    }
    for i in 0..100 {
        let v = *sub.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(v, [f64::from(i), 1.5, -2.0]);
    }
    drop((sub, publ));
    stop_bridge(ba);
    stop_bridge(bb);

    // A peer offering garbage as the type: ignored, logged.
    let c = Side::new("tc");
    let port = free_port();
    let session = plain_session("listen", port);
    let _q = session
        .declare_queryable("memlane/odd/@memlane-type")
        .callback(|q| {
            let _ = q
                .reply("memlane/odd/@memlane-type", b"TYPE but not one".to_vec())
                .wait();
        })
        .wait()
        .unwrap();
    let bc = c.bridge(&["--in", "odd", "--connect", &format!("tcp/127.0.0.1:{port}")]);
    wait_for(Duration::from_secs(60), "bridge C started", &bc, || {
        c.stats().is_some()
    });
    let odd = open_channel(c.dir.path.to_str().unwrap(), "odd");
    assert_eq!(odd.message_type().unwrap(), None, "created untyped");
    let log = bc.log_text();
    stop_bridge(bc);
    session.close().wait().unwrap();
    assert!(log.contains("ignored a remote message type"), "{log}");
}

/// The echo check rests on this: a loan's position is the position its
/// subscribers see, also across the ring's end (pad records) and with
/// another publisher's messages in between.
#[test]
fn loan_positions_match_message_positions_across_wraps() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("pos");
    let channel = Channel::builder("pos")
        .capacity(4096)
        .max_message(1000)
        .dir(&dir.path)
        .create()
        .unwrap();
    let mut sub = channel.subscriber().unwrap();
    let (mut mine, mut other) = (channel.publisher().unwrap(), channel.publisher().unwrap());
    let mut rng = Rng::new(9);
    for i in 0..5000u64 {
        let len = rng.below(1000) as usize;
        other.send(&vec![1u8; rng.below(300) as usize]).unwrap();
        let mut loan = mine.loan(len).unwrap();
        loan.fill(2);
        let pos = loan.position();
        loan.commit().unwrap();
        let m = sub.recv().unwrap();
        assert_eq!(m.first().copied().unwrap_or(1), 1);
        let first = m.position();
        drop(m);
        let m = sub.recv().unwrap();
        assert_eq!((m.position(), m.len()), (pos, len), "message {i}");
        assert!(m.position() > first);
    }
}

/// A slot forwarded both ways by both bridges: a value set on either side
/// reaches the other, and neither bridge sends back the value it received.
#[test]
fn latest_value_slot_both_ways_without_echo() {
    use memlane::Latest;
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let (a, b) = (Side::new("lba"), Side::new("lbb"));
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let ba = a.bridge(&["--latest-both", "mode", "--listen", &ep]);
    let bb = b.bridge(&["--latest-both", "mode", "--connect", &ep]);
    a.wait_matched("mode", &ba);
    b.wait_matched("mode", &bb);
    let open = |side: &Side| {
        Latest::open_options("mode")
            .dir(&side.dir.path)
            .open()
            .unwrap()
    };
    let (mut on_a, mut on_b) = (open(&a), open(&b));
    let value = |l: &mut Latest| l.get().unwrap().map(|v| v.bytes().to_vec());
    on_a.set(b"auto").unwrap();
    wait_for(Duration::from_secs(60), "A's value on B", &bb, || {
        value(&mut on_b).as_deref() == Some(&b"auto"[..])
    });
    b.wait_counter("mode", "out_echo_skipped", 1, &bb);
    on_b.set(b"manual").unwrap();
    wait_for(Duration::from_secs(60), "B's value on A", &ba, || {
        value(&mut on_a).as_deref() == Some(&b"manual"[..])
    });
    a.wait_counter("mode", "out_echo_skipped", 1, &ba);
    a.wait_counter("mode", "in_forwarded", 1, &ba);
    b.wait_counter("mode", "out_forwarded", 1, &bb);
    // Each value crossed once: nothing came back to where it was set.
    for side in [&a, &b] {
        assert_eq!(u(side, "mode", "out_forwarded"), 1);
        assert_eq!(u(side, "mode", "in_forwarded"), 1);
        assert_eq!(u(side, "mode", "out_echo_skipped"), 1);
    }
    assert_eq!(value(&mut on_a).as_deref(), Some(&b"manual"[..]));
    assert_eq!(value(&mut on_b).as_deref(), Some(&b"manual"[..]));
    stop_bridge(ba);
    stop_bridge(bb);
}

/// Waits until `side`'s inbound route `chan` has delivered or dropped (full
/// ring) all `n` messages of tag 3; checks that some of each happened and
/// that `stuck`, which read nothing so far, now reads exactly the delivered
/// ones, in order.
fn dropped_and_delivered_in_order(
    side: &Side,
    bridge: &Proc,
    chan: &str,
    n: u64,
    stuck: &mut memlane::Subscriber,
) {
    let count = |field| {
        side.counter(chan, field)
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    };
    wait_for(
        Duration::from_secs(120),
        &format!("every {chan} message accounted for"),
        bridge,
        || count("in_forwarded") + count("in_dropped_full") == n,
    );
    let (delivered, dropped) = (
        u(side, chan, "in_forwarded"),
        u(side, chan, "in_dropped_full"),
    );
    assert!(
        dropped > 0 && delivered > 0,
        "{chan}: delivered {delivered}, dropped {dropped}"
    );
    let mut last = 0;
    for _ in 0..delivered {
        let (tag, seq) = check_message(&stuck.recv_timeout(Duration::from_secs(10)).unwrap());
        assert!(tag == 3 && seq > last, "in order");
        last = seq;
    }
    assert!(stuck.try_recv().is_err(), "no more than counted");
}

/// With `--full drop`, inbound messages that find the local ring full
/// (a subscriber there reads nothing) are dropped and counted; every
/// message is accounted for, and what was delivered is in order.
#[test]
fn full_ring_drops_with_a_count_when_configured() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    const N: u64 = 2_000;
    let (a, b) = (Side::new("fa"), Side::new("fb"));
    let (_channel, mut stuck) = stuck_channel(&b, "data"); // read only at the end
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let bb = b.bridge(&["--in", "data", "--full", "drop", "--listen", &ep]);
    let ba = a.bridge(&["--out", "data", "--connect", &ep]);
    a.wait_matched("data", &ba);
    small_publisher(&a, "data", 3, N).wait(LONG);
    dropped_and_delivered_in_order(&b, &bb, "data", N, &mut stuck);
    stop_bridge(ba);
    stop_bridge(bb);
}

/// A route of a configuration file may set its own `full` policy: on a
/// bridge that blocks by default, a route whose ring is stuck full (its
/// subscriber reads only at the end) drops with a count at once, and the
/// route beside it on the same Zenoh link delivers every message. Under
/// the bridge's `block` the stuck route would first wait half the lease
/// and then log that its ring "stayed full": that line must not appear.
#[test]
fn a_route_may_drop_while_the_bridge_blocks() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    const N: u64 = 2_000;
    let (a, b) = (Side::new("ra"), Side::new("rb"));
    let (_channel, mut stuck) = stuck_channel(&b, "video"); // read only at the end
    let config = b.dir.join("bridge.toml");
    std::fs::write(
        &config,
        "full = \"block\"\n\n[[route]]\nname = \"video\"\ndirection = \"in\"\nfull = \"drop\"\n\n\
         [[route]]\nname = \"cmd\"\ndirection = \"in\"\n",
    )
    .unwrap();
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let bb = b.bridge(&["--config", config.to_str().unwrap(), "--listen", &ep]);
    let ba = a.bridge(&["--out", "video", "--out", "cmd", "--connect", &ep]);
    a.wait_matched("video", &ba);
    a.wait_matched("cmd", &ba);
    let cmd = subscriber(&b, "cmd", &format!("4:{N}"), 300);
    let (pv, pc) = (
        small_publisher(&a, "video", 3, N),
        small_publisher(&a, "cmd", 4, N),
    );
    assert_eq!(line(&pv.wait(LONG)), format!("sent {N}"));
    assert_eq!(line(&pc.wait(LONG)), format!("sent {N}"));
    assert_eq!(line(&cmd.wait(LONG)), format!("received {N}"));
    dropped_and_delivered_in_order(&b, &bb, "video", N, &mut stuck);
    b.wait_counter("cmd", "in_forwarded", N, &bb);
    // The counters say which policy each route follows.
    assert_eq!(b.counter("video", "full"), Some("drop".into()));
    assert_eq!(b.counter("cmd", "full"), Some("block".into()));
    assert_eq!(u(&b, "cmd", "in_dropped_full"), 0);
    assert_eq!(u(&b, "cmd", "in_missed"), 0);
    stop_bridge(ba);
    stop_bridge(bb);
    let log = std::fs::read_to_string(b.log_path()).unwrap();
    let video_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("channel=video"))
        .collect();
    assert!(
        video_lines
            .iter()
            .any(|l| l.contains("its full policy: drop")),
        "the video route dropped by its own policy:\n{log}"
    );
    assert!(
        !log.contains("stayed full"),
        "no route waited for room:\n{log}"
    );
}

/// `memlane bridge` (the `memlane` command running `memlane-bridge` found
/// beside it) configured by files: routes in a TOML file, Zenoh's own
/// configuration in a JSON5 file (mode, listen endpoint, scouting off).
/// Messages published on side A arrive on side B; SIGUSR1 (Windows: a line
/// on standard input) prints the counters; SIGTERM (Windows: a `quit` line)
/// stops bridge B cleanly, printing them again, and a `quit` line on its
/// standard input stops bridge A cleanly.
#[test]
fn the_memlane_command_runs_the_bridge_from_config_files() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    let bridge_bin = PathBuf::from(env!("CARGO_BIN_EXE_memlane-bridge"));
    let memlane_bin = bridge_bin.with_file_name(format!("memlane{}", std::env::consts::EXE_SUFFIX));
    if !memlane_bin.is_file() {
        // `cargo test --workspace` (CI) builds the memlane command beside
        // the bridge; `cargo test -p memlane-zenoh` alone may not.
        eprintln!(
            "skipped: no {} (build it with `cargo build -p memlane-cli`)",
            memlane_bin.display()
        );
        return;
    }
    let (a, b) = (Side::new("cfg-a"), Side::new("cfg-b"));
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    std::fs::write(
        a.dir.join("bridge.toml"),
        "prefix = \"cfgtest\"\ncapacity = 1048576\n\n[[route]]\nname = \"cfg\"\ndirection = \"out\"\n",
    )
    .unwrap();
    std::fs::write(
        b.dir.join("bridge.toml"),
        "prefix = \"cfgtest\"\ncapacity = 1048576\n\n[[route]]\nname = \"cfg\"\ndirection = \"in\"\n",
    )
    .unwrap();
    std::fs::write(
        b.dir.join("zenoh.json5"),
        format!(
            "{{ mode: \"peer\", listen: {{ endpoints: [\"{ep}\"] }}, scouting: {{ multicast: {{ enabled: false }} }} }}\n"
        ),
    )
    .unwrap();
    let start = |side: &Side, extra: &[&str]| {
        let mut cmd = std::process::Command::new(&memlane_bin);
        cmd.arg("--dir")
            .arg(&side.dir.path)
            .arg("bridge")
            .arg("--config")
            .arg(side.dir.join("bridge.toml"))
            .arg("--stats-json")
            .arg(side.stats_path())
            .args(extra)
            .env("RUST_LOG", "info,zenoh=warn")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        Proc {
            child: Some(spawn(&mut cmd).expect("run memlane bridge")),
            what: format!("memlane bridge {}", side.name),
            log: None,
        }
    };
    let zb = b.dir.join("zenoh.json5");
    let bb = start(&b, &["--zenoh-config", zb.to_str().unwrap()]);
    let ba = start(&a, &["--connect", &ep, "--no-multicast-scouting"]);
    a.wait_matched("cfg", &ba);
    let sub = subscriber(&b, "cfg", "7:500", 300);
    let publ = publisher(&a, "cfg", 7, 500);
    assert_eq!(line(&publ.wait(LONG)), "sent 500");
    assert_eq!(line(&sub.wait(LONG)), "received 500");
    b.wait_counter("cfg", "in_forwarded", 500, &bb);
    // SIGUSR1 (Windows: a line on standard input): the counters, on
    // standard error; then SIGTERM (Windows: `quit`) stops B, and a `quit`
    // line A.
    #[cfg(unix)]
    assert!(bb.signal("USR1"), "kill -USR1");
    #[cfg(not(unix))]
    bb.line("");
    std::thread::sleep(Duration::from_millis(500));
    bb.stop();
    ba.line("quit");
    let mut bb = bb;
    let out = bb.child.take().unwrap().wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "memlane bridge b: {stderr}");
    let printed = stderr
        .matches("in  cfg <- cfgtest/cfg: forwarded 500 ")
        .count();
    assert!(
        printed >= 2,
        "the counters on SIGUSR1 and at exit, each with 500 forwarded: {stderr}"
    );
    ba.wait(Duration::from_secs(60));
    assert_eq!(u(&a, "cfg", "out_forwarded"), 500);
}

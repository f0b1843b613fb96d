//! Multi-process behaviour with real processes: this test binary is run
//! again in a child role (publisher, subscriber) selected through
//! `MEMLANE_TEST_ROLE`; every wait has a watchdog.

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{expect_success, fnv1a, spawn_role, wait_for, Rng, TestDir, ROLE_ENV};
use memlane::Channel;

const ENTRY: &str = "child_entry";
const WATCHDOG: Duration = Duration::from_secs(240);

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

/// Message `seq` of publisher `publisher`: 16-byte header (publisher id,
/// sequence number, checksum of the payload) and 0 to 4080 payload bytes,
/// so whole messages are 16 B to 4 KiB.
fn make_message(publisher: u32, seq: u32, buf: &mut Vec<u8>) {
    let mut rng = Rng::new((u64::from(publisher) << 32) | u64::from(seq));
    let len = rng.below(4081) as usize;
    buf.clear();
    buf.extend_from_slice(&publisher.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&[0; 8]);
    for _ in 0..len {
        buf.push(rng.next() as u8);
    }
    let sum = fnv1a(&buf[16..]);
    buf[8..16].copy_from_slice(&sum.to_le_bytes());
}

/// The child side: does nothing unless run in a role.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let dir = PathBuf::from(var("MEMLANE_TEST_DIR"));
    let name = var("MEMLANE_TEST_CHANNEL");
    #[cfg(target_os = "linux")]
    if let Ok(cpu) = std::env::var("MEMLANE_TEST_PIN_CPU") {
        // Before any endpoint joins: each reads its thread's affinity then.
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu.parse().unwrap());
        rustix::thread::sched_setaffinity(None, &set).expect("pin to one CPU");
    }
    if role == "without_membarrier" {
        return without_membarrier(&dir, &name);
    }
    let channel = Channel::open_options(&name)
        .dir(&dir)
        .open()
        .expect("open channel");
    match role.as_str() {
        "publisher" => {
            let id: u32 = var("MEMLANE_TEST_ID").parse().unwrap();
            let count: u32 = var("MEMLANE_TEST_COUNT").parse().unwrap();
            let mut p = channel.publisher().unwrap();
            let mut buf = Vec::with_capacity(4096);
            // MEMLANE_TEST_BURST=N: N messages at a time with one wake-up.
            let burst: u32 = std::env::var("MEMLANE_TEST_BURST")
                .map(|b| b.parse().unwrap())
                .unwrap_or(0);
            if burst > 0 {
                let mut seq = 0;
                while seq < count {
                    p.with_one_wakeup(|p| {
                        for _ in 0..burst.min(count - seq) {
                            make_message(id, seq, &mut buf);
                            p.send(&buf).unwrap();
                            seq += 1;
                        }
                    });
                }
            } else {
                for seq in 0..count {
                    make_message(id, seq, &mut buf);
                    p.send(&buf).unwrap();
                }
            }
            println!("RESULT sent={count}");
        }
        "subscriber" => {
            let publishers: usize = var("MEMLANE_TEST_PUBLISHERS").parse().unwrap();
            let count: u32 = var("MEMLANE_TEST_COUNT").parse().unwrap();
            let spin: u32 = var("MEMLANE_TEST_SPIN").parse().unwrap();
            let mut s = channel.subscriber().unwrap();
            s.set_spin(spin);
            // Publisher processes come and go; this test counts messages.
            s.set_disconnect_grace(None);
            let mut next = vec![0u32; publishers];
            let total = count as usize * publishers;
            for _ in 0..total {
                let m = s
                    .recv_timeout(Duration::from_secs(60))
                    .expect("a message within 60 s");
                assert!(m.len() >= 16 && m.len() <= 4096, "length {}", m.len());
                let id = u32::from_le_bytes(m[0..4].try_into().unwrap()) as usize;
                let seq = u32::from_le_bytes(m[4..8].try_into().unwrap());
                let sum = u64::from_le_bytes(m[8..16].try_into().unwrap());
                assert!(id < publishers, "publisher id {id}");
                assert_eq!(
                    seq, next[id],
                    "publisher {id}: expected #{} got #{seq} (lost, duplicated or reordered)",
                    next[id]
                );
                assert_eq!(
                    fnv1a(&m[16..]),
                    sum,
                    "publisher {id} #{seq}: checksum mismatch (torn message)"
                );
                let mut expect = Vec::new();
                make_message(id as u32, seq, &mut expect);
                assert_eq!(&*m, &expect[..], "publisher {id} #{seq}: content differs");
                next[id] += 1;
            }
            assert!(s.try_recv().is_err(), "no extra messages");
            println!("RESULT received={total}");
        }
        "sleeper" => {
            // Blocks in recv with no spinning: it must be woken by the futex.
            let mut s = channel.subscriber().unwrap();
            s.set_spin(0);
            let m = s.recv().unwrap();
            println!("RESULT got={}", String::from_utf8_lossy(&m));
        }
        "counter" => {
            // Receives until "END", checking order; prints the count.
            let mut s = channel.subscriber().unwrap();
            let mut n: u64 = 0;
            loop {
                let m = s
                    .recv_timeout(Duration::from_secs(60))
                    .expect("a message within 60 s");
                if &*m == b"END" {
                    break;
                }
                assert_eq!(u64::from_le_bytes(m[..8].try_into().unwrap()), n, "order");
                n += 1;
            }
            println!("RESULT count={n}");
        }
        "soak_publisher" => {
            let id: u32 = var("MEMLANE_TEST_ID").parse().unwrap();
            let secs: u64 = var("MEMLANE_TEST_SECS").parse().unwrap();
            let mut p = channel.publisher().unwrap();
            let mut buf = Vec::with_capacity(4096);
            let start = std::time::Instant::now();
            let mut seq = 0u32;
            while start.elapsed() < Duration::from_secs(secs) {
                make_message(id, seq, &mut buf);
                if seq % 2 == 0 {
                    p.send(&buf).unwrap();
                } else {
                    let mut loan = p.loan(buf.len()).unwrap();
                    loan.copy_from_slice(&buf);
                    loan.commit().unwrap();
                }
                seq += 1;
            }
            // The end marker: id, u32::MAX.
            let mut end = id.to_le_bytes().to_vec();
            end.extend_from_slice(&u32::MAX.to_le_bytes());
            p.send(&end).unwrap();
            println!("RESULT sent={seq}");
        }
        "soak_subscriber" => {
            let publishers: usize = var("MEMLANE_TEST_PUBLISHERS").parse().unwrap();
            let mut s = channel.subscriber().unwrap();
            let mut next = vec![0u32; publishers];
            let mut ended = 0;
            let mut bytes = 0u64;
            while ended < publishers {
                let m = s
                    .recv_timeout(Duration::from_secs(60))
                    .expect("a message within 60 s");
                let id = u32::from_le_bytes(m[0..4].try_into().unwrap()) as usize;
                let seq = u32::from_le_bytes(m[4..8].try_into().unwrap());
                assert!(id < publishers);
                if seq == u32::MAX && m.len() == 8 {
                    ended += 1;
                    continue;
                }
                assert_eq!(
                    seq, next[id],
                    "publisher {id}: lost, duplicated or reordered"
                );
                let sum = u64::from_le_bytes(m[8..16].try_into().unwrap());
                assert_eq!(fnv1a(&m[16..]), sum, "publisher {id} #{seq}: torn");
                next[id] += 1;
                bytes += m.len() as u64;
            }
            println!(
                "RESULT received={} bytes={bytes}",
                next.iter().map(|&n| u64::from(n)).sum::<u64>()
            );
        }
        #[cfg(target_os = "linux")]
        "join_without_fds" => {
            // No descriptor left: the next open fails with EMFILE.
            let next = std::fs::File::open("/dev/null").unwrap();
            let fd = std::os::fd::AsRawFd::as_raw_fd(&next) as libc::rlim_t;
            drop(next);
            let lim = libc::rlimit {
                rlim_cur: fd,
                rlim_max: fd,
            };
            // SAFETY: `lim` is a valid rlimit; lowering the limit only
            // makes later opens in this (child) process fail.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
            match channel.publisher() {
                Err(e @ memlane::JoinError::Liveness { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains("liveness lock"), "{msg}");
                    assert!(msg.contains("open-file limit"), "{msg}");
                    println!("RESULT refused: {msg}");
                }
                other => panic!("expected JoinError::Liveness, got {other:?}"),
            }
            // Nothing was taken.
            assert!(channel.info().publishers.is_empty());
        }
        "disconnect_subscriber" => disconnect_subscriber(&dir, &channel),
        "counter_publisher" => {
            let count: u32 = var("MEMLANE_TEST_COUNT").parse().unwrap();
            let mut p = channel.publisher().unwrap();
            for seq in 0..count {
                p.send(&seq.to_le_bytes()).unwrap();
            }
        }
        "lingering_publisher" => {
            // Sends, says so, and stays joined until it is killed.
            let count: u32 = var("MEMLANE_TEST_COUNT").parse().unwrap();
            let mut p = channel.publisher().unwrap();
            for seq in 0..count {
                p.send(&seq.to_le_bytes()).unwrap();
            }
            std::fs::write(dir.join("sent"), b"").unwrap();
            std::thread::sleep(WATCHDOG);
        }
        other => panic!("unknown role {other}"),
    }
}

/// A process that may not use membarrier (`MEMLANE_FAULT_NO_MEMBARRIER`):
/// opening the parent's membarrier channel `name` must fail with the
/// error that says so; a channel it creates itself (`name` + "-fenced")
/// uses fences, and it receives the parent's messages on it, sleeping
/// between them.
#[cfg(target_os = "linux")]
fn without_membarrier(dir: &std::path::Path, name: &str) {
    match Channel::open_options(name).dir(dir).open() {
        Err(memlane::OpenError::MembarrierUnavailable { path }) => {
            assert!(path.to_string_lossy().ends_with(name), "{}", path.display());
            println!("RESULT refused");
        }
        other => panic!("expected MembarrierUnavailable, got {other:?}"),
    }
    let fenced = Channel::builder(&format!("{name}-fenced"))
        .capacity(4096)
        .dir(dir)
        .create()
        .unwrap();
    assert!(!fenced.info().membarrier);
    let mut s = fenced.subscriber().unwrap();
    s.set_spin(0);
    let mut n = 0u64;
    loop {
        let m = s.recv_timeout(Duration::from_secs(60)).expect("a message");
        if &*m == b"END" {
            break;
        }
        assert_eq!(u64::from_le_bytes(m[..8].try_into().unwrap()), n, "order");
        n += 1;
    }
    drop(s);
    memlane::remove(Some(dir), &format!("{name}-fenced")).unwrap();
    println!("RESULT count={n}");
}

#[cfg(not(target_os = "linux"))]
fn without_membarrier(_dir: &std::path::Path, _name: &str) {
    unreachable!("membarrier is Linux-only");
}

fn vars(d: &TestDir, name: &str, extra: &[(&str, String)]) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = vec![
        ("MEMLANE_TEST_DIR", d.path.display().to_string()),
        ("MEMLANE_TEST_CHANNEL", name.to_string()),
    ];
    for (k, val) in extra {
        let k: &'static str = Box::leak(k.to_string().into_boxed_str());
        v.push((k, val.clone()));
    }
    v
}

#[test]
fn two_publishers_three_subscribers_nothing_lost() {
    let d = TestDir::new("mp-fanout");
    let name = "fanout";
    let publishers = 2u32;
    let per_publisher = 50_000u32;
    let channel = Channel::builder(name)
        .capacity(1 << 20)
        .max_message(4096)
        .max_publishers(publishers)
        .max_subscribers(3)
        .dir(&d.path)
        .create()
        .unwrap();
    // Three subscribers; the last never spins, so it sleeps on the futex
    // whenever it catches up and must be woken.
    let mut subs = Vec::new();
    for spin in ["4000", "100", "0"] {
        let v = vars(
            &d,
            name,
            &[
                ("MEMLANE_TEST_PUBLISHERS", publishers.to_string()),
                ("MEMLANE_TEST_COUNT", per_publisher.to_string()),
                ("MEMLANE_TEST_SPIN", spin.to_string()),
            ],
        );
        subs.push(spawn_role(ENTRY, "subscriber", &v));
    }
    wait_for(Duration::from_secs(60), "three subscribers to join", || {
        channel.info().subscribers.len() == 3
    });
    let mut pubs = Vec::new();
    for id in 0..publishers {
        let v = vars(
            &d,
            name,
            &[
                ("MEMLANE_TEST_ID", id.to_string()),
                ("MEMLANE_TEST_COUNT", per_publisher.to_string()),
            ],
        );
        pubs.push(spawn_role(ENTRY, "publisher", &v));
    }
    for p in pubs {
        let out = expect_success(&p.wait(WATCHDOG), "publisher");
        assert!(
            out.contains(&format!("RESULT sent={per_publisher}")),
            "{out}"
        );
    }
    for s in subs {
        let out = expect_success(&s.wait(WATCHDOG), "subscriber");
        assert!(
            out.contains(&format!("RESULT received={}", per_publisher * publishers)),
            "{out}"
        );
    }
    let info = channel.info();
    assert_eq!(info.messages_sent, u64::from(per_publisher * publishers));
    assert!(info.subscribers.is_empty() && info.publishers.is_empty());
}

/// A subscriber and a publisher pinned to one CPU (each process's
/// affinity mask holds that CPU alone): the subscriber then sleeps after
/// its first empty poll instead of spinning (`ring::CpuSharing`). Nothing
/// may be lost, and no wake-up either: a lost one would leave each receive
/// to the 100 ms re-check, and 20,000 of them would run into the
/// watchdog. (How long a receive takes is not asserted.)
#[cfg(target_os = "linux")]
#[test]
fn a_subscriber_pinned_to_its_publishers_cpu_gets_everything() {
    let cpu = rustix::thread::sched_getaffinity(None)
        .ok()
        .and_then(|set| (0..rustix::thread::CpuSet::MAX_CPU).find(|&i| set.is_set(i)))
        .expect("a CPU this process may run on");
    let d = TestDir::new("mp-pinned");
    let pin = ("MEMLANE_TEST_PIN_CPU", cpu.to_string());
    one_publisher_to_one_subscriber(
        &d,
        "pinned",
        1 << 16,
        &[("MEMLANE_TEST_SPIN", "4000".to_string()), pin.clone()],
        &[pin],
    );
}

/// Bursts sent with one wake-up each (`Publisher::with_one_wakeup`) into
/// a ring smaller than a burst, read by a subscriber that sleeps at once:
/// every message arrives, in order and intact. The ring fills inside a
/// burst, so the publisher must make its owed wake-up before it waits
/// for room (else each fill would wait for the subscriber's 100 ms
/// re-check, and 20,000 messages would run into the watchdog).
#[test]
fn bursts_with_one_wakeup_lose_nothing() {
    let d = TestDir::new("mp-burst");
    one_publisher_to_one_subscriber(
        &d,
        "burst",
        1 << 14,
        &[("MEMLANE_TEST_SPIN", "0".to_string())],
        &[("MEMLANE_TEST_BURST", "64".to_string())],
    );
}

/// A channel `name` of `capacity` bytes (messages up to 4 KiB), a
/// subscriber process (with `sub_vars` besides its count), then a
/// publisher process (with `pub_vars`) sending 20,000 checksummed
/// messages: both succeed, and the subscriber got each one in order.
fn one_publisher_to_one_subscriber(
    d: &TestDir,
    name: &str,
    capacity: u64,
    sub_vars: &[(&'static str, String)],
    pub_vars: &[(&'static str, String)],
) {
    let count = 20_000u32;
    let channel = Channel::builder(name)
        .capacity(capacity)
        .max_message(4096)
        .dir(&d.path)
        .create()
        .unwrap();
    let mut extra = vec![
        ("MEMLANE_TEST_PUBLISHERS", "1".to_string()),
        ("MEMLANE_TEST_COUNT", count.to_string()),
    ];
    extra.extend_from_slice(sub_vars);
    let sub = spawn_role(ENTRY, "subscriber", &vars(d, name, &extra));
    wait_for(Duration::from_secs(60), "the subscriber to join", || {
        channel.info().subscribers.len() == 1
    });
    let mut extra = vec![
        ("MEMLANE_TEST_ID", "0".to_string()),
        ("MEMLANE_TEST_COUNT", count.to_string()),
    ];
    extra.extend_from_slice(pub_vars);
    let publ = spawn_role(ENTRY, "publisher", &vars(d, name, &extra));
    let out = expect_success(&publ.wait(WATCHDOG), "publisher");
    assert!(out.contains(&format!("RESULT sent={count}")), "{out}");
    let out = expect_success(&sub.wait(WATCHDOG), "subscriber");
    assert!(out.contains(&format!("RESULT received={count}")), "{out}");
}

#[cfg(unix)]
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name.
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

#[cfg(unix)]
fn all_threads_sleeping(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(|t| t.ok()).all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").and_then(|(_, r)| r.chars().next()))
            == Some('S')
    })
}

#[test]
fn a_subscriber_blocked_in_recv_is_woken() {
    let d = TestDir::new("mp-wake");
    let name = "wake";
    let channel = Channel::builder(name)
        .capacity(4096)
        .dir(&d.path)
        .create()
        .unwrap();
    let child = spawn_role(ENTRY, "sleeper", &vars(&d, name, &[]));
    wait_for(Duration::from_secs(60), "the sleeper to join", || {
        channel.info().subscribers.len() == 1
    });
    // Wait until every thread of the child sleeps (it is parked in the futex).
    #[cfg(unix)]
    {
        let pid = child.id();
        wait_for(Duration::from_secs(60), "the sleeper to sleep", || {
            all_threads_sleeping(pid)
        });
    }
    // Windows shows no thread states to another process: give the child
    // time to spin out and sleep on its semaphore. (The library's own test
    // `sys::windows::tests` checks a wake-up with no time-out to hide a
    // lost one.)
    #[cfg(windows)]
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    channel.publisher().unwrap().send(b"wake up").unwrap();
    let out = expect_success(&child.wait(Duration::from_secs(60)), "sleeper");
    assert!(out.contains("RESULT got=wake up"), "{out}");
    eprintln!(
        "sleeper woke and exited {:?} after the send",
        start.elapsed()
    );
}

#[cfg(unix)] // Windows has no SIGSTOP.
#[test]
fn a_stopped_subscriber_fills_the_ring_then_everything_flows_again() {
    let d = TestDir::new("mp-stop");
    let name = "stop";
    let capacity = 64 * 1024u64;
    let channel = Channel::builder(name)
        .capacity(capacity)
        .max_message(1024)
        .dir(&d.path)
        .create()
        .unwrap();
    let child = spawn_role(ENTRY, "counter", &vars(&d, name, &[]));
    wait_for(Duration::from_secs(60), "the counter to join", || {
        channel.info().subscribers.len() == 1
    });
    let pid = child.id();
    common::signal(pid, "-STOP");
    wait_for(Duration::from_secs(10), "the child to stop", || {
        process_state(pid) == Some('T')
    });
    let mut p = channel.publisher().unwrap();
    let mut n: u64 = 0;
    let mut msg = [0u8; 64];
    loop {
        msg[..8].copy_from_slice(&n.to_le_bytes());
        match p.try_send(&msg) {
            Ok(()) => n += 1,
            Err(memlane::TrySendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(n <= capacity / 80 + 1, "the ring never reported Full");
    }
    // 64-byte messages take 80 ring bytes; the stopped subscriber may
    // have consumed nothing, so at most capacity / 80 fit.
    assert!(n >= capacity / 80 - 1, "Full came too early: {n}");
    assert_eq!(
        p.try_send(&msg),
        Err(memlane::TrySendError::Full),
        "still full while stopped"
    );
    let info = channel.info();
    assert!(
        info.subscribers[0].lag > capacity - 80,
        "lag {}",
        info.subscribers[0].lag
    );
    common::signal(pid, "-CONT");
    let extra = 20_000u64;
    for i in n..n + extra {
        msg[..8].copy_from_slice(&i.to_le_bytes());
        p.send_timeout(&msg, Duration::from_secs(60))
            .expect("flows again after SIGCONT");
    }
    p.send(b"END").unwrap();
    let out = expect_success(&child.wait(WATCHDOG), "counter");
    assert!(
        out.contains(&format!("RESULT count={}", n + extra)),
        "{out}"
    );
}

#[test]
fn soak_with_checksums() {
    let secs: u64 = std::env::var("MEMLANE_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let d = TestDir::new("mp-soak");
    let name = "soak";
    let channel = Channel::builder(name)
        .capacity(256 * 1024)
        .max_message(4096)
        .max_publishers(2)
        .max_subscribers(2)
        .dir(&d.path)
        .create()
        .unwrap();
    let subs: Vec<_> = (0..2)
        .map(|_| {
            let v = vars(&d, name, &[("MEMLANE_TEST_PUBLISHERS", "2".to_string())]);
            spawn_role(ENTRY, "soak_subscriber", &v)
        })
        .collect();
    wait_for(Duration::from_secs(60), "two subscribers", || {
        channel.info().subscribers.len() == 2
    });
    let pubs: Vec<_> = (0..2u32)
        .map(|id| {
            let v = vars(
                &d,
                name,
                &[
                    ("MEMLANE_TEST_ID", id.to_string()),
                    ("MEMLANE_TEST_SECS", secs.to_string()),
                ],
            );
            spawn_role(ENTRY, "soak_publisher", &v)
        })
        .collect();
    let mut sent = 0u64;
    for p in pubs {
        let out = expect_success(&p.wait(Duration::from_secs(secs + 120)), "soak publisher");
        let n: u64 = out
            .split("RESULT sent=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .expect("count");
        sent += n;
    }
    for s in subs {
        let out = expect_success(&s.wait(Duration::from_secs(120)), "soak subscriber");
        assert!(
            out.contains(&format!("RESULT received={sent} ")),
            "{out} (sent {sent})"
        );
    }
    eprintln!("soak: {secs} s, {sent} messages from 2 publishers to 2 subscribers, all checked");
}

/// A channel in a page-file-backed named mapping (Windows): another
/// process opens it by name, receives everything in order, and sleeps and
/// wakes on it; once every process has let go, the name is gone.
#[cfg(windows)]
#[test]
fn a_page_file_channel_crosses_processes_and_vanishes_with_its_last_handle() {
    let d = TestDir::new("mp-pagefile");
    // Named mappings are per session, not per directory: a unique name.
    let name = format!("pfchan-{}", std::process::id());
    let channel = Channel::builder(&name)
        .capacity(64 * 1024)
        .dir(&d.path)
        .page_file(true)
        .create()
        .unwrap();
    assert!(!d.path.join(format!("memlane.{name}")).exists());
    let child = spawn_role(ENTRY, "counter", &vars(&d, &name, &[]));
    wait_for(Duration::from_secs(60), "the counter to join", || {
        channel.info().subscribers.len() == 1
    });
    let mut p = channel.publisher().unwrap();
    for n in 0..10_000u64 {
        p.send(&n.to_le_bytes()).unwrap();
    }
    // Let the child drain and fall asleep before the last message.
    std::thread::sleep(Duration::from_millis(500));
    p.send(b"END").unwrap();
    let out = expect_success(&child.wait(Duration::from_secs(60)), "counter");
    assert!(out.contains("RESULT count=10000"), "{out}");
    drop(p);
    drop(channel);
    let e = Channel::open_options(&name)
        .dir(&d.path)
        .open()
        .unwrap_err();
    assert!(matches!(e, memlane::OpenError::NotFound { .. }), "{e}");
}

/// A process that cannot use membarrier is refused a channel that relies
/// on it, with an error saying why and what to do; a channel it creates
/// uses fences, and a process that can use membarrier works with it
/// (sending while the other sleeps between messages).
#[cfg(target_os = "linux")]
#[test]
fn a_process_without_membarrier_is_refused_its_channels_and_uses_fences() {
    let d = TestDir::new("mp-nomb");
    let name = "mb";
    let channel = Channel::builder(name)
        .capacity(4096)
        .dir(&d.path)
        .create()
        .unwrap();
    assert!(channel.info().membarrier, "this kernel has membarrier");
    let mut child = spawn_role(
        ENTRY,
        "without_membarrier",
        &vars(
            &d,
            name,
            &[("MEMLANE_FAULT_NO_MEMBARRIER", "1".to_string())],
        ),
    );
    let mut fenced = None;
    wait_for(Duration::from_secs(60), "the fenced channel", || {
        fenced = Channel::open_options("mb-fenced")
            .dir(&d.path)
            .open()
            .ok()
            .filter(|c| c.info().subscribers.len() == 1);
        // A child that failed early: show why.
        fenced.is_some() || child.child().try_wait().unwrap().is_some()
    });
    let Some(fenced) = fenced else {
        let out = expect_success(&child.wait(Duration::from_secs(10)), "without membarrier");
        panic!("the child exited early: {out}");
    };
    assert!(!fenced.info().membarrier);
    let mut p = fenced.publisher().unwrap();
    for i in 0..2000u64 {
        p.send(&i.to_le_bytes()).unwrap();
        if i % 256 == 0 {
            std::thread::sleep(Duration::from_millis(1)); // let it sleep
        }
    }
    p.send(b"END").unwrap();
    let out = expect_success(&child.wait(Duration::from_secs(120)), "without membarrier");
    assert!(out.contains("RESULT refused"), "{out}");
    assert!(out.contains("RESULT count=2000"), "{out}");
    drop(channel);
}

/// With one publisher slot and membarrier (Linux), the publisher moves
/// the claim with a plain store; subscribers joining and leaving all the while (in
/// another process than the publisher) must each get an unbroken,
/// untorn run of messages. A join the publisher missed would let it lap
/// the new subscriber in this 16 KiB ring: an "overwritten" error, a
/// checksum mismatch or a gap in the sequence.
#[test]
fn subscribers_join_a_single_publisher_mid_stream_and_miss_nothing() {
    let d = TestDir::new("mp-join1");
    let name = "join1";
    let channel = Channel::builder(name)
        .capacity(16 * 1024)
        .max_message(4096)
        .max_publishers(1)
        .max_subscribers(2)
        .dir(&d.path)
        .create()
        .unwrap();
    let mut publisher = spawn_role(
        ENTRY,
        "soak_publisher",
        &vars(
            &d,
            name,
            &[
                ("MEMLANE_TEST_ID", "0".to_string()),
                ("MEMLANE_TEST_SECS", "3".to_string()),
            ],
        ),
    );
    wait_for(Duration::from_secs(60), "the publisher", || {
        channel.info().publishers.len() == 1
    });
    let (mut joins, mut checked) = (0u64, 0u64);
    let start = Instant::now();
    'outer: while publisher.child().try_wait().unwrap().is_none() {
        assert!(start.elapsed() < WATCHDOG, "the publisher never finished");
        let mut s = channel.subscriber().unwrap();
        joins += 1;
        let mut last: Option<u32> = None;
        for _ in 0..(joins % 64) {
            let m = match s.recv_timeout(Duration::from_millis(500)) {
                Ok(m) => m,
                Err(memlane::RecvTimeoutError::Timeout) => break,
                Err(e) => panic!("join {joins}: {e}"),
            };
            let seq = u32::from_le_bytes(m[4..8].try_into().unwrap());
            if seq == u32::MAX {
                break 'outer;
            }
            let sum = u64::from_le_bytes(m[8..16].try_into().unwrap());
            assert_eq!(fnv1a(&m[16..]), sum, "join {joins} #{seq}: torn");
            if let Some(l) = last {
                assert_eq!(seq, l + 1, "join {joins}: a gap after #{l}");
            }
            last = Some(seq);
            checked += 1;
        }
    }
    let out = expect_success(&publisher.wait(Duration::from_secs(120)), "publisher");
    assert!(out.contains("RESULT sent="), "{out}");
    // Linux: membarrier, so the claim is a plain store; Windows: fences.
    assert_eq!(channel.info().membarrier, cfg!(target_os = "linux"));
    assert!(
        joins >= 20 && checked >= 200,
        "{joins} joins, {checked} messages"
    );
    eprintln!("{joins} joins mid-stream, {checked} messages checked");
}

/// Issue 16 item 3: an endpoint that cannot take its liveness lock (here
/// the process is out of file descriptors, so the channel's file cannot
/// be opened again) does not join: the join fails with a typed error that
/// says what is wrong (before, it joined without a lock, and every other
/// process then took it for dead; or, with the lock file unopenable, it
/// was told the channel was full).
#[cfg(target_os = "linux")]
#[test]
fn a_join_that_cannot_take_its_liveness_lock_fails_and_says_why() {
    let d = TestDir::new("mp-nofd");
    let _c = Channel::builder("nofd")
        .capacity(4096)
        .dir(&d.path)
        .create()
        .unwrap();
    let child = spawn_role(ENTRY, "join_without_fds", &vars(&d, "nofd", &[]));
    let out = expect_success(&child.wait(Duration::from_secs(60)), "join_without_fds");
    assert!(out.contains("RESULT refused"), "{out}");
}

/// Waits (with a watchdog) for the file `name` in `dir`.
fn wait_file(dir: &std::path::Path, name: &str) {
    wait_for(WATCHDOG, name, || dir.join(name).exists());
}

/// The subscriber of `a_blocked_recv_learns_that_every_publisher_left`:
/// receives until disconnected, twice (a publisher that exits, then one
/// that is killed), then receives from a publisher that joins later.
fn disconnect_subscriber(dir: &std::path::Path, channel: &Channel) {
    let mut s = channel.subscriber().unwrap();
    s.set_disconnect_grace(Some(Duration::from_millis(200)));
    s.set_spin(0);
    std::fs::write(dir.join("joined"), b"").unwrap();
    for round in 0..2 {
        wait_file(dir, &format!("publisher{round}"));
        let mut got = 0u32;
        loop {
            match s.recv() {
                Ok(m) => {
                    assert_eq!(&*m, &got.to_le_bytes(), "message {got} of round {round}");
                    got += 1;
                }
                Err(memlane::RecvError::Disconnected) => break,
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        println!("RESULT round={round} received={got}");
        // Still disconnected: said again at once (no publisher can join
        // before the file below is written).
        assert_eq!(
            s.recv_timeout(WATCHDOG).unwrap_err(),
            memlane::RecvTimeoutError::Disconnected
        );
        std::fs::write(dir.join(format!("disconnected{round}")), b"").unwrap();
    }
    // A publisher joins again: a new receive waits for it, longer than the
    // grace, and receives its message.
    wait_file(dir, "publisher2");
    std::fs::write(dir.join("waiting"), b"").unwrap();
    let m = s
        .recv()
        .expect("the message of the publisher that came back");
    assert_eq!(&*m, b"again");
    println!("RESULT again");
}

/// A subscriber blocked in `recv` in one process learns that every
/// publisher has left, with `RecvError::Disconnected`, once its publisher
/// process exits and once it is killed (and reaped); a publisher that
/// joins later is received by the next `recv`.
#[test]
fn a_blocked_recv_learns_that_every_publisher_left() {
    let d = TestDir::new("mp-disconnect");
    let name = "disconnect";
    let channel = Channel::builder(name)
        .capacity(64 << 10)
        .max_message(1024)
        .dir(&d.path)
        .create()
        .unwrap();
    let sub = spawn_role(ENTRY, "disconnect_subscriber", &vars(&d, name, &[]));
    wait_file(&d.path, "joined");

    // A publisher that sends and exits.
    let count = ("MEMLANE_TEST_COUNT", "3".to_string());
    std::fs::write(d.path.join("publisher0"), b"").unwrap();
    let p = spawn_role(
        ENTRY,
        "counter_publisher",
        &vars(&d, name, std::slice::from_ref(&count)),
    );
    expect_success(&p.wait(WATCHDOG), "publisher");
    wait_file(&d.path, "disconnected0");

    // A publisher that sends and is killed while joined.
    let mut p = spawn_role(ENTRY, "lingering_publisher", &vars(&d, name, &[count]));
    wait_for(WATCHDOG, "the publisher to join", || {
        channel.info().publishers.len() == 1
    });
    std::fs::write(d.path.join("publisher1"), b"").unwrap();
    wait_file(&d.path, "sent");
    p.child().kill().unwrap();
    p.child().wait().unwrap();
    wait_file(&d.path, "disconnected1");

    // One that comes back: joins first, then sends once the subscriber
    // has waited past its grace.
    let mut publ = channel.publisher().unwrap();
    std::fs::write(d.path.join("publisher2"), b"").unwrap();
    wait_file(&d.path, "waiting");
    std::thread::sleep(Duration::from_millis(400));
    publ.send(b"again").unwrap();
    let out = expect_success(&sub.wait(WATCHDOG), "subscriber");
    assert!(out.contains("RESULT round=0 received=3"), "{out}");
    assert!(out.contains("RESULT round=1 received=3"), "{out}");
    assert!(out.contains("RESULT again"), "{out}");
}

//! Crashes, stalls, hostile peers and permissions, with real processes:
//! this test binary is run again in a child role (`MEMLANE_TEST_ROLE`),
//! killed with SIGKILL at fault points (`MEMLANE_FAULT`, see src/fault.rs)
//! or at random times, stopped with SIGSTOP, or run as another user.

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{expect_success, fnv1a, spawn_role, wait_ready, KillOnDrop, Rng, TestDir, ROLE_ENV};
use memlane::{Channel, CreateError, Liveness, Segment, TrySendError};

const ENTRY: &str = "child_entry";
/// File offset of a channel's data region (after the header page), of
/// the claim word in it, and of the ring for channels with at most 12
/// publisher and subscriber slots in all (docs/ARCHITECTURE.md).
const DATA: u64 = 4096;
const CLAIM: u64 = 128;
const RING: u64 = 4096;
/// XOR-ed into every record stamp (docs/ARCHITECTURE.md).
const STAMP_KEY: u64 = 0x6d65_6d6c_616e_6521;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

/// Publisher `id`'s message `seq`: id, seq, checksum, then 0..=`max`
/// payload bytes.
fn make_message(id: u32, seq: u32, max: u64, buf: &mut Vec<u8>) {
    let mut rng = Rng::new((u64::from(id) << 32) | u64::from(seq));
    let len = rng.below(max + 1) as usize;
    buf.clear();
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&[0; 8]);
    buf.extend((0..len).map(|_| rng.next() as u8));
    let sum = fnv1a(&buf[16..]);
    buf[8..16].copy_from_slice(&sum.to_le_bytes());
}

/// Checks a received message; returns (id, seq).
fn check_message(m: &[u8], max: u64) -> (u32, u32) {
    assert!(m.len() >= 16, "short message: {} bytes", m.len());
    let id = u32::from_le_bytes(m[0..4].try_into().unwrap());
    let seq = u32::from_le_bytes(m[4..8].try_into().unwrap());
    let mut want = Vec::new();
    make_message(id, seq, max, &mut want);
    assert_eq!(
        m,
        &want[..],
        "publisher {id} message {seq} is torn or corrupt"
    );
    (id, seq)
}

#[test]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let dir = PathBuf::from(var("MEMLANE_TEST_DIR"));
    let name = var("MEMLANE_TEST_CHANNEL");
    match role.as_str() {
        "subscriber_idle" => {
            let c = Channel::open_options(&name).dir(&dir).open().unwrap();
            let _s = c.subscriber().unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        "subscriber_join" => {
            let c = Channel::open_options(&name).dir(&dir).open().unwrap();
            let _s = c.subscriber().unwrap();
            println!("RESULT joined");
        }
        "publisher" => {
            let c = Channel::open_options(&name).dir(&dir).open().unwrap();
            let mut p = c.publisher().unwrap();
            let id: u32 = var("MEMLANE_TEST_ID").parse().unwrap();
            let count: u32 = var("MEMLANE_TEST_COUNT").parse().unwrap();
            let max: u64 = var("MEMLANE_TEST_MAX").parse().unwrap();
            let mut buf = Vec::new();
            for seq in 0..count {
                make_message(id, seq, max, &mut buf);
                p.send(&buf).unwrap();
            }
            println!("RESULT sent={count}");
        }
        // A lossy subscriber: receives until message `count - 1` of
        // publisher 0 arrives, checking each message whole and each lap's
        // loss count against the numbers it skipped.
        "lossy_subscriber" => {
            let c = Channel::open_options(&name).dir(&dir).open().unwrap();
            let mut sub = c.lossy_subscriber().unwrap();
            let count: u32 = var("MEMLANE_TEST_COUNT").parse().unwrap();
            let max: u64 = var("MEMLANE_TEST_MAX").parse().unwrap();
            println!("READY");
            let (mut received, mut lost, mut lags) = (0u64, 0u64, 0u64);
            let mut next: u32 = 0;
            let mut pending_lost: Option<u64> = None;
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                assert!(Instant::now() < deadline, "lossy subscriber timed out");
                match sub.recv_timeout(Duration::from_millis(100)) {
                    Ok(m) => {
                        let (id, seq) = check_message(&m, max);
                        assert_eq!(id, 0);
                        if let Some(l) = pending_lost.take() {
                            assert_eq!(
                                u64::from(seq - next),
                                l,
                                "lost {l}, but went from {next} to {seq}"
                            );
                        } else {
                            assert_eq!(seq, next, "a message skipped without a Lagged");
                        }
                        received += 1;
                        next = seq + 1;
                        if seq + 1 == count {
                            break;
                        }
                    }
                    Err(memlane::RecvTimeoutError::Lagged(lag)) => {
                        lags += 1;
                        lost += lag.messages();
                        pending_lost = Some(pending_lost.unwrap_or(0) + lag.messages());
                    }
                    Err(memlane::RecvTimeoutError::Timeout) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            println!("RESULT received={received} lost={lost} lags={lags}");
        }
        "create_channel" => {
            let _c = Channel::builder(&name)
                .capacity(4096)
                .dir(&dir)
                .create()
                .unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        "create_segment" => {
            let s = Segment::builder(&name)
                .size(4096)
                .dir(&dir)
                .create()
                .unwrap();
            println!("CREATED {}", s.path().display());
        }
        "hostile" => {
            // Rewrites the channel file at random places for a while.
            use std::io::{Seek, SeekFrom, Write};
            let path = dir.join(format!("memlane.{name}"));
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let len = f.metadata().unwrap().len();
            let secs: u64 = var("MEMLANE_TEST_SECS").parse().unwrap();
            // With MEMLANE_TEST_FROM_END=N only the last N bytes (the ring).
            let first = std::env::var("MEMLANE_TEST_FROM_END")
                .map_or(4096, |n| len - n.parse::<u64>().unwrap());
            let mut rng = Rng::new(std::process::id().into());
            let start = Instant::now();
            let mut writes = 0u64;
            while start.elapsed() < Duration::from_secs(secs) {
                // The header page stays intact; everything after it is fair game.
                let off = first + rng.below(len - first - 8);
                let v = match rng.below(4) {
                    0 => 0,
                    1 => u64::MAX,
                    2 => rng.below(1 << 20),
                    _ => rng.next(),
                };
                f.seek(SeekFrom::Start(off)).unwrap();
                f.write_all(&v.to_ne_bytes()[..1 + rng.below(8) as usize])
                    .unwrap();
                writes += 1;
            }
            println!("RESULT writes={writes}");
        }
        "plant_misaligned_claim" => {
            // What a peer with write access did in the security review: the
            // claim at capacity - 8 (not a multiple of 16), and a record
            // header that matches it (the stamp of that position, a length
            // of max_message) at capacity - 16, where a decoder that rounds
            // offsets down would look.
            let cap: u64 = var("MEMLANE_TEST_CAPACITY").parse().unwrap();
            let max: u64 = var("MEMLANE_TEST_MAX").parse().unwrap();
            let path = dir.join(format!("memlane.{name}"));
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let p = cap - 8;
            let mut put = |off: u64, v: u64| {
                use std::io::{Seek, SeekFrom, Write};
                f.seek(SeekFrom::Start(off)).unwrap();
                f.write_all(&v.to_ne_bytes()).unwrap();
            };
            put(DATA + CLAIM, p);
            put(DATA + RING + cap - 16, p ^ STAMP_KEY);
            put(DATA + RING + cap - 8, max);
            println!("RESULT planted");
        }
        "rewrite_ring_on_demand" => {
            // Each time the file `go-<n>` appears, overwrites every byte of
            // the ring (the last MEMLANE_TEST_CAPACITY bytes of the file),
            // headers and payloads, then creates `done-<n>`; ends at `stop`.
            use std::io::{Seek, SeekFrom, Write};
            let path = dir.join(format!("memlane.{name}"));
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let len = f.metadata().unwrap().len();
            let cap: u64 = var("MEMLANE_TEST_CAPACITY").parse().unwrap();
            let garbage = vec![0xA5u8; cap as usize];
            let start = Instant::now();
            let mut n = 0u32;
            while !dir.join("stop").exists() {
                assert!(start.elapsed() < Duration::from_secs(60), "never stopped");
                if !dir.join(format!("go-{n}")).exists() {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                f.seek(SeekFrom::Start(len - cap)).unwrap();
                f.write_all(&garbage).unwrap();
                std::fs::write(dir.join(format!("done-{n}")), b"").unwrap();
                n += 1;
            }
            println!("RESULT rewrites={n}");
        }
        "truncate" => {
            let path = dir.join(format!("memlane.{name}"));
            let r = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(4096);
            match r {
                Ok(()) => println!("RESULT truncated"),
                Err(e) => println!("RESULT refused {e}"),
            }
        }
        "guarded_sleep" => {
            // A guarded mapping (which installs memlane's SIGBUS handler),
            // then nothing: a `kill -BUS` must still end this process.
            let _s = Segment::builder(&name)
                .size(4096)
                .dir(&dir)
                .create()
                .unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        "many_mappings" => {
            // More mappings than the first table of guards holds, then a
            // truncation caught in the last one.
            let count: usize = var("MEMLANE_TEST_COUNT").parse().unwrap();
            let _s = Segment::builder(&name)
                .size(64 * 1024)
                .dir(&dir)
                .create()
                .unwrap();
            let views: Vec<Segment> = (0..count)
                .map(|_| {
                    Segment::open_options(&name)
                        .dir(&dir)
                        .access(memlane::Access::ReadOnly)
                        .open()
                        .unwrap()
                })
                .collect();
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join(format!("memlane.{name}")))
                .unwrap()
                .set_len(4096)
                .unwrap();
            let mut buf = [0u8; 8];
            match views[count - 1].read(60_000, &mut buf) {
                Err(memlane::AccessError::Truncated) => println!("RESULT truncated"),
                other => println!("RESULT {other:?}"),
            }
        }
        #[cfg(unix)]
        "squat" => squat(&dir, &name),
        #[cfg(unix)]
        "unsquat" => {
            // Removes what "squat" planted, as its owner may in a sticky
            // directory.
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let n = entry.file_name().into_string().unwrap();
                if n.starts_with(".memlane-ep.") {
                    let _ = std::fs::remove_dir(entry.path());
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            println!("RESULT unsquatted");
        }
        "create_shared" => {
            let _c = Channel::builder(&name)
                .capacity(4096)
                .mode(0o660)
                .dir(&dir)
                .create()
                .unwrap();
            println!("RESULT created");
        }
        "subscriber_shared" => {
            let c = Channel::open_options(&name)
                .dir(&dir)
                .allow_other_owner(true)
                .open()
                .unwrap();
            let _s = c.subscriber().unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        "reap_shared" => {
            let c = Channel::open_options(&name)
                .dir(&dir)
                .allow_other_owner(true)
                .open()
                .unwrap();
            let states: Vec<String> = c
                .info()
                .subscribers
                .iter()
                .map(|s| s.state.to_string())
                .collect();
            let reaped = c.reap();
            println!(
                "RESULT states={} reaped={},{} left={}",
                states.join(","),
                reaped.publishers,
                reaped.subscribers,
                c.info().subscribers.len()
            );
        }
        other => panic!("unknown role {other}"),
    }
}

/// A channel in `d` for the messages of [`make_message`] (up to 216 bytes).
fn message_channel(d: &TestDir, name: &str, capacity: u64) -> Channel {
    message_builder(d, name, capacity).create().unwrap()
}

/// The builder behind [`message_channel`], for channels that differ more.
fn message_builder(d: &TestDir, name: &str, capacity: u64) -> memlane::ChannelBuilder {
    Channel::builder(name)
        .capacity(capacity)
        .max_message(216)
        .dir(&d.path)
}

fn vars(d: &TestDir, name: &str, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("MEMLANE_TEST_DIR", d.path.display().to_string()),
        ("MEMLANE_TEST_CHANNEL", name.to_string()),
    ];
    v.extend(extra.iter().cloned());
    v
}

#[test]
fn a_killed_subscriber_stops_holding_back_publishers() {
    let d = TestDir::new("rel-deadsub");
    let c = Channel::builder("deadsub")
        .capacity(4096)
        .dir(&d.path)
        .create()
        .unwrap();
    let mut child = spawn_role(ENTRY, "subscriber_idle", &vars(&d, "deadsub", &[]));
    wait_ready(&mut child);
    let mut p = c.publisher().unwrap();
    while p.try_send(&[0; 100]).is_ok() {}
    assert_eq!(p.try_send(&[0; 100]), Err(TrySendError::Full));
    assert_eq!(c.info().subscribers[0].state, Liveness::Alive);
    child.child().kill().unwrap();
    let _ = child.wait(Duration::from_secs(10));
    assert_eq!(
        c.info().subscribers[0].state,
        Liveness::Dead,
        "seen dead through its liveness lock, not its pid"
    );
    // A blocked send notices, reclaims the slot and goes on.
    p.send_timeout(&[1; 100], Duration::from_secs(10))
        .expect("a dead subscriber is reclaimed");
    assert!(c.info().subscribers.is_empty());
    // Liveness lives on the channel's own file: nothing else is beside it.
    let left: Vec<_> = std::fs::read_dir(&d.path)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "memlane.deadsub")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[cfg(unix)] // Windows has no SIGSTOP.
#[test]
fn a_stopped_subscriber_is_stalled_never_reclaimed() {
    let d = TestDir::new("rel-stopped");
    let c = Channel::builder("stopped")
        .capacity(4096)
        .dir(&d.path)
        .create()
        .unwrap();
    let mut child = spawn_role(ENTRY, "subscriber_idle", &vars(&d, "stopped", &[]));
    wait_ready(&mut child);
    let pid = child.id();
    common::signal(pid, "-STOP");
    common::wait_for(Duration::from_secs(10), "the child to stop", || {
        c.info().subscribers[0].state == Liveness::Stalled
    });
    let mut p = c.publisher().unwrap();
    while p.try_send(&[0; 100]).is_ok() {}
    // Several reap intervals pass; the stopped subscriber keeps its slot.
    let start = Instant::now();
    assert!(p
        .send_timeout(&[1; 100], Duration::from_millis(700))
        .is_err());
    assert!(start.elapsed() >= Duration::from_millis(700));
    assert!(c.reap().is_empty());
    assert_eq!(c.info().subscribers.len(), 1);
    common::signal(pid, "-CONT");
    common::wait_for(Duration::from_secs(10), "the child to run", || {
        c.info().subscribers[0].state == Liveness::Alive
    });
}

/// A child publisher (id 1) of `count` messages of up to `max` bytes on
/// channel `name`, killed by the fault point `point` the `n`-th time it
/// reaches it.
fn spawn_faulting_publisher(
    d: &TestDir,
    name: &str,
    count: u32,
    max: u64,
    point: &str,
    n: u32,
) -> KillOnDrop {
    let extra = [
        ("MEMLANE_TEST_ID", "1".to_string()),
        ("MEMLANE_TEST_COUNT", count.to_string()),
        ("MEMLANE_TEST_MAX", max.to_string()),
        ("MEMLANE_FAULT", format!("{point}:{n}")),
    ];
    spawn_role(ENTRY, "publisher", &vars(d, name, &extra))
}

/// One crash trial: a publisher child dies (SIGKILL) at `point` on its
/// `n`-th pass while this process receives and a healthy publisher thread
/// sends; returns how many of the crashed publisher's messages arrived.
fn crash_trial(d: &TestDir, trial: u32, point: &str, n: u32) -> u32 {
    const MAX: u64 = 200;
    const COUNT: u32 = 60;
    let name = format!("crash{trial}");
    let c = message_channel(d, &name, 4096);
    let mut sub = c.subscriber().unwrap();
    let child = spawn_faulting_publisher(d, &name, COUNT, MAX, point, n);
    let c2 = c.clone();
    let healthy = std::thread::spawn(move || {
        let mut p = c2.publisher().unwrap();
        let mut buf = Vec::new();
        for seq in 0..COUNT {
            make_message(0, seq, MAX, &mut buf);
            p.send_timeout(&buf, Duration::from_secs(30))
                .expect("the healthy publisher is never blocked for good");
        }
    });
    let mut next = [0u32; 2];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut child = Some(child);
    let mut child_done = false;
    loop {
        assert!(
            Instant::now() < deadline,
            "trial {trial} ({point}:{n}) hung: got {next:?}"
        );
        match sub.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => {
                let (id, seq) = check_message(&m, MAX);
                assert!(id < 2, "unknown publisher {id}");
                assert_eq!(
                    seq, next[id as usize],
                    "publisher {id}: lost, duplicated or reordered"
                );
                next[id as usize] += 1;
            }
            Err(memlane::RecvTimeoutError::Timeout) => {
                if !child_done {
                    if let Some(ch) = child.as_mut() {
                        if ch.child().try_wait().unwrap().is_some() {
                            child_done = true;
                        }
                    }
                }
                if child_done && next[0] == COUNT {
                    // Everything claimed has been read (or was reclaimed).
                    let info = c.info();
                    if info.subscribers[0].lag == 0 {
                        break;
                    }
                }
            }
            Err(e) => panic!("trial {trial} ({point}:{n}): {e}"),
        }
    }
    healthy.join().unwrap();
    let out = child.take().unwrap().wait(Duration::from_secs(10));
    let crashed = next[1];
    if out.status.success() {
        assert_eq!(
            crashed, COUNT,
            "a publisher that finished delivered everything"
        );
    } else if point != "after_pad" {
        // (after_pad counts wrap-arounds, not messages.)
        assert!(
            crashed <= n,
            "{point}:{n}: {crashed} messages from a publisher killed earlier"
        );
    }
    drop(sub);
    drop(c);
    memlane::remove(Some(&d.path), &name).unwrap();
    crashed
}

#[test]
fn publishers_killed_at_every_point_of_a_send_lose_nothing_else() {
    let d = TestDir::new("rel-crash");
    let points = [
        "after_claim",
        "mid_payload",
        "after_pad",
        "before_commit",
        "after_commit",
    ];
    let trials: u32 = std::env::var("MEMLANE_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut rng = Rng::new(0x5eed);
    let mut partial = 0;
    for trial in 0..trials {
        let point = points[(trial as usize) % points.len()];
        let n = 1 + rng.below(50) as u32;
        let got = crash_trial(&d, trial, point, n);
        if got < 60 {
            partial += 1;
        }
    }
    eprintln!("{trials} crash trials, {partial} with the publisher killed mid-stream; nothing lost or torn");
    // after_pad only fires when a record wraps; most other trials kill.
    assert!(partial >= trials / 2, "the fault points did fire");
}

#[test]
fn publishers_killed_at_random_times() {
    let d = TestDir::new("rel-randkill");
    let c = message_channel(&d, "randkill", 8192);
    let mut sub = c.subscriber().unwrap();
    let mut rng = Rng::new(42);
    let mut expected_next = Vec::new();
    for round in 0..20u32 {
        let extra = [
            ("MEMLANE_TEST_ID", round.to_string()),
            ("MEMLANE_TEST_COUNT", "100000".to_string()),
            ("MEMLANE_TEST_MAX", "200".to_string()),
        ];
        let mut child = spawn_role(ENTRY, "publisher", &vars(&d, "randkill", &extra));
        let until = Instant::now() + Duration::from_micros(2000 + rng.below(30_000));
        let mut next = 0u32;
        while Instant::now() < until {
            if let Ok(m) = sub.try_recv() {
                let (id, seq) = check_message(&m, 200);
                assert_eq!((id, seq), (round, next));
                next += 1;
            }
        }
        child.child().kill().unwrap();
        let _ = child.child().wait();
        child.0 = None;
        // Drain what it committed; a claim it held is reclaimed.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "round {round}: stuck");
            match sub.recv_timeout(Duration::from_millis(300)) {
                Ok(m) => {
                    let (id, seq) = check_message(&m, 200);
                    assert_eq!((id, seq), (round, next));
                    next += 1;
                }
                Err(_) if c.info().subscribers[0].lag == 0 => break,
                Err(_) => {}
            }
        }
        expected_next.push(next);
    }
    eprintln!("messages received before each kill: {expected_next:?}");
}

#[test]
fn a_creator_killed_mid_creation_blocks_nothing() {
    let d = TestDir::new("rel-create");
    for point in ["create_before_ready", "create_before_rename"] {
        let extra = [("MEMLANE_FAULT", format!("{point}:1"))];
        let child = spawn_role(ENTRY, "create_channel", &vars(&d, "half", &extra));
        let out = child.wait(Duration::from_secs(30));
        assert!(!out.status.success(), "the creator was killed");
        // A temporary file is left behind, never the name.
        let names: Vec<String> = std::fs::read_dir(&d.path)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert!(names.iter().all(|n| n != "memlane.half"), "{names:?}");
        assert!(
            names.iter().any(|n| n.starts_with(".memlane-tmp.half.")),
            "{names:?}"
        );
        // The next create works, and gc removes the debris.
        let c = Channel::builder("half")
            .capacity(4096)
            .dir(&d.path)
            .create()
            .unwrap();
        let removed = memlane::gc_with(Some(&d.path), false, 0).unwrap().removed;
        assert!(
            removed
                .iter()
                .any(|r| r.file.starts_with(".memlane-tmp.half.")),
            "{removed:?}"
        );
        assert!(
            removed.iter().all(|r| r.file != "memlane.half"),
            "a held channel is never collected"
        );
        drop(c);
        memlane::remove(Some(&d.path), "half").unwrap();
    }
}

#[test]
fn a_name_whose_owner_died_is_recreated_and_gc_spares_live_ones() {
    let d = TestDir::new("rel-stale");
    let mut child = spawn_role(ENTRY, "create_channel", &vars(&d, "stale", &[]));
    wait_ready(&mut child);
    // While the creator lives, the name is taken and gc leaves it alone.
    let e = Channel::builder("stale")
        .capacity(4096)
        .dir(&d.path)
        .create()
        .unwrap_err();
    assert!(matches!(e, CreateError::AlreadyExists { .. }), "{e}");
    assert!(memlane::gc(Some(&d.path), false)
        .unwrap()
        .removed
        .is_empty());
    child.child().kill().unwrap();
    let _ = child.wait(Duration::from_secs(10));
    // Its owner is provably dead (nobody holds the file): re-created in place.
    let c = Channel::builder("stale")
        .capacity(8192)
        .dir(&d.path)
        .create()
        .unwrap();
    assert_eq!(c.capacity(), 8192);
    drop(c);
    // Nobody holds it now: gc removes it; dry run first.
    let dry = memlane::gc(Some(&d.path), true).unwrap().removed;
    assert!(dry.iter().any(|r| r.file == "memlane.stale"), "{dry:?}");
    assert!(d.path.join("memlane.stale").exists());
    let removed = memlane::gc(Some(&d.path), false).unwrap().removed;
    assert!(
        removed.iter().any(|r| r.file == "memlane.stale"),
        "{removed:?}"
    );
    assert!(!d.path.join("memlane.stale").exists());
}

#[test]
fn waits_are_bounded_when_peers_are_gone() {
    let d = TestDir::new("rel-bounded");
    let c = Channel::builder("bounded")
        .capacity(4096)
        .dir(&d.path)
        .create()
        .unwrap();
    let mut s = c.subscriber().unwrap();
    // Publishers all gone (there never were any): a timed receive returns.
    let start = Instant::now();
    assert!(s.recv_timeout(Duration::from_millis(300)).is_err());
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_hostile_writer_never_crashes_an_honest_subscriber() {
    let d = TestDir::new("rel-hostile");
    let c = Channel::builder("hostile")
        .capacity(16384)
        .max_message(1024)
        .dir(&d.path)
        .create()
        .unwrap();
    let mut sub = Some(c.subscriber().unwrap());
    let c2 = c.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let publisher = std::thread::spawn(move || {
        let mut p = c2.publisher().unwrap();
        let mut n = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            // Every call returns within its bound (plus the join grace),
            // whatever the writer did.
            let start = Instant::now();
            let _ = p.send_timeout(&n.to_le_bytes(), Duration::from_millis(20));
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "send_timeout blocked far past its bound"
            );
            n += 1;
        }
    });
    let secs = 5;
    let hostile = spawn_role(
        ENTRY,
        "hostile",
        &vars(&d, "hostile", &[("MEMLANE_TEST_SECS", secs.to_string())]),
    );
    let start = Instant::now();
    let (mut ok, mut corrupt, mut empty, mut refused) = (0u64, 0u64, 0u64, 0u64);
    while start.elapsed() < Duration::from_secs(secs + 1) {
        let Some(s) = sub.as_mut() else {
            // A corrupt channel: start over with a fresh subscriber. The
            // join may be refused (a claim position the format cannot
            // hold, a slot the writer keeps CLAIMED), never hang.
            c.reap();
            match c.subscriber() {
                Ok(s) => sub = Some(s),
                Err(
                    memlane::JoinError::Corrupt(_)
                    | memlane::JoinError::Evicted { .. }
                    | memlane::JoinError::TooManySubscribers { .. },
                ) => {
                    refused += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("unexpected join error: {e}"),
            }
            continue;
        };
        let result = s.recv_timeout(Duration::from_millis(10)).map(|m| m.len());
        match result {
            Ok(len) => {
                assert!(len <= 1024, "a message longer than the maximum");
                ok += 1;
            }
            Err(memlane::RecvTimeoutError::Corrupt(_)) => {
                corrupt += 1;
                sub = None;
            }
            Err(_) => empty += 1,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let out = expect_success(&hostile.wait(Duration::from_secs(30)), "hostile writer");
    let out = out
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or("")
        .to_string();
    publisher.join().expect("the publisher never panics");
    eprintln!(
        "hostile writer: {} ; subscriber: {ok} messages, {corrupt} corrupt errors, {empty} empty, {refused} joins refused",
        out.trim()
    );
}

/// Whether `m` is a message of [`make_message`], intact.
fn intact(m: &[u8], max: u64) -> bool {
    if m.len() < 16 {
        return false;
    }
    let id = u32::from_le_bytes(m[0..4].try_into().unwrap());
    let seq = u32::from_le_bytes(m[4..8].try_into().unwrap());
    let mut want = Vec::new();
    make_message(id, seq, max, &mut want);
    m == &want[..]
}

/// A subscriber that copies (the channel is writable by others: mode
/// 0666) holds a private copy: another process rewriting every byte of
/// the ring while a message is held does not change it, and the channel
/// goes on. Then, under a writer hammering the ring at random, every
/// message returned stays the same for as long as it is held (read twice,
/// 100 µs apart), and nothing crashes or hangs. (In place, the first part
/// fails at once: the held slice shows the rewritten bytes.)
#[test]
fn a_hostile_writer_cannot_change_a_copied_message_while_it_is_held() {
    let d = TestDir::new("rel-copy");
    let cap = 16384u64;
    let c = message_builder(&d, "copy", cap)
        .mode(0o666)
        .copy_messages(cfg!(windows)) // Windows does not read permission bits
        .create()
        .unwrap();
    assert!(c.copies_messages(), "a channel others may write is copied");
    let mut sub = Channel::open_options("copy")
        .dir(&d.path)
        .copy_messages(cfg!(windows))
        .open()
        .unwrap()
        .subscriber()
        .unwrap();
    assert!(sub.copies_messages());
    let mut publ = c.publisher().unwrap();

    // 1. The whole ring rewritten while a message is held.
    let rewriter = spawn_role(
        ENTRY,
        "rewrite_ring_on_demand",
        &vars(&d, "copy", &[("MEMLANE_TEST_CAPACITY", cap.to_string())]),
    );
    let mut buf = Vec::new();
    for seq in 0..40u32 {
        make_message(1, seq, 200, &mut buf);
        publ.send(&buf).unwrap();
        let m = sub.recv_timeout(Duration::from_secs(5)).unwrap();
        check_message(&m, 200);
        std::fs::write(d.path.join(format!("go-{seq}")), b"").unwrap();
        common::wait_for(Duration::from_secs(20), "the ring's rewrite", || {
            d.path.join(format!("done-{seq}")).exists()
        });
        assert!(
            intact(&m, 200),
            "message {seq} changed while it was held (the ring was rewritten under it)"
        );
    }
    std::fs::write(d.path.join("stop"), b"").unwrap();
    expect_success(&rewriter.wait(Duration::from_secs(30)), "ring rewriter");

    // 2. Random writes into the ring while messages flow.
    let c2 = c.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    drop(publ);
    let publisher = std::thread::spawn(move || {
        let mut p = c2.publisher().unwrap();
        let mut buf = Vec::new();
        let mut seq = 0u32;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            make_message(2, seq, 200, &mut buf);
            let _ = p.send_timeout(&buf, Duration::from_millis(20));
            seq = seq.wrapping_add(1);
        }
    });
    let secs = 3;
    let hostile = spawn_role(
        ENTRY,
        "hostile",
        &vars(
            &d,
            "copy",
            &[
                ("MEMLANE_TEST_SECS", secs.to_string()),
                ("MEMLANE_TEST_FROM_END", cap.to_string()),
            ],
        ),
    );
    let start = Instant::now();
    let (mut good, mut tampered, mut corrupt, mut rewritten) = (0u64, 0u64, 0u64, 0u64);
    let mut idle = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let reset = match sub.recv_timeout(Duration::from_millis(10)) {
            Ok(m) => {
                let before = fnv1a(&m);
                let until = Instant::now() + Duration::from_micros(100);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                assert_eq!(fnv1a(&m), before, "a held message changed");
                assert!(m.len() <= 216, "a message longer than the maximum");
                if intact(&m, 200) {
                    good += 1;
                } else {
                    tampered += 1; // written over before it was copied
                }
                false
            }
            Err(memlane::RecvTimeoutError::Corrupt(e)) => {
                corrupt += 1;
                if e.reason().contains("while it was copied out") {
                    rewritten += 1;
                }
                true
            }
            Err(_) => {
                // A record header written over can also look like nothing
                // yet: after a while, start over too.
                idle += 1;
                idle % 3 == 0
            }
        };
        if reset {
            drop(sub);
            // A corrupt channel: start over with a fresh subscriber.
            sub = c.subscriber().unwrap_or_else(|_| {
                c.reap();
                c.subscriber().expect("a slot")
            });
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let out = expect_success(&hostile.wait(Duration::from_secs(30)), "hostile writer");
    publisher.join().expect("the publisher never panics");
    let out = out.lines().find(|l| l.starts_with("RESULT")).unwrap_or("");
    eprintln!(
        "copy mode under a hostile writer ({}): {good} intact, {tampered} written over \
         before the copy, {corrupt} corrupt errors ({rewritten} rewritten during the copy), \
         {idle} empty waits",
        out.trim()
    );
    assert!(good > 0, "messages got through");
}

#[cfg(unix)] // Numeric owners and setuid children are Unix notions.
#[test]
fn segments_of_other_users_are_refused_unless_allowed() {
    if memlane_uid() != 0 {
        eprintln!("skipped: needs root to run a child as another user (uid 65534)");
        return;
    }
    let d = TestDir::new("rel-foreign");
    // The other user needs to create files in the directory.
    std::fs::set_permissions(
        &d.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    cmd.args([ENTRY, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE_ENV, "create_segment")
        .env("MEMLANE_TEST_DIR", &d.path)
        .env("MEMLANE_TEST_CHANNEL", "planted");
    std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
    std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
    let out = match cmd.output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "skipped: the child could not run as uid 65534: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            return;
        }
        Err(e) => {
            eprintln!("skipped: cannot run a child as uid 65534: {e}");
            return;
        }
    };
    assert!(String::from_utf8_lossy(&out.stdout).contains("CREATED"));
    let e = Segment::open_options("planted")
        .dir(&d.path)
        .open()
        .unwrap_err();
    match &e {
        memlane::OpenError::ForeignOwner { owner, .. } => assert_eq!(*owner, 65534),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("allow_other_owner"), "{e}");
    let s = Segment::open_options("planted")
        .dir(&d.path)
        .allow_other_owner(true)
        .open()
        .unwrap();
    assert_eq!(s.len(), 4096);
    drop(s);
    // Its name is not silently reused, even though nobody holds it.
    let e = Segment::builder("planted")
        .size(10)
        .dir(&d.path)
        .create()
        .unwrap_err();
    assert!(matches!(e, CreateError::AlreadyExists { .. }), "{e}");
    assert!(
        memlane::gc(Some(&d.path), false)
            .unwrap()
            .removed
            .is_empty(),
        "gc leaves other users' files alone"
    );
}

#[cfg(unix)]
fn memlane_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(u32::MAX)
}

#[cfg(unix)] // Windows files inherit the directory's access control list.
#[test]
fn created_owner_only_whatever_the_umask() {
    let d = TestDir::new("rel-umask");
    // Run `umask 0` then create, in a shell-spawned child.
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000 && exec '{}' {ENTRY} --exact -q --test-threads=1",
            exe.display()
        ))
        .env(ROLE_ENV, "create_segment")
        .env("MEMLANE_TEST_DIR", &d.path)
        .env("MEMLANE_TEST_CHANNEL", "um")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.path.join("memlane.um"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

/// Windows refuses to shrink a file while a view of it is mapped, so a
/// peer can never pull pages from under a segment there.
#[cfg(windows)]
#[test]
fn a_peer_cannot_truncate_a_mapped_segment() {
    let d = TestDir::new("rel-trunc");
    let mut seg = Segment::builder("trunc")
        .size(64 * 1024)
        .dir(&d.path)
        .create()
        .unwrap();
    seg.write(60_000, b"before").unwrap();
    let out = spawn_role(ENTRY, "truncate", &vars(&d, "trunc", &[])).wait(Duration::from_secs(30));
    let stdout = expect_success(&out, "truncating child");
    assert!(stdout.contains("RESULT refused"), "{stdout}");
    let mut buf = [0u8; 6];
    seg.read(60_000, &mut buf).unwrap();
    assert_eq!(&buf, b"before");
}

#[cfg(unix)] // SIGBUS; Windows refuses the truncation instead (above).
#[test]
fn a_peer_truncating_the_file_does_not_kill_us() {
    let d = TestDir::new("rel-trunc");
    let mut seg = Segment::builder("trunc")
        .size(64 * 1024)
        .dir(&d.path)
        .create()
        .unwrap();
    seg.write(60_000, b"before").unwrap();
    // Another process cuts the file down to its header.
    let out = spawn_role(ENTRY, "truncate", &vars(&d, "trunc", &[])).wait(Duration::from_secs(30));
    assert!(expect_success(&out, "truncating child").contains("RESULT truncated"));
    // Touching the lost pages raised SIGBUS; memlane caught it.
    let mut buf = [0u8; 6];
    assert!(matches!(
        seg.read(60_000, &mut buf),
        Err(memlane::AccessError::Truncated)
    ));
    assert!(matches!(
        seg.write(100, b"x"),
        Err(memlane::AccessError::Truncated)
    ));
    drop(seg);

    // A channel whose file is truncated under it reports corruption.
    let c = Channel::builder("trunc-chan")
        .capacity(4096)
        .dir(&d.path)
        .create()
        .unwrap();
    let mut sub = c.subscriber().unwrap();
    let mut p = c.publisher().unwrap();
    p.send(b"ok").unwrap();
    assert_eq!(&*sub.try_recv().unwrap(), b"ok");
    let file = d.path.join("memlane.trunc-chan");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(4096)
        .unwrap();
    assert!(
        p.try_send(b"lost").is_err(),
        "the publisher sees the truncation"
    );
    assert!(matches!(
        sub.try_recv(),
        Err(memlane::TryRecvError::Corrupt(_))
    ));
}

/// A blocking receive polls before it sleeps; when another process cuts
/// the channel's file down while it polls (its looks then read the zero
/// page that replaced the lost one), it reports the corruption at once
/// rather than polling on: with a budget of `u32::MAX` polls, a receive
/// that missed it would poll for minutes.
#[cfg(unix)] // SIGBUS; Windows refuses the truncation instead (above).
#[test]
fn a_polling_receive_reports_a_truncation_at_once() {
    let d = TestDir::new("rel-trunc-poll");
    let c = Channel::builder("trunc-poll")
        .capacity(4096)
        .dir(&d.path)
        .create()
        .unwrap();
    let mut sub = c.subscriber().unwrap();
    let _publ = c.publisher().unwrap(); // joined: no disconnect to report
    sub.set_spin(u32::MAX);
    let vars = vars(&d, "trunc-poll", &[]);
    let cutter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        spawn_role(ENTRY, "truncate", &vars).wait(Duration::from_secs(30))
    });
    let start = Instant::now();
    let got = sub.recv().map(|m| m.to_vec());
    let took = start.elapsed();
    let out = cutter.join().unwrap();
    assert!(expect_success(&out, "truncating child").contains("RESULT truncated"));
    assert!(
        matches!(got, Err(memlane::RecvError::Corrupt(_))),
        "{got:?}"
    );
    assert!(took < Duration::from_secs(20), "it polled on for {took:?}");
}

/// memlane's SIGBUS handler takes only the faults the kernel raises for
/// an access inside one of its mappings: a SIGBUS sent by another process
/// (`kill -BUS`, si_code SI_USER) keeps its default meaning and ends the
/// process, as it would without memlane.
#[cfg(unix)]
#[test]
fn a_sigbus_sent_by_another_process_is_not_swallowed() {
    use std::os::unix::process::ExitStatusExt;
    let d = TestDir::new("rel-killbus");
    let mut child = spawn_role(ENTRY, "guarded_sleep", &vars(&d, "killbus", &[]));
    wait_ready(&mut child);
    common::signal(child.id(), "-BUS");
    let out = child.wait(Duration::from_secs(30));
    assert_eq!(
        out.status.signal(),
        Some(7), // SIGBUS
        "the child should have died of SIGBUS: {:?}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every mapping is guarded, however many a process has: a truncation
/// under its 600th mapping (more than the guard table's first 512 slots)
/// is still caught.
#[cfg(unix)]
#[test]
fn a_truncation_under_the_600th_mapping_is_caught() {
    let d = TestDir::new("rel-many-maps");
    let out = spawn_role(
        ENTRY,
        "many_mappings",
        &vars(&d, "many", &[("MEMLANE_TEST_COUNT", "600".to_string())]),
    )
    .wait(Duration::from_secs(60));
    let stdout = expect_success(&out, "child with 600 mappings");
    assert!(stdout.contains("RESULT truncated"), "{stdout}");
}

#[test]
fn a_subscriber_killed_mid_join_blocks_nobody() {
    let d = TestDir::new("rel-midjoin");
    let c = Channel::builder("midjoin")
        .capacity(4096)
        .dir(&d.path)
        .create()
        .unwrap();
    let mut p = c.publisher().unwrap();
    p.send(b"before").unwrap();
    let extra = [("MEMLANE_FAULT", "join_claimed:1".to_string())];
    let out = spawn_role(ENTRY, "subscriber_join", &vars(&d, "midjoin", &extra))
        .wait(Duration::from_secs(30));
    assert!(!out.status.success(), "killed in the middle of its join");
    // Its slot is left half-joined; publishers must not wait on it for good.
    for i in 0..100u32 {
        p.send_timeout(&i.to_le_bytes(), Duration::from_secs(10))
            .expect("a half-joined dead subscriber is reclaimed");
    }
    assert!(
        c.info().subscribers.is_empty(),
        "the half-joined slot was reclaimed"
    );
    let mut s = c.subscriber().expect("its slot is free again");
    p.send(b"after").unwrap();
    assert_eq!(&*s.recv_timeout(Duration::from_secs(5)).unwrap(), b"after");
}

/// A subscriber that only busy-polls `try_recv` (never blocks) is not
/// stuck behind the open claim of a publisher killed mid-send: the claim
/// is repaired from its write-ahead record (on one of every 64 empty
/// polls, at most every 200 ms), and what a live publisher sent after it
/// arrives.
#[test]
fn a_busy_polling_subscriber_gets_past_a_publisher_killed_mid_send() {
    let d = TestDir::new("rel-trypoll");
    let c = message_channel(&d, "trypoll", 4096);
    let mut sub = c.subscriber().unwrap();
    // Joined first, so the dead publisher's slot is not the one a join
    // would take (and repair) later: only the subscriber can repair it.
    let mut live = c.publisher().unwrap();
    let extra = [
        ("MEMLANE_TEST_ID", "1".to_string()),
        ("MEMLANE_TEST_COUNT", "10".to_string()),
        ("MEMLANE_TEST_MAX", "200".to_string()),
        ("MEMLANE_FAULT", "after_claim:5".to_string()),
    ];
    let child = spawn_role(ENTRY, "publisher", &vars(&d, "trypoll", &extra));
    let out = child.wait(Duration::from_secs(60));
    assert!(
        !out.status.success(),
        "the publisher was to die at its 5th claim"
    );
    // Claimed after the dead publisher's open claim.
    live.send(b"after").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next = 0u32;
    loop {
        assert!(Instant::now() < deadline, "stuck after {next} messages");
        match sub.try_recv() {
            Ok(m) if &*m == b"after" => break,
            Ok(m) => {
                assert_eq!(check_message(&m, 200), (1, next));
                next += 1;
            }
            Err(memlane::TryRecvError::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(next, 4, "the four messages committed before the kill");
}

/// A channel's only publisher (one publisher slot: on Linux the single
/// writer's straight send path, `ring::send_single`) killed at each point
/// of a send: the subscriber gets every message committed before the
/// kill, in order and whole, and then those of the publisher that takes
/// the freed slot.
#[test]
fn a_single_publisher_killed_at_every_point_of_a_send_loses_nothing_else() {
    const MAX: u64 = 200;
    const COUNT: u32 = 40;
    let d = TestDir::new("rel-single");
    let points = [
        "after_claim",
        "mid_payload",
        "before_commit",
        "after_commit",
    ];
    let mut rng = Rng::new(0x51a9);
    for trial in 0..16u32 {
        let point = points[trial as usize % points.len()];
        let n = 1 + rng.below(30) as u32;
        let name = format!("single{trial}");
        let c = message_builder(&d, &name, 4096)
            .max_publishers(1)
            .create()
            .unwrap();
        let mut sub = c.subscriber().unwrap();
        let child = spawn_faulting_publisher(&d, &name, COUNT, MAX, point, n);
        // Receive while the child sends (the ring holds fewer than COUNT
        // messages, so it must keep up).
        let mut next = 0u32;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut child = Some(child);
        while child.is_some() {
            assert!(Instant::now() < deadline, "{point}:{n}: stuck at {next}");
            match sub.recv_timeout(Duration::from_millis(20)) {
                Ok(m) => {
                    assert_eq!(check_message(&m, MAX), (1, next), "{point}:{n}");
                    next += 1;
                }
                Err(memlane::RecvTimeoutError::Timeout) => {
                    let done = child.as_mut().unwrap().child().try_wait().unwrap();
                    if done.is_some() {
                        let out = child.take().unwrap().wait(Duration::from_secs(10));
                        assert!(!out.status.success(), "{point}:{n} was to kill it");
                    }
                }
                Err(e) => panic!("{point}:{n}: {e}"),
            }
        }
        // The dead publisher's slot is reclaimed for a new one, whose
        // message comes after everything the dead one committed.
        let mut p = loop {
            match c.publisher() {
                Ok(p) => break p,
                Err(e) => {
                    assert!(Instant::now() < deadline, "{point}:{n}: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        p.send(b"after").unwrap();
        loop {
            assert!(Instant::now() < deadline, "{point}:{n}: stuck at {next}");
            match sub.recv_timeout(Duration::from_millis(20)) {
                Ok(m) if &*m == b"after" => break,
                Ok(m) => {
                    assert_eq!(check_message(&m, MAX), (1, next), "{point}:{n}");
                    next += 1;
                }
                Err(memlane::RecvTimeoutError::Timeout) => {}
                Err(e) => panic!("{point}:{n}: {e}"),
            }
        }
        // Killed at the n-th send's point: the sends before it committed,
        // and the n-th too if the point is after its commit.
        let committed = if point == "after_commit" { n } else { n - 1 };
        assert_eq!(next, committed, "{point}:{n}");
        drop((p, sub, c));
        memlane::remove(Some(&d.path), &name).unwrap();
    }
}

/// The security review's reproduction: a peer with write access moved the
/// claim to a position that is not a multiple of 16 and planted a record
/// header matching it. A subscriber that joined there read past the end of
/// the mapping; now the join is refused with an error saying what is
/// wrong, and so is a send, and a subscriber that had joined before gets
/// nothing out of bounds.
#[test]
fn a_misaligned_claim_position_is_refused() {
    let d = TestDir::new("rel-misaligned");
    let cap = 65536u64;
    let c = Channel::builder("misaligned")
        .capacity(cap)
        .max_message(1024)
        .max_publishers(4)
        .max_subscribers(4)
        .dir(&d.path)
        .create()
        .unwrap();
    let mut before = c.subscriber().unwrap();
    let extra = [
        ("MEMLANE_TEST_CAPACITY", cap.to_string()),
        ("MEMLANE_TEST_MAX", "1024".to_string()),
    ];
    let out = spawn_role(
        ENTRY,
        "plant_misaligned_claim",
        &vars(&d, "misaligned", &extra),
    )
    .wait(Duration::from_secs(30));
    assert!(expect_success(&out, "planter").contains("RESULT planted"));
    match c.subscriber() {
        Err(memlane::JoinError::Corrupt(e)) => assert!(
            e.reason().contains("not a multiple of 16"),
            "says what is wrong: {e}"
        ),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("joined at a misaligned position"),
    }
    let mut p = c.publisher().unwrap();
    assert!(
        matches!(p.try_send(b"x"), Err(TrySendError::Corrupt(_))),
        "a publisher does not lay records out from a misaligned claim"
    );
    // The subscriber that joined before still reads from its own, aligned
    // position: nothing there.
    assert!(matches!(
        before.try_recv(),
        Err(memlane::TryRecvError::Empty)
    ));
}

/// A subscriber stopped (SIGSTOP) in the middle of its join holds its slot
/// CLAIMED. Publishers that raced with the join wait for it at most the
/// join grace, then evict it: `try_send` and `send_timeout` return instead
/// of blocking for as long as it is stopped. Once continued, the joiner
/// finds it was evicted and joins again. With several publisher slots (the
/// claim CAS) and with one (the single writer's path).
#[cfg(unix)]
#[test]
fn a_subscriber_stopped_mid_join_blocks_no_send() {
    for max_publishers in [4u32, 1] {
        let d = TestDir::new("rel-stopjoin");
        let c = Channel::builder("stopjoin")
            .capacity(4096)
            .max_publishers(max_publishers)
            .dir(&d.path)
            .create()
            .unwrap();
        let mut p = c.publisher().unwrap();
        p.send(b"before").unwrap();
        let extra = [("MEMLANE_FAULT_STOP", "join_claimed:1".to_string())];
        let child = spawn_role(ENTRY, "subscriber_join", &vars(&d, "stopjoin", &extra));
        let pid = child.id();
        common::wait_for(Duration::from_secs(30), "the joiner to stop", || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|t| t.trim_start().starts_with('T'))
            })
        });
        // The sends run in a thread so that a send blocked for good fails
        // the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            for i in 0..20u32 {
                match p.try_send(&i.to_le_bytes()) {
                    Ok(()) | Err(TrySendError::Full) => {}
                    Err(e) => panic!("{e}"),
                }
                p.send_timeout(&i.to_le_bytes(), Duration::from_millis(50))
                    .expect("nobody holds the ring");
            }
            tx.send(()).unwrap();
            p
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("sends return while a joiner is stopped mid-join");
        let _p = sender.join().unwrap();
        assert!(
            c.info().subscribers.is_empty(),
            "the stopped joiner was evicted"
        );
        common::signal(pid, "-CONT");
        let out = child.wait(Duration::from_secs(30));
        assert!(
            expect_success(&out, "joiner").contains("RESULT joined"),
            "an evicted joiner joins again once continued"
        );
    }
}

/// The child side of the squatting test, run as uid 65534: plants a
/// directory and world-writable files at every name the liveness token
/// files of memlane before channel layout 4 used for channel `name`, then
/// tries to open the channel's file (mode 0600, root's) to lock it.
#[cfg(unix)]
fn squat(dir: &std::path::Path, name: &str) {
    use std::os::unix::fs::PermissionsExt;
    for (i, role) in ["p", "s"].iter().enumerate() {
        for slot in 0..2 {
            let path = dir.join(format!(".memlane-ep.{name}.{role}{slot}"));
            if i == 0 && slot == 0 {
                std::fs::create_dir(&path).unwrap();
            } else {
                std::fs::write(&path, b"").unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
            }
        }
    }
    let file = dir.join(format!("memlane.{name}"));
    for write in [false, true] {
        let r = std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(&file);
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            other => panic!("the squatter could open the channel's file: {other:?}"),
        }
    }
    println!("RESULT squatted");
}

/// A command running this test binary as `uid`/`gid` in `role`.
#[cfg(unix)]
fn command_as(uid: u32, gid: u32, role: &str, vars: &[(&str, String)]) -> std::process::Command {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    cmd.args([ENTRY, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE_ENV, role)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    std::os::unix::process::CommandExt::uid(&mut cmd, uid);
    std::os::unix::process::CommandExt::gid(&mut cmd, gid);
    // (With a uid set, std also drops root's supplementary groups.)
    cmd
}

/// Why children cannot run as another user here, if they cannot: not
/// root, or the test binary is out of reach of uid 65534.
#[cfg(unix)]
fn cannot_switch_users() -> Option<String> {
    if memlane_uid() != 0 {
        return Some("needs root to run children as other users (uids 65533, 65534)".into());
    }
    let out = command_as(65534, 65534, "none", &[])
        .args(["--list"])
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "the test binary does not run as uid 65534 (is its directory traversable by others?): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run a child as uid 65534: {e}")),
    }
}

/// Runs `role` as `uid`/`gid` to the end; returns its RESULT line.
#[cfg(unix)]
fn run_as(uid: u32, gid: u32, role: &str, vars: &[(&str, String)]) -> String {
    let out = command_as(uid, gid, role, vars).output().unwrap();
    let stdout = expect_success(&out, role);
    stdout
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or_else(|| panic!("{role}: no RESULT line in {stdout}"))
        .to_string()
}

/// Security review, issue 16 item 2: another user, who cannot even read a
/// 0600 channel, plants directories and 0666 files at the names of the old
/// per-slot token files in a world-writable sticky directory (as
/// `/dev/shm` is). Liveness now lives on the channel's own file, so a
/// single publisher still joins, `info` is right, and when the squatter
/// removes its files the live publisher is not taken for dead (before,
/// the directory made every join fail with "maximum of 1 publishers", and
/// a removed 0666 token made the live publisher look dead and its slot
/// reclaimable).
#[cfg(unix)]
#[test]
fn another_user_cannot_squat_or_fake_endpoint_liveness() {
    if let Some(why) = cannot_switch_users() {
        eprintln!("skipped: {why}");
        return;
    }
    let d = TestDir::new("rel-squat");
    std::fs::set_permissions(
        &d.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let c = Channel::builder("squat")
        .capacity(4096)
        .max_publishers(1)
        .max_subscribers(2)
        .dir(&d.path)
        .create()
        .unwrap();
    let v = vars(&d, "squat", &[]);
    assert_eq!(run_as(65534, 65534, "squat", &v), "RESULT squatted");
    let mut sub = c
        .subscriber()
        .expect("a subscriber joins despite the squatter");
    let mut p = c
        .publisher()
        .expect("the single publisher joins despite the squatter");
    let info = c.info();
    assert_eq!(info.publishers.len(), 1);
    assert_eq!(info.publishers[0].state, Liveness::Alive);
    assert_eq!(info.subscribers[0].state, Liveness::Alive);
    // The squatter removes its files: nothing changes.
    assert_eq!(run_as(65534, 65534, "unsquat", &v), "RESULT unsquatted");
    let info = c.info();
    assert_eq!(info.publishers[0].state, Liveness::Alive);
    assert_eq!(info.subscribers[0].state, Liveness::Alive);
    assert!(c.reap().is_empty(), "no live endpoint is reclaimed");
    assert!(matches!(
        c.publisher(),
        Err(memlane::JoinError::TooManyPublishers { max: 1 })
    ));
    p.send(b"still the only writer").unwrap();
    assert_eq!(&*sub.recv().unwrap(), b"still the only writer");
}

/// A channel shared by two users (mode 0o660, one group): a subscriber of
/// one user killed with SIGKILL is seen dead and reclaimed by a process of
/// the other user (before, its token file was the dead user's 0600 file,
/// which the other user could not open: the slot was held for ever).
#[cfg(unix)]
#[test]
fn a_killed_endpoint_of_another_user_is_reclaimed() {
    if let Some(why) = cannot_switch_users() {
        eprintln!("skipped: {why}");
        return;
    }
    let d = TestDir::new("rel-shared");
    std::fs::set_permissions(
        &d.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let v = vars(&d, "shared", &[]);
    // uid 65534 creates it; uid 65533, in the same group, subscribes.
    assert_eq!(run_as(65534, 65534, "create_shared", &v), "RESULT created");
    let mut child = KillOnDrop(Some(
        command_as(65533, 65534, "subscriber_shared", &v)
            .spawn()
            .unwrap(),
    ));
    wait_ready(&mut child);
    child.child().kill().unwrap();
    let _ = child.wait(Duration::from_secs(10));
    assert_eq!(
        run_as(65534, 65534, "reap_shared", &v),
        "RESULT states=dead reaped=0,1 left=0"
    );
}

/// Two endpoints of one process exclude each other (each has its own open
/// file description, so their locks conflict), also through two handles
/// of the channel; releasing one leaves the other's lock in place.
#[test]
fn endpoints_of_one_process_exclude_each_other() {
    let d = TestDir::new("rel-inproc");
    let c = Channel::builder("inproc")
        .capacity(4096)
        .max_publishers(2)
        .dir(&d.path)
        .create()
        .unwrap();
    let c2 = Channel::open_options("inproc").dir(&d.path).open().unwrap();
    let p1 = c.publisher().unwrap();
    let p2 = c2.publisher().unwrap();
    assert!(matches!(
        c.publisher(),
        Err(memlane::JoinError::TooManyPublishers { max: 2 })
    ));
    assert!(matches!(
        c2.publisher(),
        Err(memlane::JoinError::TooManyPublishers { max: 2 })
    ));
    drop(p1);
    let info = c.info();
    assert_eq!(info.publishers.len(), 1);
    assert_eq!(info.publishers[0].state, Liveness::Alive);
    assert!(c.reap().is_empty(), "p2 is alive");
    assert!(c2.reap().is_empty(), "p2 is alive");
    let p3 = c.publisher().expect("p1's slot is free again");
    assert!(c2.publisher().is_err());
    drop((p2, p3));
    assert!(c.info().publishers.is_empty());
}

/// Replay after every process is gone. A file-backed channel; publisher 1
/// is killed (SIGKILL) in the middle of the payload of its 301st message,
/// publisher 2 takes its slot (no subscriber needs the dead claim, so it
/// stays as it was) and is killed right after committing its 400th; the
/// creator is gone too, and the name is removed as a reboot empties
/// `/dev/shm`. A new process opens the file by its path and subscribes
/// from the oldest message: it gets a whole run of publisher 1's last
/// messages, then all of publisher 2's, in order, each intact; the torn
/// 301st never.
#[test]
fn a_file_backed_channel_replays_after_every_process_is_gone() {
    const MAX: u64 = 200;
    let d = TestDir::new("rel-replay");
    let files = TestDir::new("rel-replay-file");
    let file = files.path.join("ring.bin");
    drop(
        message_builder(&d, "replay", 65536)
            .file(&file, memlane::Disposition::CreateNew)
            .create()
            .unwrap(),
    );
    let publisher = |id: u32, count: u32, fault: String| {
        let extra = [
            ("MEMLANE_TEST_ID", id.to_string()),
            ("MEMLANE_TEST_COUNT", count.to_string()),
            ("MEMLANE_TEST_MAX", MAX.to_string()),
            ("MEMLANE_FAULT", fault),
        ];
        let out = spawn_role(ENTRY, "publisher", &vars(&d, "replay", &extra))
            .wait(Duration::from_secs(60));
        assert!(
            !out.status.success(),
            "publisher {id} should have been killed"
        );
    };
    publisher(1, 1000, "mid_payload:301".into());
    publisher(2, 1000, "after_commit:400".into());
    memlane::remove(Some(&d.path), "replay").unwrap();

    let c = Channel::open_path(&file).unwrap();
    let mut sub = c.subscriber_from_oldest().unwrap();
    let mut got: Vec<(u32, u32)> = Vec::new();
    loop {
        match sub.recv_timeout(Duration::from_millis(700)) {
            Ok(m) => got.push(check_message(&m, MAX)),
            Err(memlane::RecvTimeoutError::Timeout | memlane::RecvTimeoutError::Disconnected) => {
                break
            }
            Err(e) => panic!("{e}"),
        }
    }
    let first_of_2 = got
        .iter()
        .position(|&(id, _)| id == 2)
        .expect("publisher 2's messages");
    let (ones, twos) = got.split_at(first_of_2);
    assert_eq!(
        twos.iter().map(|&(_, s)| s).collect::<Vec<_>>(),
        (0..400).collect::<Vec<_>>(),
        "publisher 2's messages, all of them, in order"
    );
    assert!(twos.iter().all(|&(id, _)| id == 2));
    // Publisher 1's: a whole run ending with its last committed message.
    assert!(ones.iter().all(|&(id, _)| id == 1));
    for w in ones.windows(2) {
        assert_eq!(w[1].1, w[0].1 + 1, "a gap in publisher 1's run: {w:?}");
    }
    // How much of publisher 1's tail the ring can still hold.
    let record = |id: u32, seq: u32| {
        let mut b = Vec::new();
        make_message(id, seq, MAX, &mut b);
        16 + (b.len() as u64).div_ceil(16) * 16
    };
    let room = 65536 - (0..400).map(|s| record(2, s)).sum::<u64>() - record(1, 300);
    if room > 2 * record(1, 299) {
        assert_eq!(
            ones.last().map(|&(_, s)| s),
            Some(299),
            "{} of publisher 1's",
            ones.len()
        );
    }
    println!(
        "replayed {} of publisher 1 ({}..=299) and 400 of publisher 2; {room} bytes of room",
        ones.len(),
        ones.first().map_or(0, |&(_, s)| s)
    );
}

/// Parses `key=value` fields of a child's RESULT line.
#[cfg(unix)]
fn result_field(out: &str, key: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or_else(|| panic!("no RESULT line in {out}"));
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .parse()
        .unwrap()
}

/// A lossy subscriber stopped with SIGSTOP never blocks a publisher (every
/// `try_send` succeeds while it is stopped, many rings over); after
/// SIGCONT it reports exactly how many messages it lost (the numbers it
/// skipped) and receives the rest whole and in order.
#[cfg(unix)]
#[test]
fn a_stopped_lossy_subscriber_never_blocks_and_counts_its_loss_exactly() {
    const MAX: u64 = 100;
    const COUNT: u32 = 4000;
    let d = TestDir::new("rel-lossy-stop");
    let c = message_channel(&d, "lstop", 8192);
    let extra = [
        ("MEMLANE_TEST_COUNT", COUNT.to_string()),
        ("MEMLANE_TEST_MAX", MAX.to_string()),
    ];
    let mut child = spawn_role(ENTRY, "lossy_subscriber", &vars(&d, "lstop", &extra));
    wait_ready(&mut child);
    let mut p = c.publisher().unwrap();
    let mut buf = Vec::new();
    for seq in 0..10 {
        make_message(0, seq, MAX, &mut buf);
        p.send(&buf).unwrap();
    }
    common::wait_for(Duration::from_secs(30), "the first messages read", || {
        c.info()
            .subscribers
            .iter()
            .any(|s| s.lossy && s.messages >= 10)
    });
    common::signal(child.id(), "-STOP");
    for seq in 10..COUNT {
        make_message(0, seq, MAX, &mut buf);
        p.try_send(&buf)
            .expect("a stopped lossy subscriber never makes the ring full");
    }
    common::signal(child.id(), "-CONT");
    let out = expect_success(&child.wait(Duration::from_secs(120)), "lossy subscriber");
    let (received, lost, lags) = (
        result_field(&out, "received"),
        result_field(&out, "lost"),
        result_field(&out, "lags"),
    );
    assert!(lags >= 1, "{out}");
    assert_eq!(received + lost, u64::from(COUNT), "{out}");
    let s = c.info().subscribers.len();
    assert_eq!(s, 0, "the child left");
}

/// Two publisher processes write checksummed messages of random lengths as
/// fast as they can into a small ring; a lossy subscriber reads for a few
/// seconds, lapped over and over, often in the middle of a copy: every
/// message it returns is whole (its checksum holds), each publisher's
/// messages come in order, and laps are reported.
#[test]
fn a_lossy_subscriber_never_returns_a_torn_message() {
    const MAX: u64 = 200;
    let d = TestDir::new("rel-lossy-stress");
    let c = message_channel(&d, "lstress", 4096);
    let mut sub = c.lossy_subscriber().unwrap();
    let pubs: Vec<_> = (1..=2u32)
        .map(|id| {
            let extra = [
                ("MEMLANE_TEST_ID", id.to_string()),
                ("MEMLANE_TEST_COUNT", "2000000".to_string()),
                ("MEMLANE_TEST_MAX", MAX.to_string()),
            ];
            spawn_role(ENTRY, "publisher", &vars(&d, "lstress", &extra))
        })
        .collect();
    let (mut received, mut lags) = (0u64, 0u64);
    let mut last = [None::<u32>; 3];
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        match sub.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => {
                let (id, seq) = check_message(&m, MAX);
                let l = &mut last[id as usize];
                assert!(
                    l.is_none_or(|l| seq > l),
                    "publisher {id}: {seq} after {l:?}"
                );
                *l = Some(seq);
                received += 1;
                // Now and then slow down, to be lapped mid-copy.
                if received % 97 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            Err(memlane::RecvTimeoutError::Lagged(_)) => lags += 1,
            Err(memlane::RecvTimeoutError::Timeout) => {}
            // Both publishers sent everything and left.
            Err(memlane::RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    drop(pubs);
    println!("lossy stress: {received} whole messages, {lags} laps");
    assert!(
        received > 100 && lags > 0,
        "{received} messages, {lags} laps"
    );
}

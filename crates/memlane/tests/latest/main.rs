//! Latest-value slots with real processes: values cross processes whole,
//! waiting readers are woken, writers killed (`MEMLANE_FAULT`) or stopped
//! mid-write never hide the previous value nor hold anyone back, and
//! bytes written by a process that breaks the format give errors, not
//! hangs or panics.

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{expect_success, fnv1a, spawn_role, Rng, TestDir, ROLE_ENV};
use memlane::{CreateError, GetError, Kind, Latest, Liveness, OpenError, SetError};

const ENTRY: &str = "child_entry";
/// File offset of a slot's data region (after the header page) and of the
/// words in it (docs/ARCHITECTURE.md, "Latest-value slot").
const DATA: u64 = 4096;
const CURRENT: u64 = DATA;
const SLOTS: u64 = DATA + 256;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

fn open(dir: &std::path::Path, name: &str) -> Latest {
    Latest::open_options(name).dir(dir).open().unwrap()
}

/// Writer `id`'s value number `n`: id, n, checksum, then a random number
/// of bytes (up to `max - 16`) derived from both.
fn make_value(id: u32, n: u32, max: usize) -> Vec<u8> {
    let mut rng = Rng::new((u64::from(id) << 32) | u64::from(n));
    let len = rng.below((max - 16) as u64 + 1) as usize;
    let mut v = Vec::with_capacity(16 + len);
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&n.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend((0..len).map(|_| rng.next() as u8));
    let sum = fnv1a(&v[16..]);
    v[8..16].copy_from_slice(&sum.to_le_bytes());
    v
}

/// Checks a value read; returns (id, n).
fn check_value(v: &[u8], max: usize) -> (u32, u32) {
    assert!(v.len() >= 16, "short value: {} bytes", v.len());
    let id = u32::from_le_bytes(v[0..4].try_into().unwrap());
    let n = u32::from_le_bytes(v[4..8].try_into().unwrap());
    assert_eq!(v, make_value(id, n, max), "value {id}/{n} is torn");
    (id, n)
}

#[test]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let dir = PathBuf::from(var("MEMLANE_TEST_DIR"));
    let name = var("MEMLANE_TEST_NAME");
    match role.as_str() {
        // Writes values 1..=count as writer `id`, as fast as it can.
        "writer" => {
            let mut slot = open(&dir, &name);
            let id: u32 = var("MEMLANE_TEST_ID").parse().unwrap();
            let count: u32 = var("MEMLANE_TEST_COUNT").parse().unwrap();
            let max = slot.max_value();
            for n in 1..=count {
                slot.set(&make_value(id, n, max)).unwrap();
            }
            println!("RESULT wrote {count}");
        }
        // Reads until `until` has been seen from writer 0 (or a time limit),
        // checking each value whole and versions never going back.
        "reader" => {
            let mut slot = open(&dir, &name);
            let until: u32 = var("MEMLANE_TEST_COUNT").parse().unwrap();
            let max = slot.max_value();
            let mut buf = Vec::new();
            let (mut last, mut reads, mut distinct) = (0, 0u64, 0u64);
            let start = Instant::now();
            loop {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "reader timed out"
                );
                if let Some(v) = slot.get_into(&mut buf).unwrap() {
                    assert!(v >= last, "version went back: {v} after {last}");
                    if v > last {
                        distinct += 1;
                    }
                    last = v;
                    reads += 1;
                    let (id, n) = check_value(&buf, max);
                    if id == 0 && n == until {
                        break;
                    }
                }
            }
            println!("RESULT reads {reads} distinct {distinct}");
        }
        // Waits (sleeping) for each new value until value `until` of writer 0.
        "waiter" => {
            let mut slot = open(&dir, &name);
            let until: u32 = var("MEMLANE_TEST_COUNT").parse().unwrap();
            println!("READY");
            let mut woken = 0;
            loop {
                assert!(
                    slot.wait_timeout(Duration::from_secs(30)),
                    "no new value in 30 s"
                );
                woken += 1;
                let v = slot.get().unwrap().unwrap();
                let (_, n) = check_value(&v, slot.max_value());
                if n == until {
                    break;
                }
            }
            println!("RESULT woken {woken}");
        }
        other => panic!("unknown role {other}"),
    }
}

fn vars(
    dir: &TestDir,
    name: &str,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("MEMLANE_TEST_DIR", dir.path.display().to_string()),
        ("MEMLANE_TEST_NAME", name.to_string()),
    ];
    v.extend_from_slice(extra);
    v
}

/// Starts a `writer` child writing values `1..=count` as writer `id` to
/// the slot `name`, with `extra` variables (fault points).
fn spawn_writer(
    dir: &TestDir,
    name: &str,
    id: u32,
    count: u32,
    extra: &[(&'static str, String)],
) -> common::KillOnDrop {
    let mut v = vec![
        ("MEMLANE_TEST_ID", id.to_string()),
        ("MEMLANE_TEST_COUNT", count.to_string()),
    ];
    v.extend_from_slice(extra);
    spawn_role(ENTRY, "writer", &vars(dir, name, &v))
}

#[test]
fn values_cross_processes_whole_while_two_writers_race_two_readers() {
    let dir = TestDir::new("latest-race");
    let max = 600;
    let _slot = Latest::builder("race")
        .dir(&dir.path)
        .max_value(max)
        .max_writers(2)
        .create()
        .unwrap();
    let count = 20_000u32;
    let readers: Vec<_> = (0..2)
        .map(|_| {
            spawn_role(
                ENTRY,
                "reader",
                &vars(&dir, "race", &[("MEMLANE_TEST_COUNT", count.to_string())]),
            )
        })
        .collect();
    // Writer 1 first, then writer 0, whose last value ends the readers.
    let writers: Vec<_> = [1, 0]
        .into_iter()
        .map(|id| spawn_writer(&dir, "race", id, count, &[]))
        .collect();
    for w in writers {
        let out = expect_success(&w.wait(Duration::from_secs(120)), "writer");
        assert!(out.contains(&format!("RESULT wrote {count}")), "{out}");
    }
    let mut slot = open(&dir.path, "race");
    // Writer 1 may finish after writer 0: write writer 0's last value once
    // more, so that it is the newest and every reader ends.
    slot.set(&make_value(0, count, max)).unwrap();
    for r in readers {
        let out = expect_success(&r.wait(Duration::from_secs(120)), "reader");
        assert!(out.contains("RESULT reads"), "{out}");
    }
    let info = slot.info();
    assert_eq!(info.writes, 2 * u64::from(count) + 1);
    assert_eq!(info.version, info.writes);
    // The children's writer slots were freed when they exited; this
    // handle's is the only one.
    assert_eq!(info.writers.len(), 1);
    assert_eq!(info.writers[0].pid, std::process::id());
}

#[test]
fn a_sleeping_reader_is_woken_by_each_write_of_another_process() {
    let dir = TestDir::new("latest-wake");
    let mut slot = Latest::builder("wake")
        .dir(&dir.path)
        .max_value(64)
        .create()
        .unwrap();
    let mut child = spawn_role(
        ENTRY,
        "waiter",
        &vars(&dir, "wake", &[("MEMLANE_TEST_COUNT", "5".into())]),
    );
    common::wait_ready(&mut child);
    for n in 1..=5 {
        // Long enough for the waiter to be asleep in the futex.
        std::thread::sleep(Duration::from_millis(50));
        slot.set(&make_value(0, n, 64)).unwrap();
    }
    let out = expect_success(&child.wait(Duration::from_secs(60)), "waiter");
    assert!(out.contains("RESULT woken"), "{out}");
}

#[test]
fn a_writer_killed_mid_write_leaves_the_previous_value_and_its_slot_free() {
    let dir = TestDir::new("latest-kill");
    let max = 200;
    let mut slot = Latest::builder("kill")
        .dir(&dir.path)
        .max_value(max)
        .max_writers(1)
        .create()
        .unwrap();
    // The child dies (SIGKILL, or TerminateProcess) inside its 4th write,
    // after storing the value's bytes and before completing it.
    let child = spawn_writer(
        &dir,
        "kill",
        7,
        10,
        &[("MEMLANE_FAULT", "latest_mid_write:4".into())],
    );
    let out = child.wait(Duration::from_secs(60));
    assert!(!out.status.success(), "the writer should have been killed");
    let v = slot.get().unwrap().expect("a value");
    assert_eq!(v.version(), 3);
    assert_eq!(check_value(&v, max), (7, 3));
    let info = slot.info();
    assert_eq!(info.writes, 4);
    assert_eq!(info.writers.len(), 1);
    assert_eq!(info.writers[0].liveness, Liveness::Dead);
    // The only writer slot was the dead writer's: it is taken over.
    assert_eq!(slot.set(&make_value(8, 1, max)).unwrap(), 5);
    let v = slot.get().unwrap().unwrap();
    assert_eq!((v.version(), check_value(&v, max)), (5, (8, 1)));
    assert_eq!(slot.info().writers[0].liveness, Liveness::Alive);
}

#[cfg(unix)]
#[test]
fn a_writer_stopped_mid_write_holds_back_neither_readers_nor_writers() {
    let dir = TestDir::new("latest-stop");
    let max = 100;
    let mut slot = Latest::builder("stop")
        .dir(&dir.path)
        .max_value(max)
        .max_writers(2)
        .create()
        .unwrap();
    let child = spawn_writer(
        &dir,
        "stop",
        3,
        3,
        &[("MEMLANE_FAULT_STOP", "latest_mid_write:2".into())],
    );
    let pid = child.id();
    common::wait_for(Duration::from_secs(30), "the writer to stop", || {
        slot.info()
            .writers
            .iter()
            .any(|w| w.pid == pid && w.liveness == Liveness::Stalled)
    });
    let v = slot.get().unwrap().unwrap();
    assert_eq!((v.version(), check_value(&v, max)), (1, (3, 1)));
    // Another writer goes on at once; readers see its values.
    for n in 1..=5 {
        slot.set(&make_value(4, n, max)).unwrap();
        let v = slot.get().unwrap().unwrap();
        assert_eq!(check_value(&v, max), (4, n));
    }
    common::signal(pid, "-CONT");
    let out = expect_success(&child.wait(Duration::from_secs(60)), "writer");
    assert!(out.contains("RESULT wrote 3"), "{out}");
    // Its 2nd write (version 2) was overtaken by ours and is never read;
    // its 3rd (version 8) is the newest.
    let v = slot.get().unwrap().unwrap();
    assert_eq!((v.version(), check_value(&v, max)), (8, (3, 3)));
}

#[test]
fn writer_slots_are_limited_and_freed_on_drop() {
    let dir = TestDir::new("latest-slots");
    let mut a = Latest::builder("slots")
        .dir(&dir.path)
        .max_writers(1)
        .create()
        .unwrap();
    let mut b = open(&dir.path, "slots");
    a.set(b"a").unwrap();
    match b.set(b"b") {
        Err(SetError::NoWriterSlot {
            max_writers: 1,
            path,
        }) => {
            assert!(path.ends_with("memlane.slots"), "{path:?}")
        }
        other => panic!("expected NoWriterSlot, got {other:?}"),
    }
    // Reading never needs a slot.
    assert_eq!(b.get().unwrap().unwrap().bytes(), b"a");
    drop(a);
    assert_eq!(b.set(b"b").unwrap(), 2);
    assert_eq!(b.info().writers.len(), 1);
}

#[test]
fn bad_settings_and_sizes_are_refused_with_their_reason() {
    let dir = TestDir::new("latest-config");
    let b = || Latest::builder("cfg").dir(&dir.path);
    for (builder, word) in [
        (b().max_value(0), "max_value"),
        (b().max_value(memlane::MAX_VALUE + 1), "max_value"),
        (b().max_writers(0), "max_writers"),
        (b().max_writers(memlane::MAX_WRITERS + 1), "max_writers"),
    ] {
        match builder.create() {
            Err(CreateError::InvalidConfig { reason }) => {
                assert!(reason.contains(word), "{reason}")
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }
    let mut slot = b().max_value(8).create().unwrap();
    assert!(matches!(
        slot.set(&[0; 9]),
        Err(SetError::TooLarge { len: 9, max: 8 })
    ));
    assert_eq!(slot.set(&[]).unwrap(), 1);
    assert_eq!(slot.get().unwrap().unwrap().bytes(), b"");
    // Other kinds are told apart.
    let _event = memlane::Event::builder("ev")
        .dir(&dir.path)
        .create()
        .unwrap();
    assert!(matches!(
        Latest::open_options("ev").dir(&dir.path).open(),
        Err(OpenError::WrongKind { .. })
    ));
    assert!(matches!(
        Latest::open_options("missing").dir(&dir.path).open(),
        Err(OpenError::NotFound { .. })
    ));
    let listing = memlane::list(Some(&dir.path)).unwrap();
    let entry = listing.entries.iter().find(|e| e.name == "cfg").unwrap();
    assert_eq!(entry.kind, Ok(Kind::Latest));
}

/// Writes `bytes` at `offset` of the slot's file, as a process with write
/// access that does not follow the format could.
fn scribble(dir: &TestDir, name: &str, offset: u64, bytes: &[u8]) {
    let path = dir.path.join(format!("memlane.{name}"));
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::FileExt::write_all_at(&f, bytes, offset).unwrap();
    #[cfg(windows)]
    {
        let n = std::os::windows::fs::FileExt::seek_write(&f, bytes, offset).unwrap();
        assert_eq!(n, bytes.len());
    }
}

#[test]
fn a_hostile_writer_gets_readers_errors_never_hangs_or_panics() {
    let dir = TestDir::new("latest-hostile");
    let max = 64;
    let mut slot = Latest::builder("hostile")
        .dir(&dir.path)
        .max_value(max)
        .max_writers(1)
        .create()
        .unwrap();
    slot.set(b"good").unwrap();
    // current names buffer 4095 (there are 3).
    scribble(
        &dir,
        "hostile",
        CURRENT,
        &((1u64 << 12) | 4095).to_ne_bytes(),
    );
    match slot.get() {
        Err(GetError::Corrupt { reason, .. }) => {
            assert!(reason.contains("buffer 4095"), "{reason}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // current names buffer 1 at version 9; buffer 1 claims version 9 and
    // a length past max_value.
    let buf1 = SLOTS + 128 + (64 + 64);
    scribble(&dir, "hostile", CURRENT, &((9u64 << 12) | 1).to_ne_bytes());
    scribble(&dir, "hostile", buf1 + 8, &9u64.to_ne_bytes());
    scribble(&dir, "hostile", buf1 + 16, &u64::MAX.to_ne_bytes());
    match slot.get() {
        Err(GetError::Corrupt { reason, .. }) => assert!(reason.contains("bytes long"), "{reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // A buffer left odd for good: bounded retries, then Contended.
    scribble(&dir, "hostile", buf1 + 16, &4u64.to_ne_bytes());
    scribble(&dir, "hostile", buf1, &1u64.to_ne_bytes());
    let start = Instant::now();
    assert!(matches!(
        slot.get(),
        Err(GetError::Contended { attempts: 1024, .. })
    ));
    assert!(start.elapsed() < Duration::from_secs(10));
    // Fixed up by hand, it reads again; the next write goes on from it.
    scribble(&dir, "hostile", buf1, &2u64.to_ne_bytes());
    assert_eq!(slot.get().unwrap().unwrap().version(), 9);
    assert_eq!(slot.set(b"again").unwrap(), 2);
    // version 2 < 9: overtaken by the scribbled current, never read.
    assert_eq!(slot.get().unwrap().unwrap().version(), 9);
    // A geometry that does not fit the file is refused on open.
    scribble(&dir, "hostile", DATA + 24, &200u64.to_ne_bytes());
    match Latest::open_options("hostile").dir(&dir.path).open() {
        Err(OpenError::Corrupt { reason, .. }) => assert!(reason.contains("geometry"), "{reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// A page-file slot (Windows: a named mapping, no file) keeps its writers'
/// liveness locks on a side lock file: two writers, both seen alive, a
/// dropped one freed.
#[cfg(windows)]
#[test]
fn a_page_file_slot_works_like_a_file_one() {
    let dir = TestDir::new("latest-pagefile");
    let name = format!("pf-latest-{}", std::process::id());
    let mut a = Latest::builder(&name)
        .dir(&dir.path)
        .page_file(true)
        .max_writers(2)
        .create()
        .unwrap();
    let mut b = open(&dir.path, &name);
    a.set(b"from a").unwrap();
    b.set(b"from b").unwrap();
    assert_eq!(a.get().unwrap().unwrap().bytes(), b"from b");
    let info = a.info();
    assert_eq!(info.writers.len(), 2);
    assert!(info.writers.iter().all(|w| w.liveness == Liveness::Alive));
    drop(b);
    assert_eq!(a.info().writers.len(), 1);
    drop(a);
    let _ = memlane::gc(Some(&dir.path), false);
}

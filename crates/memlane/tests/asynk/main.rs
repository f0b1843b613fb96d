//! The async layer (feature `async`) with real processes: an async
//! subscriber woken by a publisher process, `send_async` on a full ring
//! resuming when a subscriber process drains it, `Latest::wait_async`
//! woken by a writer process, futures dropped mid-wait losing nothing and
//! claiming nothing, and a thousand idle async subscribers costing a few
//! threads and (near) no CPU time.

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{expect_success, spawn_role, wait_ready, TestDir, ROLE_ENV};
use memlane::{Channel, Latest, Subscriber};

const ENTRY: &str = "child_entry";

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

fn vars(dir: &Path, name: &str, count: u32) -> Vec<(&'static str, String)> {
    vec![
        ("MEMLANE_TEST_DIR", dir.display().to_string()),
        ("MEMLANE_TEST_NAME", name.to_string()),
        ("MEMLANE_TEST_COUNT", count.to_string()),
    ]
}

fn open(dir: &Path, name: &str) -> Channel {
    Channel::open_options(name).dir(dir).open().unwrap()
}

/// Message `n`: its number and a few bytes derived from it.
fn message(n: u32) -> Vec<u8> {
    let mut m = n.to_le_bytes().to_vec();
    m.extend((0..(n % 40)).map(|i| (n ^ i) as u8));
    m
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let dir = PathBuf::from(var("MEMLANE_TEST_DIR"));
    let name = var("MEMLANE_TEST_NAME");
    let count: u32 = var("MEMLANE_TEST_COUNT").parse().unwrap();
    match role.as_str() {
        // Sends messages 0..count, pausing now and then so that the
        // receiver goes to sleep between bursts.
        "publisher" => {
            let ch = open(&dir, &name);
            let mut publ = ch.publisher().unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_millis(100));
            for n in 0..count {
                publ.send(&message(n)).unwrap();
                if n % 97 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        // Joins, says READY, waits a while (the publisher fills the ring),
        // then receives 0..count in order.
        "subscriber" => {
            let ch = open(&dir, &name);
            let mut sub = ch.subscriber().unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_millis(300));
            for n in 0..count {
                let m = sub.recv_timeout(Duration::from_secs(60)).unwrap();
                assert_eq!(&*m, &message(n)[..]);
            }
        }
        // Sets values 1..=count, a millisecond apart.
        "latest-writer" => {
            let mut slot = Latest::open_options(&name).dir(&dir).open().unwrap();
            println!("READY");
            for n in 1..=count {
                std::thread::sleep(Duration::from_millis(1));
                slot.set(&n.to_le_bytes()).unwrap();
            }
        }
        // The async receiver of `async_subscriber_is_woken_by_a_publisher_process`,
        // in a child so that an environment variable can force the
        // reactor's fallback (no futex_waitv).
        "async-receiver" => {
            let ch = open(&dir, &name);
            let mut sub = ch.subscriber().unwrap();
            let mut publ = spawn_role(ENTRY, "publisher", &vars(&dir, &name, count));
            wait_ready(&mut publ);
            receive_all(&current_thread(), &mut sub, count);
            expect_success(&publ.wait(Duration::from_secs(120)), "publisher");
            let fallback = std::env::var_os("MEMLANE_ASYNC_FALLBACK").is_some();
            assert_eq!(memlane::reactor_threads(), (1, !fallback));
        }
        // Notifies the event `count` times, a millisecond apart.
        "event-notifier" => {
            let ev = memlane::Event::open_options(&name)
                .dir(&dir)
                .open()
                .unwrap();
            println!("READY");
            for _ in 0..count {
                std::thread::sleep(Duration::from_millis(1));
                ev.notify();
            }
        }
        "idle-thousand" => idle_thousand(&dir),
        "many-words" => many_words(&dir),
        other => panic!("unknown role {other}"),
    }
}

/// Receives 0..count with `recv_async` on `rt`, checking each message.
fn receive_all(rt: &tokio::runtime::Runtime, sub: &mut Subscriber, count: u32) {
    rt.block_on(async {
        for n in 0..count {
            let m = sub.recv_async().await.unwrap();
            assert_eq!(&*m, &message(n)[..], "message {n}");
        }
    });
}

fn channel(dir: &TestDir, name: &str, capacity: u64) -> Channel {
    Channel::builder(name)
        .capacity(capacity)
        .dir(&dir.path)
        .create()
        .unwrap()
}

#[test]
fn async_subscriber_is_woken_by_a_publisher_process() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    for (rt, tag) in [(current_thread(), "ct"), (multi_thread(), "mt")] {
        let dir = TestDir::new(&format!("async-woken-{tag}"));
        let name = format!("async-woken-{tag}");
        let ch = channel(&dir, &name, 1 << 16);
        let mut sub = ch.subscriber().unwrap();
        let count = 3000;
        let mut publ = spawn_role(ENTRY, "publisher", &vars(&dir.path, &name, count));
        wait_ready(&mut publ);
        receive_all(&rt, &mut sub, count);
        expect_success(&publ.wait(Duration::from_secs(120)), "publisher");
    }
}

/// The same, with the reactor's fallback for kernels without
/// `futex_waitv` (one word per thread, a 100 ms re-check), forced by the
/// fault-injection build; and with it, with `futex_waitv`, in a fresh
/// process that counts its reactor threads.
#[test]
fn async_subscriber_with_and_without_futex_waitv() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    for fallback in [false, true] {
        let dir = TestDir::new("async-fallback");
        let name = format!("async-fallback-{fallback}");
        let _ch = channel(&dir, &name, 1 << 16);
        let mut v = vars(&dir.path, &name, 2000);
        if fallback {
            v.push(("MEMLANE_ASYNC_FALLBACK", "1".to_string()));
        }
        let child = spawn_role(ENTRY, "async-receiver", &v);
        expect_success(&child.wait(Duration::from_secs(120)), "async receiver");
    }
}

#[test]
fn send_async_resumes_when_a_subscriber_process_drains_the_ring() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    for (rt, tag) in [(current_thread(), "ct"), (multi_thread(), "mt")] {
        let dir = TestDir::new(&format!("async-full-{tag}"));
        let name = format!("async-full-{tag}");
        let ch = channel(&dir, &name, 4096);
        let count = 2000; // ~100 KiB through a 4 KiB ring
        let mut sub = spawn_role(ENTRY, "subscriber", &vars(&dir.path, &name, count));
        wait_ready(&mut sub);
        let mut publ = ch.publisher().unwrap();
        rt.block_on(async {
            for n in 0..count {
                publ.send_async(&message(n)).await.unwrap();
            }
        });
        expect_success(&sub.wait(Duration::from_secs(120)), "subscriber");
    }
}

#[test]
fn latest_wait_async_is_woken_by_a_writer_process() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    let dir = TestDir::new("async-latest");
    let name = "async-latest";
    let mut slot = Latest::builder(name).dir(&dir.path).create().unwrap();
    let count = 200;
    let mut writer = spawn_role(ENTRY, "latest-writer", &vars(&dir.path, name, count));
    wait_ready(&mut writer);
    let rt = multi_thread();
    let last = rt.block_on(async {
        let mut last = 0u32;
        while last < count {
            slot.wait_async().await;
            let v = slot.get().unwrap().expect("a value");
            let n = u32::from_le_bytes(v.bytes().try_into().unwrap());
            assert!(n > last, "went back from {last} to {n}");
            last = n;
        }
        last
    });
    assert_eq!(last, count);
    expect_success(&writer.wait(Duration::from_secs(60)), "writer");
    drop(slot);
    memlane::remove(Some(&dir.path), name).unwrap();
}

/// `Event::wait_async` ("data ready" without a thread) is woken by
/// another process's notifications; futures dropped mid-wait (timed out)
/// take no notification: once the notifier is done, one more wait returns
/// at once if the last notification was not yet seen, and the next one
/// times out.
#[test]
fn event_wait_async_is_woken_by_a_notifier_process() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    let dir = TestDir::new("async-event");
    let name = "async-event";
    let mut ev = memlane::Event::builder(name)
        .dir(&dir.path)
        .create()
        .unwrap();
    let count = 300;
    let mut notifier = spawn_role(ENTRY, "event-notifier", &vars(&dir.path, name, count));
    wait_ready(&mut notifier);
    let rt = current_thread();
    let (woken, timed_out) = rt.block_on(async {
        let (mut woken, mut timed_out) = (0u32, 0u32);
        while ev.count() < count {
            match tokio::time::timeout(Duration::from_micros(700), ev.wait_async()).await {
                Ok(()) => woken += 1,
                Err(_) => timed_out += 1,
            }
        }
        (woken, timed_out)
    });
    expect_success(&notifier.wait(Duration::from_secs(60)), "notifier");
    assert!(woken > 0, "never woken ({timed_out} time-outs)");
    // Whatever the loop left unseen is taken by one wait, then none is left.
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_millis(50), ev.wait_async()).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), ev.wait_async())
                .await
                .is_err(),
            "a notification seen twice"
        );
    });
    assert_eq!(ev.count(), count);
    drop(ev);
    memlane::remove(Some(&dir.path), name).unwrap();
}

/// Receives with futures that time out (are dropped) mid-wait again and
/// again while a publisher process sends: every message arrives, once, in
/// order.
#[test]
fn dropped_recv_futures_lose_no_message() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    let dir = TestDir::new("async-cancel-recv");
    let name = "async-cancel-recv";
    let ch = channel(&dir, name, 1 << 16);
    let mut sub = ch.subscriber().unwrap();
    let count = 3000;
    let mut publ = spawn_role(ENTRY, "publisher", &vars(&dir.path, name, count));
    wait_ready(&mut publ);
    let rt = current_thread();
    let dropped = rt.block_on(async {
        let mut n = 0;
        let mut dropped = 0u32;
        let mut wait_us = 1u64;
        while n < count {
            let timeout = Duration::from_micros(wait_us);
            wait_us = wait_us * 7 % 2003 + 1;
            match tokio::time::timeout(timeout, sub.recv_async()).await {
                Ok(m) => {
                    assert_eq!(&*m.unwrap(), &message(n)[..], "message {n}");
                    n += 1;
                }
                Err(_) => dropped += 1,
            }
        }
        dropped
    });
    assert!(dropped > 0, "no future was dropped mid-wait");
    expect_success(&publ.wait(Duration::from_secs(120)), "publisher");
    assert!(sub.try_recv().is_err(), "a message more than was sent");
}

/// Sends on a full ring with futures that time out: the messages whose
/// future returned `Ok` are received, in order, and nothing else is (no
/// half-sent message, no claim left behind that would block the ring).
#[test]
fn dropped_send_futures_claim_nothing() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    let dir = TestDir::new("async-cancel-send");
    let name = "async-cancel-send";
    let ch = channel(&dir, name, 4096);
    let mut sub = ch.subscriber().unwrap();
    let mut publ = ch.publisher().unwrap();
    let rt = current_thread();
    let mut sent = Vec::new();
    let mut n = 0;
    for round in 0..5 {
        let timed_out = rt.block_on(async {
            let mut timed_out = 0;
            for _ in 0..200 {
                let m = message(n);
                match tokio::time::timeout(Duration::from_millis(1), publ.send_async(&m)).await {
                    Ok(r) => {
                        r.unwrap();
                        sent.push(n);
                    }
                    Err(_) => timed_out += 1,
                }
                n += 1;
            }
            timed_out
        });
        assert!(timed_out > 0, "round {round}: the ring never filled");
        // Drain: exactly what was sent, in order.
        while let Ok(m) = sub.try_recv() {
            let want = sent.remove(0);
            assert_eq!(&*m, &message(want)[..]);
        }
        assert!(
            sent.is_empty(),
            "messages sent but never received: {sent:?}"
        );
    }
    // The ring is free again: a send succeeds at once.
    publ.try_send(b"after").unwrap();
    assert_eq!(&*sub.try_recv().unwrap(), b"after");
}

/// The stream of messages, ended by the publisher's departure.
#[test]
fn stream_yields_every_message_and_ends_when_publishers_leave() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    use std::future::poll_fn;
    use std::pin::Pin;

    use futures_core::Stream;

    let dir = TestDir::new("async-stream");
    let name = "async-stream";
    let ch = channel(&dir, name, 1 << 16);
    let mut sub = ch.subscriber().unwrap();
    sub.set_disconnect_grace(Some(Duration::from_millis(50)));
    let count = 500;
    let mut publ = spawn_role(ENTRY, "publisher", &vars(&dir.path, name, count));
    wait_ready(&mut publ);
    let rt = current_thread();
    let got = rt.block_on(async {
        let mut stream = sub.stream();
        let mut got = 0;
        while let Some(m) = poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
            assert_eq!(m.unwrap(), message(got));
            got += 1;
        }
        got
    });
    assert_eq!(got, count);
    expect_success(&publ.wait(Duration::from_secs(60)), "publisher");
}

/// 1,000 async subscribers over 100 channels in one process: a few
/// threads, and (near) no CPU time while nothing is sent; then one message
/// per channel wakes all of them. Runs in a child process of its own, so
/// that only its own threads are counted.
#[test]
fn thousand_idle_async_subscribers_use_few_threads_and_no_cpu() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    let dir = TestDir::new("async-idle");
    let child = spawn_role(ENTRY, "idle-thousand", &vars(&dir.path, "unused", 0));
    let out = child.wait(Duration::from_secs(300));
    print!("{}", expect_success(&out, "idle-thousand"));
}

fn idle_thousand(dir: &Path) {
    const CHANNELS: usize = 100;
    const PER_CHANNEL: usize = 10;
    let threads_before = threads();
    let rt = current_thread();
    let channels: Vec<Channel> = (0..CHANNELS)
        .map(|i| {
            Channel::builder(&format!("idle-{i}"))
                .capacity(4096)
                .max_subscribers(PER_CHANNEL as u32)
                .dir(dir)
                .create()
                .unwrap()
        })
        .collect();
    let mut publishers: Vec<_> = channels.iter().map(|c| c.publisher().unwrap()).collect();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for ch in &channels {
        for _ in 0..PER_CHANNEL {
            let mut sub = ch.subscriber().unwrap();
            let done = done_tx.clone();
            rt.spawn(async move {
                let m = sub.recv_async().await.unwrap();
                done.send(m.to_vec()).unwrap();
            });
        }
    }
    // Let every task register and go idle.
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(500)).await });
    let (reactors, multi) = memlane::reactor_threads();
    let threads_idle = threads();
    println!("threads: {threads_before} before, {threads_idle} with 1000 waiting tasks; reactor threads {reactors} (multi-word wait: {multi})");
    assert!(
        threads_idle <= threads_before + 2,
        "{threads_idle} threads (from {threads_before})"
    );
    #[cfg(target_os = "linux")]
    {
        let idle = Duration::from_secs(3);
        let cpu0 = cpu_time();
        rt.block_on(async { tokio::time::sleep(idle).await });
        let used = cpu_time() - cpu0;
        let share = used.as_secs_f64() / idle.as_secs_f64();
        println!(
            "CPU time while idle: {used:?} over {idle:?} ({:.3}% of a core)",
            share * 100.0
        );
        assert!(
            share < 0.02,
            "idle tasks used {used:?} of CPU time in {idle:?}"
        );
    }
    for (i, p) in publishers.iter_mut().enumerate() {
        p.send(format!("to {i}").as_bytes()).unwrap();
    }
    let mut got = vec![0; CHANNELS];
    rt.block_on(async {
        for _ in 0..CHANNELS * PER_CHANNEL {
            let m = tokio::time::timeout(Duration::from_secs(60), done_rx.recv())
                .await
                .expect("a task was not woken")
                .unwrap();
            let i: usize = std::str::from_utf8(&m[3..]).unwrap().parse().unwrap();
            got[i] += 1;
        }
    });
    assert!(got.iter().all(|&n| n == PER_CHANNEL), "{got:?}");
}

/// This process's threads.
fn threads() -> usize {
    #[cfg(target_os = "linux")]
    return std::fs::read_dir("/proc/self/task").unwrap().count();
    #[cfg(not(target_os = "linux"))]
    return 0;
}

/// CPU time this process's threads have run (the first field of each
/// thread's schedstat, in nanoseconds: finer than the tick counts of
/// /proc/self/stat).
#[cfg(target_os = "linux")]
fn cpu_time() -> Duration {
    let mut ns = 0u64;
    for t in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = t.unwrap().path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(path) {
            ns += s.split_whitespace().next().unwrap().parse::<u64>().unwrap();
        }
    }
    Duration::from_nanos(ns)
}

/// More distinct words than one reactor thread sleeps on (127 with
/// futex_waitv, 63 on Windows): 300 channels, one waiting task each, need
/// 3 (or 5) reactor threads, and every task is woken.
#[test]
fn many_channels_spread_over_reactor_threads() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    let dir = TestDir::new("async-many");
    let child = spawn_role(ENTRY, "many-words", &vars(&dir.path, "unused", 0));
    print!(
        "{}",
        expect_success(&child.wait(Duration::from_secs(300)), "many-words")
    );
}

fn many_words(dir: &Path) {
    const CHANNELS: usize = 300;
    let rt = multi_thread();
    let channels: Vec<Channel> = (0..CHANNELS)
        .map(|i| {
            Channel::builder(&format!("many-{i}"))
                .capacity(4096)
                .dir(dir)
                .create()
                .unwrap()
        })
        .collect();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for ch in &channels {
        let mut sub = ch.subscriber().unwrap();
        let done = done_tx.clone();
        rt.spawn(async move {
            let m = sub.recv_async().await.unwrap();
            done.send(m.to_vec()).unwrap();
        });
    }
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(500)).await });
    let (reactors, multi) = memlane::reactor_threads();
    let per_thread = if cfg!(windows) { 63 } else { 127 };
    println!("{CHANNELS} channels: {reactors} reactor threads (multi-word wait: {multi})");
    assert!(multi);
    assert_eq!(reactors, CHANNELS.div_ceil(per_thread));
    for (i, ch) in channels.iter().enumerate() {
        ch.publisher()
            .unwrap()
            .send(format!("{i}").as_bytes())
            .unwrap();
    }
    let mut got = vec![false; CHANNELS];
    rt.block_on(async {
        for _ in 0..CHANNELS {
            let m = tokio::time::timeout(Duration::from_secs(60), done_rx.recv())
                .await
                .expect("a task was not woken")
                .unwrap();
            let i: usize = std::str::from_utf8(&m).unwrap().parse().unwrap();
            got[i] = true;
        }
    });
    assert!(got.iter().all(|&g| g));
}

/// A lossy subscriber's `recv_async`: lapped by a publisher process while
/// it did not read, it gets `Lagged` once (with the exact loss: the
/// publisher is gone, so the count stands still), then the messages still
/// in the ring, whole and in order up to the last, then `Disconnected`.
#[test]
fn a_lossy_async_subscriber_reports_the_lap_then_goes_on() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    let dir = TestDir::new("async-lossy");
    let name = "async-lossy";
    let ch = channel(&dir, name, 4096);
    let mut sub = ch.lossy_subscriber().unwrap();
    sub.set_disconnect_grace(Some(Duration::from_millis(50)));
    let count = 3000;
    let mut publ = spawn_role(ENTRY, "publisher", &vars(&dir.path, name, count));
    wait_ready(&mut publ);
    expect_success(&publ.wait(Duration::from_secs(120)), "publisher");
    let (lost, received, last) = current_thread().block_on(async {
        let lost = match sub.recv_async().await {
            Err(memlane::RecvError::Lagged(lag)) => lag.messages(),
            Ok(m) => panic!("a message ({} bytes) before the lap", m.len()),
            Err(e) => panic!("{e}"),
        };
        let (mut received, mut last) = (0u64, None::<u32>);
        loop {
            match sub.recv_async().await {
                Ok(m) => {
                    let n = u32::from_le_bytes(m[..4].try_into().unwrap());
                    assert_eq!(&*m, &message(n)[..], "message {n}");
                    assert!(last.is_none_or(|l| n == l + 1), "{n} after {last:?}");
                    last = Some(n);
                    received += 1;
                }
                Err(memlane::RecvError::Disconnected) => break (lost, received, last),
                Err(e) => panic!("{e}"),
            }
        }
    });
    assert_eq!(last, Some(count - 1));
    assert!(lost > 0 && received > 0);
    assert_eq!(
        lost + received,
        u64::from(count),
        "lost {lost}, received {received}"
    );
}

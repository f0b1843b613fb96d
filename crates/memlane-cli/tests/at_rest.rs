//! At rest, a waiting endpoint uses (almost) no CPU: a `memlane listen`
//! blocked in `recv` with nothing arriving, and a `memlane send` blocked on
//! a full ring (its only subscriber stopped), each measured by the CPU time
//! the kernel accounts to its process over a window (Linux:
//! `/proc/PID/schedstat`, nanoseconds). Both then go on: the stopped
//! listener, resumed, receives every message the sender had waiting.
//!
//! The window is 2 s (`MEMLANE_AT_REST_SECS` sets another, e.g. 10 for the
//! figure in docs/benchmarks/README.md; run with `--nocapture` to see the
//! figures and the CPU model). The bound asserted is a resource bound, not a
//! speed: 5 % of the window, where a waiter that polled instead of sleeping
//! would use close to 100 %.
#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::{listen, memlane, run, signal, start, TempDir};

/// CPU time of process `pid` so far (on-CPU nanoseconds).
fn cpu_ns(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .expect("read /proc/PID/schedstat");
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("schedstat's first field is the time on CPU in ns")
}

fn window() -> Duration {
    let secs = std::env::var("MEMLANE_AT_REST_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

/// The byte lag of the channel's first subscriber (`memlane info --json`).
fn lag(d: &TempDir) -> u64 {
    let info = run(d, &["info", "rest", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&info.stdout).expect("info --json");
    v["subscribers"][0]["lag"]
        .as_u64()
        .unwrap_or_else(|| panic!("no subscriber lag in {}", info.stdout))
}

/// The share of one core `pid` used over the window.
fn share_over_window(pid: u32, window: Duration) -> f64 {
    let before = cpu_ns(pid);
    std::thread::sleep(window);
    let used = cpu_ns(pid) - before;
    used as f64 / window.as_nanos() as f64
}

#[test]
fn a_blocked_receiver_and_a_blocked_sender_use_almost_no_cpu() {
    let d = TempDir::new("rest");
    run(&d, &["create", "rest", "--capacity", "4KiB"]).ok();
    let w = window();

    // A subscriber blocked in recv, nothing sent.
    let listener = listen(&d, "rest", &[]);
    let pid = listener.child.id();
    // Past its spin (a few thousand polls) and asleep.
    std::thread::sleep(Duration::from_millis(200));
    let receiver = share_over_window(pid, w);

    // A publisher blocked on a full ring: its only subscriber is stopped.
    signal(pid, "-STOP");
    let lines: Vec<String> = (0..200)
        .map(|i| format!("{i:04}-{}", "x".repeat(95)))
        .collect();
    let input = lines.join("\n") + "\n";
    let sender = start(memlane(&d, &["send", "rest"]), Some(input.as_bytes()));
    // 200 messages of 100 bytes do not fit 4 KiB: wait until the ring is
    // full (the sender is then blocked), then past its spin.
    let deadline = std::time::Instant::now() + common::WATCHDOG;
    while lag(&d) < 4096 - 2 * 128 {
        assert!(
            std::time::Instant::now() < deadline,
            "the ring never filled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let publisher = share_over_window(sender.child.id(), w);

    // Both go on: every message arrives, in order.
    signal(pid, "-CONT");
    let sent = sender.finish().ok();
    assert_eq!(sent.stderr, "");
    // The listener has everything once the sender is done; stop it.
    let want: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let deadline = std::time::Instant::now() + common::WATCHDOG;
    while lag(&d) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the listener never caught up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(listener.child.id(), "-TERM");
    let out = listener.finish();
    assert_eq!(out.stdout, want, "the listener's messages");

    println!(
        "at rest over {:.1} s on {}: a receiver blocked in recv used {:.3} % of a core, \
         a sender blocked on a full ring {:.3} %",
        w.as_secs_f64(),
        memlane_benchkit::cpu_model().unwrap_or_else(|| "unknown CPU".into()),
        receiver * 100.0,
        publisher * 100.0
    );
    assert!(
        receiver < 0.05,
        "a blocked receiver used {:.1} % of a core",
        receiver * 100.0
    );
    assert!(
        publisher < 0.05,
        "a blocked sender used {:.1} % of a core",
        publisher * 100.0
    );
}

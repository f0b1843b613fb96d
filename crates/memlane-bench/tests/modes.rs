//! The `--contention` and `--setup` modes of `memlane-compare`, run for
//! real with a handful of messages and repetitions: every row is there,
//! every message arrived exactly once (the binary checks each subscriber's
//! sequence and the counts, and fails otherwise), and nothing is left in
//! `/dev/shm`. Timings are printed, never asserted.

use std::process::Command;

fn leftovers(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `memlane-compare ARGS` to a successful end: its pid and standard
/// output.
fn run_compare(args: &[&str]) -> (u32, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_memlane-compare"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (pid, stdout)
}

#[test]
fn contention_rows_deliver_every_message_once() {
    let (pid, stdout) = run_compare(&["--contention", "--messages", "40"]);
    assert!(stdout.starts_with("CPU: "), "{stdout}");
    for topology in ["1 → 1", "2 → 1", "4 → 1", "1 → 2", "1 → 4"] {
        for transport in ["memlane-poll", "memlane-block", "iox2-poll"] {
            let row = format!("| {topology} | {transport} |");
            let n = stdout.lines().filter(|l| l.starts_with(&row)).count();
            let want = if topology == "1 → 1" { 2 } else { 1 };
            assert_eq!(n, want, "rows {row:?} in\n{stdout}");
        }
    }
    for line in stdout
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("memlane-"))
    {
        assert!(line.ends_with("| 0 |"), "memlane lost messages: {line}");
        // A paced latency in every row.
        assert!(line.contains(" µs |"), "{line}");
    }
    let left = leftovers("mlb_c")
        .into_iter()
        .filter(|n| n.contains(&format!("-{pid}_")))
        .collect::<Vec<_>>();
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
}

#[test]
fn setup_reports_every_step_and_the_memory() {
    let (pid, stdout) = run_compare(&["--setup", "--reps", "3"]);
    for step in [
        "| create (defaults) |",
        "| open |",
        "| join as publisher |",
        "| join as subscriber |",
        "| leave (publisher) |",
        "| remove |",
        "| node create |",
        "| drop services (removes them) |",
    ] {
        assert!(
            stdout.lines().any(|l| l.contains(step)),
            "no {step} in\n{stdout}"
        );
    }
    let mem = stdout
        .lines()
        .find(|l| l.starts_with("| memlane (1 MiB ring"))
        .unwrap_or_else(|| panic!("no memory row in\n{stdout}"));
    // One file of at least the ring's size.
    assert!(mem.contains("| 1 | 10"), "{mem}");
    assert!(leftovers(&format!("mlb_s{pid}_")).is_empty());
}

/// `--paired`: both transports between one pair of processes, in turns of
/// 10 round trips (200 in all: 10 pairs of turns); each side's figures and
/// the ratio line are printed; a bad pair is refused with a reason.
#[test]
fn paired_alternates_two_transports_between_one_pair_of_processes() {
    let (_, stdout) = run_compare(&["--paired", "floor-spin", "memlane-spin", "8", "200", "10"]);
    assert!(stdout.contains("floor-spin latency 8 B x100:"), "{stdout}");
    assert!(
        stdout.contains("memlane-spin latency 8 B x100:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("memlane-spin / floor-spin: median ")
            && stdout.contains("over 10 pairs of 10-round-trip blocks"),
        "{stdout}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_memlane-compare"))
        .args(["--paired", "floor-spin", "pipe", "8", "200", "10"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("a paired job compares two of the floors and memlane's modes"),
        "{stderr}"
    );
}

/// `--paired-throughput`: blocks of 100 messages one way, in turns (2,000
/// in all: 10 pairs of blocks, after 1,000 on each to warm up); each side's
/// figures cover its half; transports that hold one message at a time are
/// refused with the reason.
#[test]
fn paired_throughput_alternates_blocks_of_messages() {
    let (_, stdout) = run_compare(&[
        "--paired-throughput",
        "floor-ring",
        "memlane-block",
        "64",
        "2000",
        "100",
    ]);
    assert!(
        stdout.contains("floor-ring throughput 64 B x1000:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("memlane-block throughput 64 B x1000:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("memlane-block / floor-ring (messages/s): median ")
            && stdout.contains("over 10 pairs of 100-message blocks"),
        "{stdout}"
    );
    for bad in ["floor-spin", "memlane-lossy"] {
        let out = Command::new(env!("CARGO_BIN_EXE_memlane-compare"))
            .args([
                "--paired-throughput",
                bad,
                "memlane-spin",
                "64",
                "2000",
                "100",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("{bad} does not queue messages")),
            "{stderr}"
        );
    }
}

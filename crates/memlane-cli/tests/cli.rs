//! End-to-end tests of the `memlane` binary: each test runs it in its own
//! temporary segment directory (removed at the end, pass or fail), with a
//! watchdog so that no test can hang (the harness is in `common/`).

mod common;

use std::process::Command;

use common::{listen, run, run_with_stdin, start, TempDir};

#[test]
fn create_send_listen_info_list_rm() {
    let dir = TempDir::new("flow");
    let out = run(&dir, &["create", "chat", "--capacity", "64KiB"]).ok();
    assert!(out.stdout.contains("chat"), "{out:#?}");
    assert!(out.stdout.contains("65536"), "{out:#?}");
    assert!(out
        .stdout
        .contains(&dir.path().join("memlane.chat").display().to_string()));

    let listener = listen(&dir, "chat", &["--count", "6"]);
    run(&dir, &["send", "chat", "hello", "tab\there", "esc\x1b[0m"]).ok();
    run_with_stdin(&dir, &["send", "chat"], b"line one\n\nlast\r\n").ok();
    let heard = listener.finish().ok();
    let lines: Vec<&str> = heard.stdout.lines().collect();
    assert_eq!(
        lines,
        ["hello", "tab\\there", "esc\\x1b[0m", "line one", "", "last"]
    );

    let info = run(&dir, &["info", "chat"]).ok();
    assert!(info.stdout.contains("messages sent:  6"), "{info:#?}");
    assert!(info.stdout.contains("lossless"), "{info:#?}");
    let json = run(&dir, &["info", "chat", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("info --json is JSON");
    assert_eq!(v["name"], "chat");
    assert_eq!(v["messages_sent"], 6);
    assert_eq!(v["capacity"], 65536);
    assert_eq!(v["subscribers"].as_array().map(Vec::len), Some(0));

    let list = run(&dir, &["list"]).ok();
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with("chat ") && l.contains("channel")),
        "{list:#?}"
    );
    let json = run(&dir, &["list", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("list --json is JSON");
    let entries = v["entries"].as_array().expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e["name"] == "chat" && e["kind"] == "channel"),
        "{v}"
    );

    run(&dir, &["rm", "chat"]).ok();
    let list = run(&dir, &["list"]).ok();
    assert!(!list.stdout.contains("chat"), "{list:#?}");
    assert!(list.stdout.contains("no memlane entries"), "{list:#?}");
    assert!(dir.files().is_empty(), "{:?}", dir.files());
}

/// `--no-membarrier` makes a channel that orders its wake-ups with
/// fences; `create` and `info` say which kind a channel uses, and messages
/// flow through both kinds.
#[test]
fn create_with_and_without_membarrier() {
    let dir = TempDir::new("barriers");
    let out = run(&dir, &["create", "fenced", "--no-membarrier"]).ok();
    assert!(out.stdout.contains("barriers:     fences"), "{out:#?}");
    run(&dir, &["create", "default"]).ok();
    let json = run(&dir, &["info", "fenced", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(v["membarrier"], false);
    let json = run(&dir, &["info", "default", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    // Linux has membarrier (4.16+); Windows never uses it.
    assert_eq!(v["membarrier"], cfg!(target_os = "linux"), "{v}");
    let text = run(&dir, &["info", "default"]).ok();
    let expect = if cfg!(target_os = "linux") {
        "barriers:       membarrier"
    } else {
        "barriers:       fences"
    };
    assert!(text.stdout.contains(expect), "{text:#?}");
    for name in ["fenced", "default"] {
        let listener = listen(&dir, name, &["--count", "2"]);
        run(&dir, &["send", name, "one", "two"]).ok();
        let heard = listener.finish().ok();
        assert_eq!(heard.stdout.lines().collect::<Vec<_>>(), ["one", "two"]);
        run(&dir, &["rm", name]).ok();
    }
}

#[test]
fn listen_formats() {
    let dir = TempDir::new("formats");
    run(&dir, &["create", "fmt"]).ok();
    let json = listen(&dir, "fmt", &["--count", "2", "--format", "json"]);
    let hex = listen(&dir, "fmt", &["--count", "2", "--format", "hex"]);
    run_with_stdin(&dir, &["send", "fmt"], b"hi \"you\"\n\xff\x00\n").ok();
    let json = json.finish().ok();
    let lines: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2, "{json:#?}");
    assert_eq!(
        lines[0],
        serde_json::json!({"seq": 0, "len": 8, "text": "hi \"you\""})
    );
    assert_eq!(
        lines[1],
        serde_json::json!({"seq": 1, "len": 2, "hex": "ff00"})
    );
    let hex = hex.finish().ok();
    assert_eq!(hex.stdout, "68692022796f7522\nff00\n");
}

#[test]
fn listen_timeout_with_nothing_sent_exits_0() {
    let dir = TempDir::new("timeout");
    run(&dir, &["create", "quiet"]).ok();
    let out = run(&dir, &["listen", "quiet", "--timeout", "200ms"]).ok();
    assert_eq!(out.stdout, "");
}

/// `listen --until-disconnected` prints everything its publishers sent
/// and exits 0 once they have left (here: one `send` process).
#[test]
fn listen_until_disconnected_exits_when_the_publishers_leave() {
    let dir = TempDir::new("disconnect");
    run(&dir, &["create", "bye"]).ok();
    let listener = listen(&dir, "bye", &["--until-disconnected"]);
    run(&dir, &["send", "bye", "one", "two"]).ok();
    let heard = listener.finish().ok();
    assert_eq!(heard.stdout.lines().collect::<Vec<_>>(), ["one", "two"]);
}

#[test]
fn missing_name() {
    let dir = TempDir::new("missing");
    for cmd in ["info", "send", "listen", "rm"] {
        let mut args = vec![cmd, "no-such-channel"];
        if cmd == "send" {
            args.push("x");
        }
        let out = run(&dir, &args).fails(1);
        assert!(out.stderr.contains("no-such-channel"), "{out:#?}");
        assert!(out.stderr.contains("memlane list"), "{out:#?}");
    }
}

#[test]
fn file_that_is_not_a_segment() {
    let dir = TempDir::new("junk");
    std::fs::write(dir.path().join("memlane.junk"), vec![b'j'; 4096]).unwrap();
    for cmd in ["info", "listen"] {
        let out = run(&dir, &[cmd, "junk"]).fails(1);
        assert!(out.stderr.contains("not a memlane segment"), "{out:#?}");
    }
    let list = run(&dir, &["list"]).ok();
    assert!(
        list.stdout.contains("junk") && list.stdout.contains("invalid"),
        "{list:#?}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("memlane.junk")).unwrap(),
        vec![b'j'; 4096]
    );
}

#[test]
fn name_with_a_slash() {
    let dir = TempDir::new("slash");
    for cmd in ["create", "info", "rm"] {
        let out = run(&dir, &[cmd, "a/b"]).fails(2);
        assert!(out.stderr.contains("'/' is not allowed"), "{out:#?}");
        assert!(out.stderr.contains("letters, digits"), "{out:#?}");
    }
    assert!(dir.files().is_empty());
}

#[test]
fn message_over_the_maximum() {
    let dir = TempDir::new("toolarge");
    run(
        &dir,
        &[
            "create",
            "small",
            "--capacity",
            "4KiB",
            "--max-message",
            "100",
        ],
    )
    .ok();
    let big = "x".repeat(101);
    let out = run(&dir, &["send", "small", "ok", &big]).fails(1);
    assert!(
        out.stderr.contains("101") && out.stderr.contains("100"),
        "{out:#?}"
    );
    let out = run_with_stdin(&dir, &["send", "small"], format!("{big}\n").as_bytes()).fails(1);
    assert!(
        out.stderr.contains("101") && out.stderr.contains("100"),
        "{out:#?}"
    );
    // Nothing was sent: the size check comes first.
    let json = run(&dir, &["info", "small", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["messages_sent"], 0);
}

#[test]
fn bad_sizes() {
    let dir = TempDir::new("sizes");
    let out = run(&dir, &["create", "zero", "--capacity", "0"]);
    let code = out.code();
    assert!(matches!(code, 1 | 2), "{out:#?}");
    let out = out.fails(code);
    assert!(out.stderr.contains("capacity"), "{out:#?}");
    let out = run(&dir, &["create", "bad", "--capacity", "12XB"]).fails(2);
    assert!(out.stderr.contains("unknown unit"), "{out:#?}");
    for bad in ["-1", "", "99999999999999999999", "1.5MiB"] {
        let arg = format!("--capacity={bad}");
        let out = run(&dir, &["create", "bad", &arg]).fails(2);
        assert!(out.stderr.contains("--capacity"), "{out:#?}");
    }
    let out = run(&dir, &["listen", "x", "--timeout", "5"]).fails(2);
    assert!(out.stderr.contains("unit"), "{out:#?}");
    assert!(dir.files().is_empty(), "{:?}", dir.files());
}

#[test]
fn create_twice_and_rm_twice() {
    let dir = TempDir::new("twice");
    run(&dir, &["create", "once"]).ok();
    let out = run(&dir, &["create", "once"]).fails(1);
    assert!(out.stderr.contains("already exists"), "{out:#?}");
    run(&dir, &["rm", "once"]).ok();
    run(&dir, &["rm", "once"]).fails(1);
}

#[test]
fn file_backed_channel() {
    let dir = TempDir::new("file");
    let file = dir.path().join("backing.bin");
    let file = file.to_str().unwrap();
    run(
        &dir,
        &["create", "filed", "--capacity", "4KiB", "--file", file],
    )
    .ok();
    run(
        &dir,
        &["create", "filed2", "--capacity", "4KiB", "--file", file],
    )
    .fails(1);
    let listener = listen(&dir, "filed", &["--count", "1"]);
    run(&dir, &["send", "filed", "on disk"]).ok();
    assert_eq!(listener.finish().ok().stdout, "on disk\n");
    let list = run(&dir, &["list"]).ok();
    assert!(list.stdout.contains("filed"), "{list:#?}");
    run(&dir, &["rm", "filed"]).ok();
}

#[test]
fn demo_runs_end_to_end_and_cleans_up() {
    let dir = TempDir::new("demo");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_memlane"));
    cmd.env("MEMLANE_DIR", dir.path())
        .env_remove("RUST_BACKTRACE")
        .args(["demo", "--messages", "3", "--round-trips", "200"]);
    let out = start(cmd, None).finish().ok();
    for expected in [
        "client received: hello #1",
        "client received: hello #3",
        "p50",
        "p99",
        "one-way",
    ] {
        assert!(
            out.stdout.contains(expected),
            "{expected:?} missing: {out:#?}"
        );
    }
    assert!(dir.files().is_empty(), "left behind: {:?}", dir.files());
}

/// `memlane bench --quick --json` with tiny counts and two rounds: the
/// JSON has the documented shape, one row per measurement whose ratio is
/// one of its rounds' (timing values are never asserted), and the private
/// directory of the run is gone afterwards.
#[test]
fn bench_quick_json_shape_and_cleanup() {
    let dir = TempDir::new("bench");
    let out = run(
        &dir,
        &[
            "bench",
            "--quick",
            "--json",
            "--round-trips",
            "50",
            "--messages",
            "200",
            "--rounds",
            "2",
        ],
    )
    .ok();
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:#?}"));
    assert!(v["machine"]["cpus"].as_u64().is_some_and(|n| n >= 1), "{v}");
    assert!(v["machine"]["kernel"].is_string(), "{v}");
    assert!(v["pinned"].is_boolean() && v["quick"] == true, "{v}");
    assert_eq!(v["rounds"], 2, "{v}");
    let latency = v["latency"].as_array().expect("latency is an array");
    let throughput = v["throughput"].as_array().expect("throughput is an array");
    for row in latency {
        for key in ["p50_ns", "p99_ns", "p999_ns", "max_ns"] {
            assert!(row[key].is_number(), "{key} in {row}");
        }
        assert!(
            row["transport"].is_string() && row["floor"].is_string(),
            "{row}"
        );
        assert!(row["size"].is_u64() && row["round_trips"].is_u64(), "{row}");
        assert!(row["ratio_to_floor"].is_number(), "{row}");
        rounds_agree(row, 2);
    }
    for row in throughput {
        for key in ["msgs_per_s", "bytes_per_s", "seconds"] {
            assert!(row[key].is_number(), "{key} in {row}");
        }
        assert!(row["ratio_to_floor"].is_number(), "{row}");
        // memcpy, one process, is measured once.
        rounds_agree(row, if row["transport"] == "memcpy" { 0 } else { 2 });
    }
    // Rounds are folded into one row each.
    let mut keys: Vec<String> = latency
        .iter()
        .chain(throughput)
        .map(|r| format!("{} {} {}", r["transport"], r["size"], r["subscribers"]))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "a measurement listed twice: {v}");
    let has = |rows: &[serde_json::Value], transport: &str, size: u64| {
        rows.iter()
            .any(|r| r["transport"] == transport && r["size"] == size)
    };
    for t in [
        "floor-spin",
        "floor-futex",
        "floor-lines",
        "memlane-spin",
        "memlane-block",
        "memlane-sleep",
    ] {
        for size in [8, 1024, 65536] {
            assert!(has(latency, t, size), "no {t} latency at {size} B: {v}");
        }
    }
    for t in ["floor-ring", "memcpy", "memlane-spin", "memlane-loan"] {
        for size in [64, 1 << 20] {
            assert!(
                has(throughput, t, size),
                "no {t} throughput at {size} B: {v}"
            );
        }
    }
    // memlane-spin (a try_recv loop) and memlane-block (recv) each paired
    // with floor-spin between one pair of processes, at 8 B and 1 KiB: 100
    // round trips in turns of 10, so 5 pairs of turns.
    let paired = v["paired"].as_array().expect("paired is an array");
    assert_eq!(paired.len(), 4, "{v}");
    for (memlane, size) in [
        ("memlane-spin", 8),
        ("memlane-spin", 1024),
        ("memlane-block", 8),
        ("memlane-block", 1024),
    ] {
        let p = paired
            .iter()
            .find(|p| p["b"]["size"] == size && p["b"]["transport"] == memlane)
            .unwrap_or_else(|| panic!("no paired {memlane} row at {size} B: {v}"));
        assert_eq!(p["a"]["transport"], "floor-spin", "{p}");
        assert_eq!(p["block"], 10, "{p}");
        let ratios = p["block_ratios"].as_array().expect("block_ratios");
        assert_eq!(ratios.len(), 5, "{p}");
        assert_eq!(p["a"]["round_trips"], 50, "{p}");
        assert_eq!(p["b"]["round_trips"], 50, "{p}");
        let median = p["ratio_median"].as_f64().expect("ratio_median");
        assert!(
            ratios.iter().any(|r| r.as_f64() == Some(median)),
            "the median is one of the pairs' ratios: {p}"
        );
    }
    // The typed API at 64 B, as a ratio to the byte API's figure.
    let typed = throughput
        .iter()
        .find(|r| r["transport"] == "memlane-typed" && r["size"] == 64)
        .unwrap_or_else(|| panic!("no memlane-typed throughput at 64 B: {v}"));
    assert_eq!(typed["floor"], "memlane-spin", "{typed}");
    assert!(typed["ratio_to_floor"].is_number(), "{typed}");
    assert!(
        latency.iter().any(|r| r["subscribers"] == 8),
        "no 8-subscriber run: {v}"
    );
    // The latest-value slot: its two-process rows with floors at the same
    // sizes (latest-wake also against floor-spin), and its one-process
    // get/set next to the copy floor.
    for size in [64, 4096] {
        for t in ["floor-spin", "floor-futex", "latest-spin", "latest-wake"] {
            assert!(has(latency, t, size), "no {t} latency at {size} B: {v}");
        }
    }
    for row in latency.iter().filter(|r| r["transport"] == "latest-wake") {
        assert_eq!(row["floor"], "floor-futex", "{row}");
        assert!(row["ratio_to_spin_floor"].is_number(), "{row}");
    }
    let ops = v["latest_ops"].as_array().expect("latest_ops is an array");
    for op in ["copy", "latest-get", "latest-set"] {
        for size in [64, 4096] {
            let row = ops
                .iter()
                .find(|r| r["op"] == op && r["size"] == size)
                .unwrap_or_else(|| panic!("no {op} at {size} B: {v}"));
            assert!(row["ns_per_op"].is_number(), "{row}");
            assert!(row["ratio_to_floor"].is_number(), "{row}");
            assert_eq!(row["floor"], "copy", "{row}");
        }
    }
    assert!(dir.files().is_empty(), "left behind: {:?}", dir.files());
}

/// A `memlane bench --json` row of `rounds` rounds lists each round's
/// ratio, and its own ratio is the median one's (the lower middle of two).
fn rounds_agree(row: &serde_json::Value, rounds: usize) {
    let ratios: Vec<f64> = row["round_ratios"]
        .as_array()
        .unwrap_or_else(|| panic!("no round_ratios in {row}"))
        .iter()
        .map(|r| r.as_f64().expect("a ratio"))
        .collect();
    assert_eq!(ratios.len(), rounds, "{row}");
    if rounds > 0 {
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[(rounds - 1) / 2];
        assert_eq!(row["ratio_to_floor"].as_f64(), Some(median), "{row}");
    }
}

/// `memlane latest NAME create|set|get|watch`, with `info`, `list` and
/// `rm` knowing the kind.
#[test]
fn latest_create_set_get_watch_info_list_rm() {
    let dir = TempDir::new("latest");
    let out = run(&dir, &["latest", "pose", "create", "--max-value", "16"]).ok();
    assert!(out.stdout.contains("values up to 16 bytes"), "{out:#?}");
    // Nothing written yet: exit status 1 and a message saying so.
    let none = run(&dir, &["latest", "pose", "get"]).fails(1);
    assert!(none.stderr.contains("no value in 'pose' yet"), "{none:#?}");
    run(&dir, &["latest", "pose", "set", "x=1\ty=2"]).ok();
    let got = run(&dir, &["latest", "pose", "get"]).ok();
    assert_eq!(got.stdout, "x=1\\ty=2\n");
    let got = run(&dir, &["latest", "pose", "get", "--format", "json"]).ok();
    assert_eq!(
        got.stdout,
        "{\"version\":1,\"len\":7,\"text\":\"x=1\\ty=2\"}\n"
    );
    // Too long: refused, the value there stays.
    let long = run(&dir, &["latest", "pose", "set", "0123456789abcdefg"]).fails(1);
    assert!(long.stderr.contains("at most 16"), "{long:#?}");
    run_with_stdin(&dir, &["latest", "pose", "set", "-"], b"\x00\xff").ok();
    let got = run(&dir, &["latest", "pose", "get", "--format", "hex"]).ok();
    assert_eq!(got.stdout, "00ff\n");

    // watch prints the value there now, then the next one.
    let ready = dir.path().join("watch-ready");
    let ready_arg = ready.display().to_string();
    let watcher = start(
        common::memlane(
            &dir,
            &[
                "latest",
                "pose",
                "watch",
                "-n",
                "2",
                "--ready-file",
                &ready_arg,
            ],
        ),
        None,
    );
    common::wait_for_file(&ready);
    run(&dir, &["latest", "pose", "set", "next"]).ok();
    let seen = watcher.finish().ok();
    assert_eq!(seen.stdout, "\\0\\xff\nnext\n");
    let idle = run(
        &dir,
        &["latest", "pose", "watch", "-n", "5", "--timeout", "200ms"],
    )
    .ok();
    assert_eq!(idle.stdout, "next\n");

    let info = run(&dir, &["info", "pose"]).ok();
    assert!(
        info.stdout.contains("latest-value slot 'pose'"),
        "{info:#?}"
    );
    assert!(info.stdout.contains("version:        3"), "{info:#?}");
    let json = run(&dir, &["info", "pose", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("info --json is JSON");
    assert_eq!(
        (v["kind"].as_str(), v["version"].as_u64()),
        (Some("latest"), Some(3))
    );
    assert_eq!(v["max_value"], 16);
    let list = run(&dir, &["list"]).ok();
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with("pose ") && l.contains("latest")),
        "{list:#?}"
    );
    // set --create makes a slot that does not exist yet.
    run(&dir, &["latest", "made", "set", "--create", "hi"]).ok();
    assert_eq!(run(&dir, &["latest", "made", "get"]).ok().stdout, "hi\n");
    // A channel is not a latest-value slot.
    run(&dir, &["create", "chan", "--capacity", "64KiB"]).ok();
    let wrong = run(&dir, &["latest", "chan", "get"]).fails(1);
    assert!(wrong.stderr.contains("channel"), "{wrong:#?}");
    run(&dir, &["rm", "pose", "made", "chan"]).ok();
    assert!(dir.files().is_empty(), "{:?}", dir.files());
}

/// `listen --from-oldest` prints what was sent before it started.
#[test]
fn listen_from_oldest_prints_the_history_first() {
    let dir = TempDir::new("from-oldest");
    run(&dir, &["create", "hist", "--capacity", "64KiB"]).ok();
    run(&dir, &["send", "hist", "one", "two"]).ok();
    let listener = listen(&dir, "hist", &["--from-oldest", "--count", "3"]);
    run(&dir, &["send", "hist", "three"]).ok();
    let heard = listener.finish().ok();
    assert_eq!(heard.stdout, "one\ntwo\nthree\n");
    run(&dir, &["rm", "hist"]).ok();
}

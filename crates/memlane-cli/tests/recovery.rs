//! End-to-end tests of crash recovery through the `memlane` binary: a
//! killed listener (`Child::kill`: SIGKILL on Unix, `TerminateProcess` on
//! Windows) is shown dead by `info` and reclaimed by `gc --reap`; SIGTERM
//! and SIGINT make `listen` leave cleanly (Unix only); `gc` removes what no
//! process holds and nothing else.

mod common;

#[cfg(unix)]
use common::signal;
use common::{listen, run, TempDir};

#[cfg(unix)]
#[test]
fn listen_leaves_cleanly_on_sigterm_and_sigint() {
    let d = TempDir::new("sig");
    run(&d, &["create", "sig", "--capacity", "4KiB"]).ok();
    for (sig, code) in [("-TERM", 143), ("-INT", 130)] {
        let listener = listen(&d, "sig", &[]);
        signal(listener.child.id(), sig);
        let out = listener.finish();
        assert_eq!(out.status.code(), Some(code), "{sig}");
        // It left: no subscriber, and no side file behind.
        let info = run(&d, &["info", "sig", "--json"]).ok();
        let v: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
        assert_eq!(v["subscribers"].as_array().unwrap().len(), 0, "{sig}");
        let tokens: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(".memlane-"))
            .collect();
        assert!(tokens.is_empty(), "{sig}: {tokens:?}");
    }
}

#[test]
fn a_killed_listener_is_shown_dead_and_reaped() {
    let d = TempDir::new("dead");
    let ok = |args: &[&str]| run(&d, args).ok();
    ok(&["create", "dead", "--capacity", "4KiB"]);
    let mut killed = listen(&d, "dead", &[]);
    // A second listener keeps the channel held (gc would otherwise remove
    // a channel nobody holds), and keeps up with the sends below.
    let _keep = listen(&d, "dead", &[]);
    // No clean-up runs: SIGKILL on Unix, TerminateProcess on Windows.
    killed.child.kill().unwrap();
    let _ = killed.finish();
    let info = ok(&["info", "dead"]);
    assert!(info.text().contains("dead"), "{}", info.text());
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["info", "dead", "--json"]).stdout).unwrap();
    let states: Vec<_> = json["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect();
    assert!(states.contains(&"dead".to_string()), "{states:?}");
    // A dry run reports without reclaiming; then it is reclaimed.
    let dry = ok(&["gc", "--dry-run", "--reap", "dead"]);
    assert!(
        dry.text()
            .contains("would reclaim 0 dead publisher(s), 1 dead subscriber(s)"),
        "{}",
        dry.text()
    );
    let done = ok(&["gc", "--reap", "dead", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(v["reaped"][0]["subscribers"], 1);
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["info", "dead", "--json"]).stdout).unwrap();
    let subs = json["subscribers"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "only the live listener is left");
    assert_eq!(subs[0]["state"], "alive");
    // Sends go through again (the dead subscriber held the ring).
    for _ in 0..100 {
        ok(&["send", "dead", &"x".repeat(200)]);
    }
}

#[test]
fn gc_removes_unheld_names_only() {
    let d = TempDir::new("gc");
    let ok = |args: &[&str]| run(&d, args).ok();
    // `create` exits, so nobody holds "left"; a listener holds "held".
    ok(&["create", "left", "--capacity", "4KiB"]);
    ok(&["create", "held", "--capacity", "4KiB"]);
    let held = listen(&d, "held", &[]);
    std::fs::write(d.path().join("memlane.junk"), b"not ours").unwrap();
    let dry = ok(&["gc", "--dry-run"]);
    assert!(
        dry.text().contains("would remove memlane.left"),
        "{}",
        dry.text()
    );
    assert!(d.path().join("memlane.left").exists());
    let out = ok(&["gc"]);
    assert!(
        out.text().contains("removed memlane.left"),
        "{}",
        out.text()
    );
    assert!(!d.path().join("memlane.left").exists());
    assert!(
        d.path().join("memlane.held").exists(),
        "held by a live listener"
    );
    assert!(
        d.path().join("memlane.junk").exists(),
        "not a memlane file: left alone"
    );
    drop(held);
    let again = ok(&["gc"]);
    assert!(
        again.text().contains("removed memlane.held"),
        "{}",
        again.text()
    );
}

#[test]
fn create_replaces_a_stale_channel_only_when_asked() {
    let d = TempDir::new("stale");
    let go = |args: &[&str]| run(&d, args);
    go(&["create", "st", "--capacity", "4KiB"]).ok();
    let again = go(&["create", "st", "--capacity", "4KiB"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(again.text().contains("already exists"), "{}", again.text());
    // Nobody holds it: --replace-stale re-creates it.
    let o = go(&["create", "st", "--capacity", "8KiB", "--replace-stale"]);
    o.ok();
    // Held by a listener: not stale, never replaced.
    let _held = listen(&d, "st", &[]);
    let held = go(&["create", "st", "--replace-stale"]);
    assert_eq!(held.status.code(), Some(1), "{}", held.text());
}

/// The security review's reproduction through the command: a peer with
/// write access moved a channel's claim to a position that is not a
/// multiple of 16 (capacity - 8) and planted a matching record header at
/// capacity - 16. `listen --format hex` used to print bytes from past the
/// end of the mapping; now it refuses to join, saying what is wrong.
#[test]
fn listen_refuses_a_misaligned_claim_position() {
    use std::io::{Seek, SeekFrom, Write};
    let d = TempDir::new("misaligned");
    run(
        &d,
        &[
            "create",
            "planted",
            "--capacity",
            "64KiB",
            "--max-message",
            "1024",
        ],
    )
    .ok();
    // The data region follows the 4 KiB header; the claim is its second
    // line; with the default 8 + 8 endpoint slots the ring starts 4 KiB
    // into it (docs/ARCHITECTURE.md).
    const STAMP_KEY: u64 = 0x6d65_6d6c_616e_6521;
    let (data, cap) = (4096u64, 65536u64);
    let ring = data + 4096;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(d.path().join("memlane.planted"))
        .unwrap();
    let p = cap - 8;
    for (off, v) in [
        (data + 128, p),
        (ring + cap - 16, p ^ STAMP_KEY),
        (ring + cap - 8, 1024),
    ] {
        f.seek(SeekFrom::Start(off)).unwrap();
        f.write_all(&v.to_ne_bytes()).unwrap();
    }
    let out = run(
        &d,
        &[
            "listen",
            "planted",
            "--format",
            "hex",
            "--count",
            "1",
            "--timeout",
            "2s",
        ],
    )
    .fails(1);
    assert!(
        out.stderr.contains("not a multiple of 16"),
        "says what is wrong: {out:#?}"
    );
    assert!(out.stdout.is_empty(), "printed nothing: {out:#?}");
}

/// Kills a child process when dropped (also when the test fails).
#[cfg(unix)]
struct KillOnDrop(std::process::Child);

#[cfg(unix)]
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process holding an exclusive lock on a memlane name (anyone who can
/// open the file can) does not hang `memlane list`: the entry is shown
/// busy, with the holder's pid; `memlane info` gives up after a bounded
/// wait with an error naming the file.
#[cfg(unix)]
#[test]
fn list_shows_a_name_locked_exclusively_as_busy() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let d = TempDir::new("busy");
    run(&d, &["create", "x", "--capacity", "4KiB"]).ok();
    let ready = d.path().join("ready");
    // `flock -F` execs the shell, which execs sleep: one process (the
    // child's pid) holds the lock until it is killed.
    let child = Command::new("flock")
        .args(["-x", "-F"])
        .arg(d.path().join("memlane.x"))
        .args(["sh", "-c", "touch \"$0\" && exec sleep 600"])
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut holder = match child {
        Ok(c) => KillOnDrop(c),
        Err(e) => {
            eprintln!("skipped: cannot run flock(1): {e}");
            return;
        }
    };
    let start = Instant::now();
    while !ready.exists() {
        if let Ok(Some(status)) = holder.0.try_wait() {
            eprintln!("skipped: `flock -x -F` exited with {status}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "flock never took the lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = holder.0.id();
    // `run` kills the command and fails the test if it hangs.
    let out = run(&d, &["list"]).ok();
    assert!(
        out.stdout
            .contains(&format!("channel (busy: locked exclusively by pid {pid})")),
        "{}",
        out.text()
    );
    let json: serde_json::Value =
        serde_json::from_str(&run(&d, &["list", "--json"]).ok().stdout).unwrap();
    assert_eq!(json["entries"][0]["busy"], true);
    assert_eq!(json["entries"][0]["lock_holder"], pid);
    let info = run(&d, &["info", "x"]).fails(1);
    assert!(info.stderr.contains("memlane.x"), "{}", info.text());
    assert!(
        info.stderr.contains("locked exclusively"),
        "{}",
        info.text()
    );
    drop(holder);
    run(&d, &["info", "x"]).ok();
}

/// `listen --lossy`: a stopped lossy listener never blocks `send` (a
/// lossless one would, on a 4 KiB ring); `info` shows it lossy with its
/// loss; resumed, it says on stderr how many messages it lost, and prints
/// the rest: printed + lost = sent.
#[cfg(unix)]
#[test]
fn a_stopped_lossy_listener_blocks_no_sender_and_counts_its_loss() {
    let d = TempDir::new("lossy");
    run(&d, &["create", "lossy", "--capacity", "4KiB"]).ok();
    let listener = listen(&d, "lossy", &["--lossy", "--timeout", "1s"]);
    signal(listener.child.id(), "-STOP");
    let lines: String = (0..2000).map(|i| format!("message {i}\n")).collect();
    common::run_with_stdin(&d, &["send", "lossy"], lines.as_bytes()).ok();
    let info = run(&d, &["info", "lossy", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(v["subscribers"][0]["lossy"], true, "{v}");
    signal(listener.child.id(), "-CONT");
    let out = listener.finish().ok();
    let printed: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(printed.last(), Some(&"message 1999"), "{out:#?}");
    let lost: u64 = out
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("lapped: lost "))
        .map(|l| l.split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(lost > 0, "{out:#?}");
    assert_eq!(printed.len() as u64 + lost, 2000, "{out:#?}");
    run(&d, &["rm", "lossy"]).ok();
}

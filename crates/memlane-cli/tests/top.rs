//! `memlane top`: the JSON snapshot (`--once --json`) against real
//! publisher and subscriber processes (rates, pids, states, lag, fill), a
//! channel removed between the two samples and corrupt ones shown as
//! such, files left unchanged (it opens read-only), and the interactive
//! view driven in a real terminal (tmux) on Unix.

mod common;

use std::io::{BufRead, BufReader, Write};
#[cfg(unix)]
use std::process::Command;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{listen, memlane, run, TempDir, WATCHDOG};
use serde_json::Value;

/// `memlane info NAME --json`, parsed.
fn info(d: &TempDir, name: &str) -> Value {
    let out = run(d, &["info", name, "--json"]).ok();
    serde_json::from_str(&out.stdout).expect("info prints JSON")
}

/// Polls `memlane info` until `done` holds for it.
fn wait_info(d: &TempDir, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let i = info(d, name);
        if done(&i) {
            return i;
        }
        assert!(Instant::now() < deadline, "watchdog: never saw {what}: {i}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child killed (and reaped) when dropped, also when the test fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `memlane top --once --json --step`: started, its first sample taken.
/// Write a line to its stdin to take the second.
fn top_step(d: &TempDir) -> (Killed, BufReader<std::process::ChildStderr>) {
    let mut cmd = memlane(d, &["top", "--once", "--json", "--step"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start memlane top");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).expect("read top's stderr");
    assert_eq!(line.trim(), "first sample taken", "top said: {line}");
    (Killed(child), err)
}

/// Takes the second sample and returns the JSON.
fn top_finish(top: Killed, mut err: BufReader<std::process::ChildStderr>) -> Value {
    let mut top = top;
    top.0
        .stdin
        .take()
        .unwrap()
        .write_all(b"\n")
        .expect("step top");
    let mut stdout = String::new();
    std::io::Read::read_to_string(top.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = top.0.wait().unwrap();
    assert!(status.success(), "top failed ({status}): {rest}");
    assert!(!rest.contains("panicked"), "top panicked: {rest}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("top's JSON ({e}): {stdout}"))
}

fn entry<'a>(top: &'a Value, name: &str) -> &'a Value {
    top["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no entry {name} in {top:#}"))
}

/// `rate × interval` is the counter's increase between the samples.
fn increase(rate: &Value, top: &Value) -> f64 {
    let secs = top["interval_secs"].as_f64().unwrap();
    (rate.as_f64().unwrap_or_else(|| panic!("no rate: {top:#}")) * secs).round()
}

#[cfg(unix)]
fn signal(sig: &str, pid: u32) {
    assert!(Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .expect("run kill")
        .success());
}

#[test]
fn json_shows_rates_endpoints_lag_fill_and_removed_and_corrupt_channels() {
    let d = TempDir::new("top-json");
    let name = "top-json-ch";
    run(&d, &["create", name]).ok();
    run(&d, &["create", "top-json-gone"]).ok();
    run(&d, &["create", "top-json-spoiled"]).ok();
    // Corrupt copies of a channel this test created: garbage over the
    // channel's configuration, and one cut short.
    run(&d, &["create", "top-json-model"]).ok();
    let model = std::fs::read(d.path().join("memlane.top-json-model")).unwrap();
    let mut garbage = model.clone();
    garbage[4096..4096 + 512].fill(0xA5);
    std::fs::write(d.path().join("memlane.top-json-garbage"), &garbage).unwrap();
    std::fs::write(
        d.path().join("memlane.top-json-short"),
        &model[..model.len() / 2],
    )
    .unwrap();

    let reader = listen(&d, name, &[]);
    let stalled = listen(&d, name, &[]);
    let lossy = listen(&d, name, &["--lossy"]);
    let mut victim = listen(&d, name, &[]);
    let mut sender = Killed(
        memlane(&d, &["send", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start memlane send"),
    );
    let mut input = sender.0.stdin.take().unwrap();
    input.write_all(b"first\n").unwrap();
    input.flush().unwrap();
    wait_info(&d, name, "the first message received by all", |i| {
        i["publishers"].as_array().unwrap().len() == 1
            && i["subscribers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["messages"] == 1)
    });
    #[cfg(unix)]
    signal("-STOP", stalled.child.id());
    // Killed without leaving: its slot stays, shown dead.
    let victim_pid = victim.child.id();
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();

    let (top, err) = top_step(&d);
    for n in 0..10 {
        input.write_all(format!("msg-{n:02}\n").as_bytes()).unwrap();
    }
    input.flush().unwrap();
    let reader_pid = reader.child.id();
    wait_info(&d, name, "ten more messages received by the reader", |i| {
        i["subscribers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["pid"] == reader_pid || s["lossy"] == true)
            .all(|s| s["messages"] == 11)
    });
    run(&d, &["rm", "top-json-gone"]).ok();
    // Garbage over the configuration of a channel this test created,
    // while top watches it.
    {
        use std::io::{Seek, SeekFrom};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(d.path().join("memlane.top-json-spoiled"))
            .unwrap();
        f.seek(SeekFrom::Start(4096)).unwrap();
        f.write_all(&[0xA5; 512]).unwrap();
    }
    let top = top_finish(top, err);

    let ch = entry(&top, name);
    assert_eq!(ch["status"], "ok");
    assert_eq!(ch["kind"], "channel");
    let c = &ch["channel"];
    assert_eq!(c["messages_sent"], 11);
    assert_eq!(increase(&c["messages_in_per_sec"], &top), 10.0);
    assert_eq!(increase(&c["bytes_in_per_sec"], &top), 60.0);
    let pubs = c["publishers"].as_array().unwrap();
    assert_eq!(pubs.len(), 1);
    assert_eq!(pubs[0]["pid"], sender.0.id());
    assert_eq!(pubs[0]["state"], "alive");
    assert_eq!(increase(&pubs[0]["messages_per_sec"], &top), 10.0);
    let subs = c["subscribers"].as_array().unwrap();
    assert_eq!(subs.len(), 4);
    let sub = |pid: u32| {
        subs.iter()
            .find(|s| s["pid"] == pid)
            .unwrap_or_else(|| panic!("no subscriber {pid}: {c:#}"))
    };
    let r = sub(reader_pid);
    assert_eq!(r["state"], "alive");
    assert_eq!(r["lag_bytes"], 0);
    assert_eq!(r["lossy"], false);
    assert_eq!(increase(&r["messages_per_sec"], &top), 10.0);
    assert_eq!(increase(&r["bytes_per_sec"], &top), 60.0);
    assert_eq!(sub(victim_pid)["state"], "dead");
    let l = sub(lossy.child.id());
    assert_eq!(l["lossy"], true);
    assert_eq!(l["lost_messages"], 0);
    assert_eq!(c["lost_messages"], 0);
    #[cfg(unix)]
    {
        // The stopped subscriber holds the ring (as the dead one, which
        // stopped at the same place): it is the fill.
        let s = sub(stalled.child.id());
        assert_eq!(s["state"], "stalled");
        assert_eq!(s["messages"], 1);
        assert_eq!(increase(&s["messages_per_sec"], &top), 0.0);
        let lag = s["lag_bytes"].as_u64().unwrap();
        assert!(lag > 0, "the stopped subscriber lags: {s}");
        assert_eq!(c["fill_bytes"], lag);
        let fill = lag as f64 / c["capacity"].as_f64().unwrap();
        assert_eq!(c["fill"].as_f64().unwrap(), fill);
        // Both live readers read all ten: the out rate is theirs.
        assert_eq!(increase(&c["messages_out_per_sec"], &top), 20.0);
        signal("-CONT", stalled.child.id());
    }

    assert_eq!(entry(&top, "top-json-gone")["status"], "removed");
    for bad in ["top-json-garbage", "top-json-short", "top-json-spoiled"] {
        let e = entry(&top, bad);
        assert_eq!(e["status"], "error", "{e:#}");
        assert!(!e["error"].as_str().unwrap().is_empty());
    }
    assert_eq!(entry(&top, "top-json-model")["status"], "ok");

    drop(input);
    drop(sender);
    // Running kills what is left when dropped.
    drop((reader, stalled, lossy, victim));
}

#[test]
fn top_changes_no_file() {
    let d = TempDir::new("top-ro");
    run(&d, &["create", "top-ro-ch"]).ok();
    run(&d, &["latest", "top-ro-slot", "create"]).ok();
    run(&d, &["latest", "top-ro-slot", "set", "v1"]).ok();
    let read = |n: &str| std::fs::read(d.path().join(n)).unwrap();
    let before = (read("memlane.top-ro-ch"), read("memlane.top-ro-slot"));
    let out = run(&d, &["top", "--once", "--json", "--interval", "50ms"]).ok();
    let top: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(entry(&top, "top-ro-ch")["status"], "ok");
    let slot = entry(&top, "top-ro-slot");
    assert_eq!(slot["kind"], "latest");
    assert_eq!(slot["latest"]["version"], 1);
    let table = run(&d, &["top", "--once", "--interval", "50ms"]).ok();
    assert!(table.stdout.contains("top-ro-ch"), "{}", table.stdout);
    assert!(table.stdout.contains("MSG/S IN"), "{}", table.stdout);
    let after = (read("memlane.top-ro-ch"), read("memlane.top-ro-slot"));
    assert!(before == after, "memlane top changed a file it watched");
}

/// The interactive view in a real terminal: tmux on its own server
/// socket, a 200×50 window.
#[cfg(unix)]
#[test]
fn interactive_view_in_tmux() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("note: tmux is not installed; skipping the terminal test of memlane top");
        return;
    }
    let d = TempDir::new("top-tmux");
    let name = "top-tmux-ch";
    run(&d, &["create", name]).ok();
    run(&d, &["create", "top-tmux-other"]).ok();
    let listener = listen(&d, name, &[]);
    let socket = format!("memlane-top-test-{}", std::process::id());
    struct Server(String);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["-L", &self.0, "kill-server"])
                .output();
        }
    }
    let server = Server(socket.clone());
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux")
            .args(["-L", &server.0])
            .args(args)
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shell = format!(
        "'{}' --dir '{}' top --interval 200ms; echo TOP-EXITED-$?; sleep 600",
        env!("CARGO_BIN_EXE_memlane"),
        d.path().display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-x",
        "200",
        "-y",
        "50",
        "-s",
        "top",
        &shell,
    ]);
    // The session shown (a second one for the SIGTERM part).
    let session = std::cell::Cell::new("top");
    let screen = || tmux(&["capture-pane", "-p", "-t", session.get()]);
    let wait = |what: &str, ok: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + WATCHDOG;
        loop {
            let s = screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "watchdog: never saw {what}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let s = wait("the table", &|s| {
        s.contains(name) && s.contains("MSG/S IN") && s.contains("1s")
    });
    assert!(s.contains("top-tmux-other"), "{s}");
    assert!(s.contains("sort: NAME asc"), "{s}");
    tmux(&["send-keys", "-t", "top", "s"]);
    wait("sorted by kind", &|s| s.contains("sort: KIND asc"));
    tmux(&["send-keys", "-t", "top", "S"]);
    wait("descending", &|s| s.contains("sort: KIND desc"));
    tmux(&[
        "send-keys",
        "-t",
        "top",
        "s",
        "s",
        "s",
        "s",
        "s",
        "s",
        "s",
        "s",
        "s",
    ]);
    wait("sorted by name again", &|s| s.contains("sort: NAME desc"));
    // Descending by name: top-tmux-other first, then the channel.
    tmux(&["send-keys", "-t", "top", "Down"]);
    tmux(&["send-keys", "-t", "top", "Enter"]);
    let detail = wait("the channel's detail", &|s| s.contains("SUBSCRIBERS"));
    assert!(detail.contains(&format!("channel '{name}'")), "{detail}");
    assert!(
        detail.contains(&listener.child.id().to_string()),
        "the listener's pid is shown: {detail}"
    );
    assert!(detail.contains("alive"), "{detail}");
    tmux(&["send-keys", "-t", "top", "Escape"]);
    wait("the table again", &|s| {
        s.contains("MSG/S IN") && !s.contains("SUBSCRIBERS")
    });
    // Removed while shown: displayed as such.
    run(&d, &["rm", "top-tmux-other"]).ok();
    wait("the removed channel", &|s| s.contains("removed"));
    tmux(&["send-keys", "-t", "top", "q"]);
    let end = wait("top's exit", &|s| s.contains("TOP-EXITED-"));
    assert!(end.contains("TOP-EXITED-0"), "{end}");
    let alternate = || {
        tmux(&[
            "display-message",
            "-p",
            "-t",
            session.get(),
            "#{alternate_on}",
        ])
    };
    assert_eq!(alternate().trim(), "0", "the terminal was restored");

    // SIGTERM ends it too, and restores the terminal.
    // (A second session first: the server exits with its last session.)
    tmux(&[
        "new-session",
        "-d",
        "-x",
        "200",
        "-y",
        "50",
        "-s",
        "top2",
        &shell,
    ]);
    tmux(&["kill-session", "-t", "top"]);
    session.set("top2");
    wait("the table", &|s| s.contains("MSG/S IN"));
    assert_eq!(alternate().trim(), "1", "top runs on the alternate screen");
    let shell_pid = tmux(&["display-message", "-p", "-t", session.get(), "#{pane_pid}"]);
    let shell_pid = shell_pid.trim();
    let children = format!("/proc/{shell_pid}/task/{shell_pid}/children");
    match std::fs::read_to_string(&children) {
        Ok(pids) => {
            let top_pid: u32 = pids
                .split_whitespace()
                .next()
                .expect("top runs under the shell")
                .parse()
                .unwrap();
            signal("-TERM", top_pid);
            let end = wait("top's exit on SIGTERM", &|s| s.contains("TOP-EXITED-"));
            assert!(end.contains("TOP-EXITED-143"), "{end}");
            assert_eq!(alternate().trim(), "0", "the terminal was restored");
        }
        Err(e) => println!("note: cannot read {children} ({e}); SIGTERM not tested"),
    }
    drop(listener);
}

#[test]
fn without_a_terminal_it_asks_for_once() {
    let d = TempDir::new("top-notty");
    let out = run(&d, &["top"]).fails(1);
    assert!(out.stderr.contains("--once"), "{}", out.stderr);
    // --json alone is a usage error: it needs --once.
    run(&d, &["top", "--json"]).fails(2);
    let out = run(&d, &["top", "--once", "--interval", "0s"]).fails(1);
    assert!(out.stderr.contains("at least 10ms"), "{}", out.stderr);
}

//! End-to-end tests of crash recovery through the `memlane` binary: a
//! killed listener (`Child::kill`: SIGKILL on Unix, `TerminateProcess` on
//! Windows) is shown dead by `info` and reclaimed by `gc --reap`; SIGTERM
//! and SIGINT make `listen` leave cleanly (Unix only); `gc` removes what no
//! process holds and nothing else.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A private segment directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("memlane-cli-rec-{}-{n}-{tag}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the child if the test fails before reaping it.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn memlane(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_memlane"));
    c.arg("--dir").arg(dir).stdin(Stdio::null());
    c
}

/// Runs to completion under a watchdog.
fn run(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("watchdog: {cmd:?} hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn start_listener(dir: &TempDir, name: &str) -> Guard {
    static N: AtomicU32 = AtomicU32::new(0);
    let ready = dir.0.join(format!(
        "ready-{name}-{}",
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let child = memlane(&dir.0)
        .args(["listen", name, "--ready-file"])
        .arg(&ready)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ready.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the listener never got ready"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Guard(Some(child))
}

/// Sends `sig` (e.g. `-TERM`) to `pid` with kill(1).
#[cfg(unix)]
fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

fn wait_exit(mut g: Guard) -> std::process::ExitStatus {
    let mut c = g.0.take().unwrap();
    let start = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return st;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(unix)]
#[test]
fn listen_leaves_cleanly_on_sigterm_and_sigint() {
    let d = TempDir::new("sig");
    assert!(run({
        let mut c = memlane(&d.0);
        c.args(["create", "sig", "--capacity", "4KiB"]);
        c
    })
    .status
    .success());
    for (sig, code) in [("-TERM", 143), ("-INT", 130)] {
        let g = start_listener(&d, "sig");
        let pid = g.0.as_ref().unwrap().id();
        signal(pid, sig);
        let st = wait_exit(g);
        assert_eq!(st.code(), Some(code), "{sig}");
        // It left: no subscriber, and no token file behind.
        let info = run({
            let mut c = memlane(&d.0);
            c.args(["info", "sig", "--json"]);
            c
        });
        let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(v["subscribers"].as_array().unwrap().len(), 0, "{sig}");
        let tokens: Vec<_> = std::fs::read_dir(&d.0)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(".memlane-ep."))
            .collect();
        assert!(tokens.is_empty(), "{sig}: {tokens:?}");
    }
}

#[test]
fn a_killed_listener_is_shown_dead_and_reaped() {
    let d = TempDir::new("dead");
    let ok = |args: &[&str]| {
        let mut c = memlane(&d.0);
        c.args(args);
        let o = run(c);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        o
    };
    ok(&["create", "dead", "--capacity", "4KiB"]);
    let mut g = start_listener(&d, "dead");
    // A second listener keeps the channel held (gc would otherwise remove
    // a channel nobody holds), and keeps up with the sends below.
    let _keep = start_listener(&d, "dead");
    // No clean-up runs: SIGKILL on Unix, TerminateProcess on Windows.
    g.0.as_mut().unwrap().kill().unwrap();
    let _ = wait_exit(g);
    let info = ok(&["info", "dead"]);
    assert!(text(&info).contains("dead"), "{}", text(&info));
    let json: serde_json::Value =
        serde_json::from_slice(&ok(&["info", "dead", "--json"]).stdout).unwrap();
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
        text(&dry).contains("would reclaim 0 dead publisher(s), 1 dead subscriber(s)"),
        "{}",
        text(&dry)
    );
    let done = ok(&["gc", "--reap", "dead", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(v["reaped"][0]["subscribers"], 1);
    let json: serde_json::Value =
        serde_json::from_slice(&ok(&["info", "dead", "--json"]).stdout).unwrap();
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
    let ok = |args: &[&str]| {
        let mut c = memlane(&d.0);
        c.args(args);
        let o = run(c);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        o
    };
    // `create` exits, so nobody holds "left"; a listener holds "held".
    ok(&["create", "left", "--capacity", "4KiB"]);
    ok(&["create", "held", "--capacity", "4KiB"]);
    let g = start_listener(&d, "held");
    std::fs::write(d.0.join("memlane.junk"), b"not ours").unwrap();
    let dry = ok(&["gc", "--dry-run"]);
    assert!(
        text(&dry).contains("would remove memlane.left"),
        "{}",
        text(&dry)
    );
    assert!(d.0.join("memlane.left").exists());
    let out = ok(&["gc"]);
    assert!(
        text(&out).contains("removed memlane.left"),
        "{}",
        text(&out)
    );
    assert!(!d.0.join("memlane.left").exists());
    assert!(d.0.join("memlane.held").exists(), "held by a live listener");
    assert!(
        d.0.join("memlane.junk").exists(),
        "not a memlane file: left alone"
    );
    drop(g);
    let again = ok(&["gc"]);
    assert!(
        text(&again).contains("removed memlane.held"),
        "{}",
        text(&again)
    );
}

#[test]
fn create_replaces_a_stale_channel_only_when_asked() {
    let d = TempDir::new("stale");
    let go = |args: &[&str]| {
        let mut c = memlane(&d.0);
        c.args(args);
        run(c)
    };
    assert!(go(&["create", "st", "--capacity", "4KiB"]).status.success());
    let again = go(&["create", "st", "--capacity", "4KiB"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    // Nobody holds it: --replace-stale re-creates it.
    let o = go(&["create", "st", "--capacity", "8KiB", "--replace-stale"]);
    assert!(o.status.success(), "{}", text(&o));
    // Held by a listener: not stale, never replaced.
    let _g = start_listener(&d, "st");
    let held = go(&["create", "st", "--replace-stale"]);
    assert_eq!(held.status.code(), Some(1), "{}", text(&held));
}

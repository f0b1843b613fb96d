//! Helpers: a directory per side, bridge processes on explicit loopback
//! TCP endpoints (no multicast), child roles that re-execute this test
//! binary, and the test messages (sequence number, mixed sizes, checksum).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A directory of this test's own, removed on drop (also on failure).
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let path = base.join(format!(
            "memlane-zenoh-test-{tag}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).expect("create test dir");
        TestDir { path }
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child if still running when dropped.
pub struct Proc {
    pub child: Option<Child>,
    pub what: String,
    pub log: Option<PathBuf>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }
    /// Asks the bridge to stop cleanly (final counters, exit 0) as a user
    /// would: SIGTERM on Unix, a `quit` line on standard input on Windows
    /// (no signals there).
    pub fn stop(&self) {
        #[cfg(unix)]
        assert!(self.signal("TERM"), "kill -TERM {}", self.what);
        #[cfg(not(unix))]
        self.line("quit");
    }
    /// Writes `text` and a newline on the process's standard input (the
    /// bridge: `quit` stops it, any other line prints its counters).
    pub fn line(&self, text: &str) {
        use std::io::Write;
        let stdin = self.child.as_ref().and_then(|c| c.stdin.as_ref());
        let mut stdin = stdin.expect("the process's standard input is piped");
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write to the process's standard input");
    }
    /// Sends signal `sig` (`TERM`, `STOP`, …) with kill(1); whether it went.
    #[cfg(unix)]
    pub fn signal(&self, sig: &str) -> bool {
        Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }
    /// Waits for exit within `limit` (else kills and panics); returns stdout.
    pub fn wait(mut self, limit: Duration) -> String {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        loop {
            if child.try_wait().expect("try_wait").is_some() {
                let out = child.wait_with_output().expect("output");
                let stdout = String::from_utf8_lossy(&out.stdout).to_string();
                assert!(
                    out.status.success(),
                    "{} failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}{}",
                    self.what,
                    out.status,
                    String::from_utf8_lossy(&out.stderr),
                    self.log_text()
                );
                return stdout;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "watchdog: {} still running after {limit:?}\nstdout:\n{}\nstderr:\n{}{}",
                    self.what,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    pub fn log_text(&self) -> String {
        match &self.log {
            Some(p) => format!(
                "\nlog {}:\n{}",
                p.display(),
                std::fs::read_to_string(p).unwrap_or_default()
            ),
            None => String::new(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One side (machine) of a test: its channel directory and its bridge.
pub struct Side {
    pub dir: TestDir,
    pub name: &'static str,
}

/// A failing test shows each side's bridge log and last counters: the
/// panic is usually a child's report ("seq X after Y"), which alone cannot
/// tell a message the bridge lost from one Zenoh never delivered (the
/// bridge counts those in `in_missed`).
impl Drop for Side {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
            eprintln!(
                "--- side {}: bridge log ---\n{}--- side {}: last counters ---\n{}",
                self.name,
                read(self.log_path()),
                self.name,
                read(self.stats_path()),
            );
        }
    }
}

impl Side {
    pub fn new(name: &'static str) -> Side {
        Side {
            dir: TestDir::new(name),
            name,
        }
    }
    /// Where this side's bridge writes its log (appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(&format!("bridge-{}.log", self.name))
    }
    pub fn stats_path(&self) -> PathBuf {
        self.dir.join("stats.json")
    }
    /// Whether this side's bridge log (all its runs) holds `text`.
    pub fn log_text_has(&self, text: &str) -> bool {
        std::fs::read_to_string(self.log_path()).is_ok_and(|l| l.contains(text))
    }
    /// Starts this side's bridge with `args` (routes, --listen/--connect).
    pub fn bridge(&self, args: &[&str]) -> Proc {
        let _ = std::fs::remove_file(self.stats_path());
        let log = self.log_path();
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_memlane-bridge"));
        cmd.arg("--dir")
            .arg(&self.dir.path)
            .args([
                "--no-multicast-scouting",
                "--capacity",
                "1048576",
                "--max-message",
                "65536",
            ])
            .arg("--stats-json")
            .arg(self.stats_path())
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("MEMLANE_ZENOH_TEST_LOG").unwrap_or("info,zenoh=warn".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(logf);
        Proc {
            child: Some(spawn(&mut cmd).expect("spawn memlane-bridge")),
            what: format!("bridge {}", self.name),
            log: Some(log),
        }
    }
    /// The bridge's counters, once its stats file exists.
    pub fn stats(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.stats_path()).ok()?;
        serde_json::from_str(&text).ok()
    }
    /// A counter of the route `name` with direction `dir`.
    pub fn counter(&self, name: &str, field: &str) -> Option<serde_json::Value> {
        let s = self.stats()?;
        s["routes"]
            .as_array()?
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r[field].clone())
    }
    /// Waits until this side's outbound route `name` has a remote subscriber.
    pub fn wait_matched(&self, name: &str, bridge: &Proc) {
        wait_for(
            Duration::from_secs(60),
            &format!("{}: a remote subscriber for {name}", self.name),
            bridge,
            || self.counter(name, "out_matched") == Some(serde_json::Value::Bool(true)),
        );
    }
    /// Waits until a field equals `value`.
    pub fn wait_for_field(&self, name: &str, field: &str, value: serde_json::Value, bridge: &Proc) {
        wait_for(
            Duration::from_secs(60),
            &format!("{}: {name}.{field} == {value}", self.name),
            bridge,
            || self.counter(name, field) == Some(value.clone()),
        );
    }
    /// Waits until the counter reaches `at_least`.
    pub fn wait_counter(&self, name: &str, field: &str, at_least: u64, bridge: &Proc) {
        wait_for(
            Duration::from_secs(120),
            &format!("{}: {name}.{field} >= {at_least}", self.name),
            bridge,
            || {
                self.counter(name, field)
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0)
                    >= at_least
            },
        );
    }
}

/// Starts `cmd`. Under Wine, starting a process now and then fails with
/// `ERROR_INTERNAL_ERROR` (1359) while others start at the same moment: that
/// error is tried again, up to five times.
pub fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if cfg!(windows) && e.raw_os_error() == Some(1359) && tries < 5 => {
                eprintln!("starting {cmd:?}: {e}; trying again");
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            r => return r,
        }
    }
}

/// Polls `cond` until true or `limit` (then panics, showing the bridge's log).
pub fn wait_for(limit: Duration, what: &str, bridge: &Proc, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}{}",
            bridge.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The environment variable naming a child's role.
pub const ROLE_ENV: &str = "MEMLANE_ZENOH_TEST_ROLE";

/// Spawns this test binary again, running only `entry`, with `role` and `vars`.
pub fn spawn_role(entry: &str, role: &str, vars: &[(&str, String)]) -> Proc {
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new(exe);
    cmd.args([entry, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Proc {
        child: Some(spawn(&mut cmd).expect("spawn child")),
        what: format!("child {role}"),
        log: None,
    }
}

/// 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Test message `seq` from publisher `tag`: tag (1), seq (8), filler of a
/// mixed size (mostly small, some up to 16 KiB), FNV-1a of all before (8).
pub fn make_message(tag: u8, seq: u64, rng: &mut Rng) -> Vec<u8> {
    let r = rng.below(100);
    let filler = if r < 80 {
        rng.below(240)
    } else if r < 99 {
        256 + rng.below(1792)
    } else {
        2048 + rng.below(14336)
    } as usize;
    let mut m = Vec::with_capacity(17 + filler);
    m.push(tag);
    m.extend_from_slice(&seq.to_le_bytes());
    let x = rng.next();
    m.extend((0..filler).map(|i| (x >> (i % 8 * 8)) as u8 ^ i as u8));
    let h = fnv1a(&m);
    m.extend_from_slice(&h.to_le_bytes());
    m
}

/// A 100-byte test message, in the format of [`make_message`].
pub fn small_message(tag: u8, seq: u64) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&seq.to_le_bytes());
    m.resize(92, seq as u8);
    let h = fnv1a(&m);
    m.extend_from_slice(&h.to_le_bytes());
    m
}

/// Checks a test message; returns (tag, seq).
pub fn check_message(m: &[u8]) -> (u8, u64) {
    assert!(m.len() >= 17, "message of {} bytes is too short", m.len());
    let (body, sum) = m.split_at(m.len() - 8);
    assert_eq!(
        fnv1a(body),
        u64::from_le_bytes(sum.try_into().unwrap()),
        "checksum mismatch"
    );
    (m[0], u64::from_le_bytes(m[1..9].try_into().unwrap()))
}

/// A Zenoh session of the test process itself, standing for a peer that
/// is not a bridge: multicast scouting off, `role` ("listen" or "connect")
/// on `tcp/127.0.0.1:PORT`.
pub fn plain_session(role: &str, port: u16) -> memlane_zenoh::zenoh::Session {
    use memlane_zenoh::zenoh::{self, Wait};
    let mut config = zenoh::Config::default();
    config
        .insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    config
        .insert_json5(
            &format!("{role}/endpoints"),
            &format!("[\"tcp/127.0.0.1:{port}\"]"),
        )
        .unwrap();
    zenoh::open(config).wait().unwrap()
}

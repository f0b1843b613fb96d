//! Helpers shared by the integration tests: a private directory per test
//! (so tests never touch segments they did not create), child processes
//! that re-execute the test binary in a role, and a watchdog.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A directory of this test's own, removed on drop (also when the test
/// fails). Lives on `/dev/shm` when possible, so segments are on tmpfs as
/// in production.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let base = if cfg!(unix) && Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let path = base.join(format!("memlane-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).expect("create test dir");
        TestDir { path }
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The environment variable naming a child's role.
pub const ROLE_ENV: &str = "MEMLANE_TEST_ROLE";

/// Spawns this test binary again, running only `entry` (a test function
/// that acts when [`ROLE_ENV`] is set), with `role` and extra variables;
/// the child is killed if it is still running when the guard is dropped.
pub fn spawn_role(entry: &str, role: &str, vars: &[(&str, String)]) -> KillOnDrop {
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
    // Wine's CreateProcess now and then fails with ERROR_INTERNAL_ERROR
    // (1359) while other processes are starting or exiting; a second try
    // starts the child. Any other error, or a third failure, fails the test.
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Ok(child) => return KillOnDrop(Some(child)),
            Err(e) if cfg!(windows) && e.raw_os_error() == Some(1359) && tries < 2 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("spawn child: {e:?}"),
        }
    }
}

/// Kills a child if it is still running when dropped.
pub struct KillOnDrop(pub Option<Child>);

impl KillOnDrop {
    pub fn id(&self) -> u32 {
        self.0.as_ref().map(|c| c.id()).unwrap_or(0)
    }
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }
    /// Waits up to `limit`; on time-out kills the child and panics.
    pub fn wait(mut self, limit: Duration) -> Output {
        let mut child = self.0.take().unwrap();
        let start = Instant::now();
        loop {
            match child.try_wait().expect("try_wait") {
                Some(_) => return child.wait_with_output().expect("output"),
                None if start.elapsed() > limit => {
                    let _ = child.kill();
                    let out = child.wait_with_output().expect("output");
                    panic!(
                        "watchdog: child still running after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Asserts a child exited 0, showing its output otherwise; returns stdout.
pub fn expect_success(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Polls `cond` until true or `limit` passes (then panics with `what`).
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
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

/// A tiny deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Sends `sig` (e.g. "-STOP", "-KILL") to process `pid` with kill(1).
#[cfg(unix)]
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Reads the child's output up to its READY line (the test harness
/// prints a few lines of its own first).
pub fn wait_ready(child: &mut KillOnDrop) {
    use std::io::Read;
    let out = child.child().stdout.as_mut().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("READY\n") {
        let n = out.read(&mut byte).unwrap();
        assert!(
            n == 1,
            "child exited before it got ready: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
}

//! The harness shared by the end-to-end tests of the `memlane` binary:
//! a private segment directory per test, commands run under a watchdog
//! with their output collected, and listeners started and waited for.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long any one command may run before the test kills it and fails.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// A temporary segment directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("memlane-cli-test-{}-{n}-{tag}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create the test directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Names of the files in the directory.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read the test directory")
            .map(|e| {
                e.expect("directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished command printed and how it exited.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> i32 {
        self.status.code().expect("exited, not killed by a signal")
    }

    /// Asserts exit status 0.
    pub fn ok(self) -> Output {
        assert_eq!(self.code(), 0, "command failed: {self:#?}");
        self.no_panic()
    }

    /// Asserts exit status `code`, and that the error is a clean message.
    pub fn fails(self, code: i32) -> Output {
        assert_eq!(self.code(), code, "unexpected exit status: {self:#?}");
        assert!(
            self.stderr.contains("error:"),
            "no error message: {self:#?}"
        );
        self.no_panic()
    }

    /// Standard output and standard error together.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn no_panic(self) -> Output {
        for bad in ["panicked", "RUST_BACKTRACE"] {
            assert!(!self.stderr.contains(bad), "{bad}: {self:#?}");
        }
        self
    }
}

/// A running `memlane` process whose output is being collected.
pub struct Running {
    pub child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    /// Waits for the process to exit (killing it after [`WATCHDOG`]).
    pub fn finish(mut self) -> Output {
        let deadline = Instant::now() + WATCHDOG;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("watchdog: memlane did not exit within {WATCHDOG:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Output {
            status,
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only reached unfinished when a test fails: do not leave it running.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// `memlane --dir DIR ARGS...`, not yet started.
pub fn memlane(dir: &TempDir, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_memlane"));
    cmd.env_remove("MEMLANE_DIR").env_remove("RUST_BACKTRACE");
    cmd.arg("--dir").arg(dir.path()).args(args);
    cmd
}

/// Starts `cmd`, feeding it `stdin` (or nothing).
pub fn start(mut cmd: Command, stdin: Option<&[u8]>) -> Running {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // Wine's CreateProcess now and then fails with ERROR_INTERNAL_ERROR
    // (1359) while other processes start or exit (as in the library's test
    // harness): a second try starts it. Any other error, or a third
    // failure, fails the test.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Ok(child) => break child,
            Err(e) if cfg!(windows) && e.raw_os_error() == Some(1359) && tries < 2 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("start memlane: {e:?}"),
        }
    };
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).expect("write stdin");
    }
    let stdout = Some(read_all(child.stdout.take().unwrap()));
    let stderr = Some(read_all(child.stderr.take().unwrap()));
    Running {
        child,
        stdout,
        stderr,
    }
}

/// Runs `memlane --dir DIR ARGS...` to the end.
pub fn run(dir: &TempDir, args: &[&str]) -> Output {
    start(memlane(dir, args), None).finish()
}

/// Runs `memlane --dir DIR ARGS...` with `stdin` as standard input.
pub fn run_with_stdin(dir: &TempDir, args: &[&str], stdin: &[u8]) -> Output {
    start(memlane(dir, args), Some(stdin)).finish()
}

/// Starts `memlane listen NAME EXTRA...` and waits until it has subscribed.
pub fn listen(dir: &TempDir, name: &str, extra: &[&str]) -> Running {
    static N: AtomicU32 = AtomicU32::new(0);
    let ready = dir.path().join(format!(
        "ready-{name}-{}",
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let mut cmd = memlane(dir, &["listen", name]);
    cmd.arg("--ready-file").arg(&ready).args(extra);
    let mut running = start(cmd, None);
    let deadline = Instant::now() + WATCHDOG;
    while !ready.exists() {
        if let Some(status) = running.child.try_wait().unwrap() {
            panic!(
                "listener exited before subscribing ({status}): {:#?}",
                running.finish()
            );
        }
        assert!(
            Instant::now() < deadline,
            "watchdog: listener never became ready"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::remove_file(&ready).unwrap();
    running
}

/// Waits until `path` exists (a command's ready file), then removes it.
pub fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + WATCHDOG;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "watchdog: {} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::remove_file(path).unwrap();
}

/// Sends `sig` (e.g. `-TERM`, `-STOP`) to `pid` with kill(1).
#[cfg(unix)]
pub fn signal(pid: u32, sig: &str) {
    assert!(std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

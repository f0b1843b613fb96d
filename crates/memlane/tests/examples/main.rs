//! Runs the example programs as real processes: the classic server/client
//! pair (`examples/server.rs`, `examples/client.rs`), the channel pair
//! (`examples/subscriber.rs`, `examples/publisher.rs`), the typed pair
//! (`examples/typed.rs`, `sub` and `pub`) and the request-response pair
//! (`examples/rpc.rs`, `serve` and `call`).
//!
//! The examples are built on first use with the `cargo` that runs these
//! tests (a no-op when they are up to date), and found through cargo's
//! JSON messages, whatever the target directory. Every child gets its own
//! `MEMLANE_DIR`, a fresh temporary directory removed at the end; every
//! wait has a watchdog, so a hang fails the test instead of blocking it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// How long any one child may run before it is killed and the test fails.
const WATCHDOG: Duration = Duration::from_secs(30);

/// A fresh directory for one test's segments, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "memlane-examples-{test}-{}-{}-{nanos:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the temporary directory");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// The names of the entries left in the directory.
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read the temporary directory")
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

/// A running child that is killed (and reaped) if the test ends first.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

impl KillOnDrop {
    /// Waits for the child to exit; kills it and panics after [`WATCHDOG`].
    fn wait_with_watchdog(&mut self, what: &str) -> ExitStatus {
        let deadline = Instant::now() + WATCHDOG;
        loop {
            if let Some(status) = self.0.try_wait().expect("poll the child") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.0.kill();
                let _ = self.0.wait();
                panic!("{what} did not exit within {WATCHDOG:?}: killed");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Builds the examples once per test run and returns the path of each.
///
/// Under Wine a Windows test binary cannot run the host's cargo; there the
/// examples are taken from beside this binary (`<target>/debug/examples`),
/// which `cargo test` builds and `scripts/windows-test.sh` builds first.
fn example(name: &str) -> PathBuf {
    if cfg!(windows) {
        let exe = std::env::current_exe().expect("current exe");
        let path = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in <target>/<profile>/deps")
            .join("examples")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        assert!(
            path.is_file(),
            "{} is missing: build the examples first (`cargo build --examples --target ...`)",
            path.display()
        );
        return path;
    }
    static PATHS: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    let paths = PATHS.get_or_init(build_examples);
    paths
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("cargo built no example named {name}"))
}

/// `cargo build --examples` for this package, in the same profile as this
/// test binary; reads the executables' paths from cargo's JSON messages.
fn build_examples() -> Vec<(String, PathBuf)> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "build",
        "--quiet",
        "-p",
        "memlane",
        "--message-format=json-render-diagnostics",
        "--features",
        "async,schema",
    ]);
    for name in [
        "server",
        "client",
        "publisher",
        "subscriber",
        "typed",
        "async_subscriber",
        "rpc",
        "schema",
    ] {
        cmd.args(["--example", name]);
    }
    if cfg!(not(debug_assertions)) {
        cmd.arg("--release");
    }
    let output = run_with_watchdog(
        &mut cmd,
        Duration::from_secs(600),
        "cargo build --example ...",
    );
    assert!(
        output.status.success(),
        "building the examples failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| {
            line.contains(r#""reason":"compiler-artifact""#)
                && line.contains(r#""kind":["example"]"#)
        })
        .filter_map(|line| {
            Some((
                json_str(line, "name")?,
                PathBuf::from(json_str(line, "executable")?),
            ))
        })
        .collect()
}

/// The first string value of `"key":"..."` in a line of JSON (enough for
/// cargo's messages about these examples: no escapes in names or paths).
fn json_str(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let end = start + line[start..].find('"')?;
    Some(line[start..end].to_string())
}

/// Runs a command to completion, killing it after `limit`.
fn run_with_watchdog(cmd: &mut Command, limit: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Runs an example to completion with `MEMLANE_DIR` set to `dir`.
fn run_example(name: &str, dir: &Path, args: &[&str]) -> Output {
    run_with_watchdog(
        Command::new(example(name))
            .args(args)
            .env("MEMLANE_DIR", dir),
        WATCHDOG,
        name,
    )
}

/// A started server: its stdin (a line stops it), its stdout lines, and
/// the process.
struct Server {
    child: KillOnDrop,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    /// Starts `server NAME TEXT --linger 25` and waits for its `ready` line.
    fn start(dir: &Path, name: &str, text: &str) -> Server {
        let mut child = Command::new(example("server"))
            .args([name, text, "--linger", "25"])
            .env("MEMLANE_DIR", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server example");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("server stdout");
        let mut err = child.stderr.take().expect("server stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let mut child = KillOnDrop(child);
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        match lines.recv_timeout(WATCHDOG) {
            Ok(line) => assert_eq!(line, format!("ready {name}"), "the server's first line"),
            Err(_) => {
                let status = child.0.try_wait().ok().flatten();
                drop(child);
                let text = stderr.join().unwrap_or_default();
                panic!("the server was not ready within {WATCHDOG:?} (exit status: {status:?}); its stderr:\n{text}");
            }
        }
        Server {
            child,
            stdin,
            lines,
            stderr: Some(stderr),
        }
    }

    /// Presses Enter in the server and waits for it to exit.
    fn stop(mut self) {
        let mut stdin = self.stdin.take().expect("server stdin");
        stdin.write_all(b"\n").expect("write to the server");
        drop(stdin);
        let status = self.child.wait_with_watchdog("the server");
        let text = self
            .stderr
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        assert!(
            status.success(),
            "the server failed: {status}; its stderr:\n{text}"
        );
        let rest: Vec<String> = self.lines.try_iter().collect();
        assert!(rest.is_empty(), "unexpected server output: {rest:?}");
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn client_prints_the_servers_text() {
    let dir = TempDir::new("text");
    let text = "hello from the server: ünïcode too";
    let server = Server::start(dir.path(), "classic", text);
    assert_eq!(dir.entries(), ["memlane.classic", "memlane.classic.ready"]);

    let out = run_example("client", dir.path(), &["classic", "--timeout", "10"]);
    assert!(
        out.status.success(),
        "client failed: {}\n{}",
        out.status,
        stderr(&out)
    );
    assert_eq!(stdout(&out), format!("{text}\n"));

    // A second client, opening long after the notification, still sees it.
    let out = run_example("client", dir.path(), &["classic", "--timeout", "10"]);
    assert!(
        out.status.success(),
        "second client failed: {}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), format!("{text}\n"));

    server.stop();
    assert!(
        dir.entries().is_empty(),
        "the server left names behind: {:?}",
        dir.entries()
    );
}

#[test]
fn client_prints_no_message_for_empty_text() {
    let dir = TempDir::new("empty");
    let server = Server::start(dir.path(), "quiet", "");
    let out = run_example("client", dir.path(), &["quiet", "--timeout", "10"]);
    assert!(out.status.success(), "client failed: {}", stderr(&out));
    assert_eq!(stdout(&out), "no message\n");
    server.stop();
}

#[test]
fn client_reports_a_missing_segment_and_exits_1() {
    let dir = TempDir::new("missing");
    let out = run_example("client", dir.path(), &["no-such-segment", "--timeout", "1"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit status; stderr:\n{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "", "nothing on stdout");
    let err = stderr(&out);
    assert!(err.starts_with("client: error: "), "{err}");
    assert!(
        err.contains("no-such-segment"),
        "the error names the segment: {err}"
    );
    assert!(
        err.contains(&dir.path().display().to_string()),
        "the error says where it looked: {err}"
    );
}

#[test]
fn client_reports_a_missing_event_and_exits_1() {
    let dir = TempDir::new("no-event");
    let server = Server::start(dir.path(), "half", "text");
    // Moved away rather than deleted: on Windows a deleted file that the
    // server still holds keeps its name until the server closes it.
    std::fs::rename(
        dir.path().join("memlane.half.ready"),
        dir.path().join("moved-away"),
    )
    .expect("move the event away");
    let out = run_example("client", dir.path(), &["half", "--timeout", "1"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit status; stderr:\n{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("half.ready"), "{}", stderr(&out));
    server.stop();
}

/// Starts the receiving example `name` with `args` in `dir`, waits for its
/// first line on stderr (it has joined: messages sent before would not
/// reach it) and checks that it starts with `joined`, runs the sending
/// example `sender` with `sender_args`, waits for the receiver to exit
/// successfully, and returns what it printed on stdout.
fn receive_what_is_sent(
    dir: &TempDir,
    (name, args, joined): (&str, &[&str], &str),
    (sender, sender_args): (&str, &[&str]),
) -> String {
    let mut sub = Command::new(example(name))
        .args(args)
        .env("MEMLANE_DIR", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start the {name} example: {e}"));
    let out = sub.stdout.take().expect("stdout");
    let err = sub.stderr.take().expect("stderr");
    let mut sub = KillOnDrop(sub);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(WATCHDOG)
        .unwrap_or_else(|_| panic!("the {name} example's first line"));
    assert!(first.starts_with(joined), "{first}");
    let publ = run_example(sender, dir.path(), sender_args);
    assert!(publ.status.success(), "{sender} failed: {}", stderr(&publ));
    let status = sub.wait_with_watchdog(name);
    assert!(status.success(), "the {name} example failed: {status}");
    let mut printed = String::new();
    BufReader::new(out)
        .read_to_string(&mut printed)
        .expect("read stdout");
    printed
}

#[test]
fn subscriber_prints_what_the_publisher_sends() {
    let dir = TempDir::new("chat");
    let printed = receive_what_is_sent(
        &dir,
        (
            "subscriber",
            &["chat", "3", "--timeout", "20"],
            "subscriber: joined channel 'chat'",
        ),
        ("publisher", &["chat", "one", "two\ttab", "three"]),
    );
    assert_eq!(printed, "one\ntwo\\ttab\nthree\n");
    assert!(dir.entries().is_empty(), "left behind: {:?}", dir.entries());
}

#[test]
fn typed_subscriber_prints_what_the_typed_publisher_sends() {
    let dir = TempDir::new("typed");
    let printed = receive_what_is_sent(
        &dir,
        (
            "typed",
            &["sub", "imu", "4", "--timeout", "20"],
            "typed: subscribed to 'imu' (`example::Imu` (plain, 32 bytes",
        ),
        ("typed", &["pub", "imu", "4"]),
    );
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 4, "{printed}");
    assert_eq!(lines[0], "seq 0 t 0 ns accel [0.0, 0.0, 9.81] gyro_z 0");
    assert_eq!(
        lines[3],
        "seq 3 t 3000000 ns accel [0.0, 0.0, 9.81] gyro_z 1.5"
    );
    assert!(dir.entries().is_empty(), "left behind: {:?}", dir.entries());
}

/// The schema pair: `pub` (a process with the Rust type) sends; `show`
/// (using only the schema the channel records) prints JSON lines.
#[test]
fn schema_show_prints_what_pub_sends_as_json() {
    let dir = TempDir::new("schema");
    let publ = run_example("schema", dir.path(), &["pub", "readings", "3"]);
    assert!(publ.status.success(), "pub failed: {}", stderr(&publ));
    let show = run_example("schema", dir.path(), &["show", "readings", "3"]);
    assert!(show.status.success(), "show failed: {}", stderr(&show));
    assert!(
        stderr(&show).contains("'readings' carries struct Reading { seq: u32, station: String, at: Position, temps_c: [f32], note: Option<String>, status: Status }"),
        "{}",
        stderr(&show)
    );
    let printed = String::from_utf8_lossy(&show.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"seq":0,"station":"north-0","at":{"lat":59.91,"lon":10.75},"temps_c":[-1.5,0.0],"note":null,"status":"Ok"}"#,
            r#"{"seq":1,"station":"north-1","at":{"lat":59.91,"lon":11.0},"temps_c":[-1.5,0.25],"note":"windy","status":{"Degraded":{"reason":"low battery"}}}"#,
            r#"{"seq":2,"station":"north-0","at":{"lat":59.91,"lon":11.25},"temps_c":[-1.5,0.5],"note":null,"status":{"Failed":503}}"#,
        ]
    );
    assert!(dir.entries().is_empty(), "left behind: {:?}", dir.entries());
}

#[test]
fn typed_publisher_refuses_an_untyped_channel() {
    let dir = TempDir::new("typed-wrong");
    let ch = memlane::Channel::builder("raw")
        .dir(dir.path())
        .create()
        .unwrap();
    let publ = run_example("typed", dir.path(), &["pub", "raw", "1"]);
    assert!(!publ.status.success());
    let err = stderr(&publ);
    assert!(
        err.contains("created untyped") && err.contains("example::Imu"),
        "{err}"
    );
    drop(ch);
}

#[test]
fn async_subscriber_prints_what_the_publisher_sends() {
    let dir = TempDir::new("achat");
    let printed = receive_what_is_sent(
        &dir,
        (
            "async_subscriber",
            &["achat", "2"],
            "async_subscriber: joined channel 'achat'",
        ),
        ("publisher", &["achat", "one", "two"]),
    );
    assert_eq!(printed, "one\ntwo\n");
    assert!(dir.entries().is_empty(), "left behind: {:?}", dir.entries());
}

#[test]
fn rpc_client_gets_the_sum_from_the_rpc_server() {
    let dir = TempDir::new("rpc");
    // No server yet: a clear error, exit 1.
    let early = run_example("rpc", dir.path(), &["call", "adder", "1", "2"]);
    assert_eq!(early.status.code(), Some(1));
    assert!(stderr(&early).contains("no server"), "{}", stderr(&early));
    let mut server = Command::new(example("rpc"))
        .args(["serve", "adder", "2"])
        .env("MEMLANE_DIR", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the rpc server");
    let out = server.stdout.take().expect("stdout");
    let mut server = KillOnDrop(server);
    let mut first = String::new();
    BufReader::new(out)
        .read_line(&mut first)
        .expect("the server's first line");
    assert_eq!(first.trim(), "ready adder");
    for (a, b, sum) in [("2", "40", "42"), ("7", "8", "15")] {
        let call = run_example("rpc", dir.path(), &["call", "adder", a, b]);
        assert!(call.status.success(), "rpc call failed: {}", stderr(&call));
        assert_eq!(stdout(&call).trim(), sum);
    }
    let status = server.wait_with_watchdog("the rpc server");
    assert!(status.success(), "the rpc server failed: {status}");
    // The clients removed their files; the request channel stays for the
    // next server.
    assert_eq!(dir.entries(), vec!["memlane.adder.rq".to_string()]);
}

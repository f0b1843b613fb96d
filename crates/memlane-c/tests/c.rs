//! The C side, built and run from `cargo test`: the C test program
//! (`tests/c/test_memlane.c`) compiled with the system C compiler (`$CC`,
//! else `cc`) against the static and the shared library cargo built for
//! this test, and the C example pair (`examples/server.c`,
//! `examples/client.c`) run as two processes. Each test runs its programs
//! with `MEMLANE_DIR` set to a private directory, checks that they left
//! nothing in it, and removes it.
//!
//! Unix only: the C test forks, and the link flags are those of Linux and
//! the BSDs (the Windows build of the crate is checked by clippy).
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// How long any one C program may run before it is killed and the test
/// fails (they take well under a second; this only turns a hang into a
/// failure).
const WATCHDOG: Duration = Duration::from_secs(60);

/// Where cargo put this build's `libmemlane_c.{a,so}`: beside the test
/// binary (`target/<profile>/deps`).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the deps directory").to_path_buf();
    assert!(
        deps.join("libmemlane_c.a").exists(),
        "no libmemlane_c.a in {}: cargo builds it with the tests (crate-type staticlib)",
        deps.display()
    );
    deps
}

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A private directory, removed on drop (also when a test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "memlane-c-{what}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    /// The names left in the directory.
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .expect("read the temporary directory")
            .map(|e| {
                e.expect("a directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The compiled C programs, built once per run of this test binary into
/// `target/<profile>/memlane-c-tests/` (build output, like the library).
struct Programs {
    test_static: PathBuf,
    test_shared: PathBuf,
    server: PathBuf,
    client: PathBuf,
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_string())
}

/// Compiles `source` into `out` with `link` arguments; panics with the
/// compiler's output on failure.
fn compile(source: &Path, out: &Path, link: &[String]) {
    let include = crate_dir().join("include");
    let mut cmd = Command::new(cc());
    cmd.arg("-std=c11")
        .args(["-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(&include)
        .arg(source)
        .arg("-o")
        .arg(out)
        .args(link);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {:?} ({e}); set CC", cc()));
    assert!(
        output.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let lib = lib_dir();
        let out = lib
            .parent()
            .expect("the profile directory")
            .join("memlane-c-tests");
        std::fs::create_dir_all(&out).expect("create the output directory");
        // The static library needs the system libraries Rust's std uses
        // (`cargo rustc -p memlane-c --crate-type staticlib -- --print
        // native-static-libs` lists them).
        let static_link: Vec<String> = [lib.join("libmemlane_c.a").display().to_string()]
            .into_iter()
            .chain(
                [
                    "-lgcc_s",
                    "-lutil",
                    "-lrt",
                    "-lpthread",
                    "-lm",
                    "-ldl",
                    "-lc",
                ]
                .map(String::from),
            )
            .collect();
        let shared_link = vec![
            format!("-L{}", lib.display()),
            "-lmemlane_c".to_string(),
            format!("-Wl,-rpath,{}", lib.display()),
        ];
        let test_src = crate_dir().join("tests/c/test_memlane.c");
        let programs = Programs {
            test_static: out.join("test_memlane_static"),
            test_shared: out.join("test_memlane_shared"),
            server: out.join("server"),
            client: out.join("client"),
        };
        compile(&test_src, &programs.test_static, &static_link);
        compile(&test_src, &programs.test_shared, &shared_link);
        compile(
            &crate_dir().join("examples/server.c"),
            &programs.server,
            &shared_link,
        );
        compile(
            &crate_dir().join("examples/client.c"),
            &programs.client,
            &shared_link,
        );
        programs
    })
}

/// A command for one of the C programs. `LD_LIBRARY_PATH` is removed:
/// cargo sets it to directories that include `target/<profile>`, whose
/// copy of `libmemlane_c.so` `cargo test` does not refresh, and the loader
/// searches it before the rpath the programs were linked with.
fn command(program: &Path, dir: &TempDir) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("MEMLANE_DIR", &dir.0).env_remove("LD_LIBRARY_PATH");
    cmd
}

fn run(program: &Path, dir: &TempDir, args: &[&str]) -> Output {
    let child = command(program, dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    finish(child, &program.display().to_string())
}

/// Waits for `child` and collects its output, killing it (and failing)
/// if it runs longer than [`WATCHDOG`].
fn finish(mut child: Child, what: &str) -> Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + WATCHDOG;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a C program") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} ran longer than {WATCHDOG:?} and was killed (a hang?)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("read stdout"),
        stderr: stderr.join().expect("read stderr"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn check_test_program(program: &Path, what: &str) {
    let dir = TempDir::new(what);
    let out = run(program, &dir, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "the C test program ({what}) failed: {:?}\n{stdout}{stderr}",
        out.status
    );
    // "N passed, 0 failed", with N a real count.
    let summary = stdout.lines().last().unwrap_or_default();
    let passed: u32 = summary
        .split(" passed")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no summary line in {stdout:?}"));
    assert!(passed >= 150, "only {passed} checks ran: {summary}");
    assert!(summary.ends_with(", 0 failed"), "{summary}");
    assert_eq!(
        dir.leftovers(),
        Vec::<String>::new(),
        "the C test left names behind"
    );
}

#[test]
fn c_test_program_against_the_static_library() {
    check_test_program(&programs().test_static, "static");
}

#[test]
fn c_test_program_against_the_shared_library() {
    check_test_program(&programs().test_shared, "shared");
}

/// The classic pair, as two processes: the server creates and signals,
/// the client reads the message; once the server has removed its names,
/// the client says it cannot open the mapping.
#[test]
fn c_example_server_and_client() {
    let programs = programs();
    let dir = TempDir::new("pair");
    let mut server = command(&programs.server, &dir)
        .args(["classic", "hello from the C server"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let (tx, rx) = mpsc::channel();
    let stdout = server.stdout.take().expect("the server's stdout");
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let Ok(line) = rx.recv_timeout(WATCHDOG) else {
        let _ = server.kill();
        let _ = server.wait();
        panic!("the server said nothing for {WATCHDOG:?}");
    };
    assert!(
        line.contains("signalled 'classic.ready'"),
        "server said {line:?}"
    );

    let out = run(&programs.client, &dir, &["classic", "5000"]);
    assert!(out.status.success(), "client: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "message: hello from the C server\n");

    // Enter: the server removes its names and exits.
    server
        .stdin
        .take()
        .expect("the server's stdin")
        .write_all(b"\n")
        .expect("press Enter");
    let out = finish(server, "the server");
    assert!(out.status.success(), "server: {}", text(&out.stderr));
    assert_eq!(dir.leftovers(), Vec::<String>::new());

    let out = run(&programs.client, &dir, &["classic", "100"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("could not open the mapping 'classic' (MEMLANE_NOT_FOUND)")
            && stderr.contains("no segment 'classic'"),
        "{stderr}"
    );
}

/// A segment nobody wrote: the client says "no message" (after its wait
/// on the event times out).
#[test]
fn c_example_client_on_an_empty_segment() {
    let programs = programs();
    let dir = TempDir::new("empty");
    let seg = memlane::Segment::builder("quiet")
        .size(1_000_000)
        .dir(&dir.0)
        .create()
        .expect("create the segment");
    let ready = memlane::Event::builder("quiet.ready")
        .dir(&dir.0)
        .create()
        .expect("create the event");
    let out = run(&programs.client, &dir, &["quiet", "50"]);
    assert!(out.status.success(), "client: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "no message\n");
    assert!(text(&out.stderr).contains("no 'data ready' signal within 50 ms"));
    drop((seg, ready));
}

/// Bad arguments to the examples: a message over the 1024-byte slot is
/// refused with a clear error, and nothing is created.
#[test]
fn c_example_server_refuses_a_message_too_large() {
    let programs = programs();
    let dir = TempDir::new("large");
    let big = "x".repeat(1024);
    let out = run(&programs.server, &dir, &["big", &big]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("the message is 1024 bytes"));
    assert_eq!(dir.leftovers(), Vec::<String>::new());
}

/// `install.sh` lays out the header, both libraries and the pkg-config
/// files; a program built with `pkg-config --cflags --libs memlane` (the
/// shared library) and `memlane-static` links and runs.
#[test]
fn install_script_and_pkg_config() {
    let prefix = TempDir::new("prefix");
    let status = Command::new("bash")
        .arg(crate_dir().join("install.sh"))
        .arg(&prefix.0)
        .arg(lib_dir())
        .stdout(Stdio::null())
        .status()
        .expect("run install.sh");
    assert!(status.success(), "install.sh failed: {status:?}");
    for file in [
        "include/memlane.h",
        "lib/libmemlane_c.a",
        "lib/libmemlane_c.so",
        "lib/pkgconfig/memlane.pc",
        "lib/pkgconfig/memlane-static.pc",
        "lib/cmake/memlane/memlane-config.cmake",
    ] {
        assert!(
            prefix.0.join(file).is_file(),
            "install.sh did not install {file}"
        );
    }
    for package in ["memlane", "memlane-static"] {
        let flags = Command::new("pkg-config")
            .args(["--cflags", "--libs", package])
            .env("PKG_CONFIG_PATH", prefix.0.join("lib/pkgconfig"))
            .output()
            .expect("run pkg-config (install the pkg-config package)");
        assert!(
            flags.status.success(),
            "pkg-config {package}: {}",
            text(&flags.stderr)
        );
        let flags: Vec<String> = text(&flags.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        let program = prefix.0.join(format!("client-{package}"));
        let mut cmd = Command::new(cc());
        cmd.arg(crate_dir().join("examples/client.c"))
            .arg("-o")
            .arg(&program)
            .args(&flags);
        let out = cmd.output().expect("run the C compiler");
        assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
        let dir = TempDir::new("pc-run");
        let out = run(&program, &dir, &["absent", "10"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("MEMLANE_NOT_FOUND"));
    }
}

/// The header works from C++ (`$CXX`, else `c++`): compiled with
/// warnings as errors, linked to the shared library, run.
#[test]
fn header_works_from_cplusplus() {
    let lib = lib_dir();
    let dir = TempDir::new("cxx");
    let program = dir.0.join("cxx_smoke");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".to_string());
    let mut cmd = Command::new(&cxx);
    cmd.args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(crate_dir().join("include"))
        .arg(crate_dir().join("tests/c/cxx_smoke.cpp"))
        .arg("-o")
        .arg(&program)
        .arg(format!("-L{}", lib.display()))
        .arg("-lmemlane_c")
        .arg(format!("-Wl,-rpath,{}", lib.display()));
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C++ compiler {cxx:?} ({e}); set CXX"));
    assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
    let run_dir = TempDir::new("cxx-run");
    let out = run(&program, &run_dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "MEMLANE_NOT_FOUND\n");
}

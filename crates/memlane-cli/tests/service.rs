//! `memlane serve` and `memlane call`: a served shell command answers
//! calls; its failures and time-outs reach the caller as errors; a call
//! with no server fails at once. (Unix: the served command is `sh`.)
#![cfg(unix)]

mod common;

use common::{memlane, run, start, wait_for_file, TempDir};

const SCRIPT: &str = r#"x=$(cat); case "$x" in slow) sleep 30;; fail) echo broken >&2; exit 3;; esac; printf 'got %s' "$x""#;

#[test]
fn serve_answers_calls_and_reports_failures() {
    let dir = TempDir::new("serve");
    let out = run(&dir, &["call", "svc", "x"]).fails(1);
    assert!(out.stderr.contains("no server"), "{out:#?}");

    let ready = dir.path().join("ready");
    let mut cmd = memlane(
        &dir,
        &["serve", "svc", "--timeout", "500ms", "--concurrency", "2"],
    );
    cmd.arg("--ready-file")
        .arg(&ready)
        .args(["--", "sh", "-c", SCRIPT]);
    let server = start(cmd, None);
    wait_for_file(&ready);

    let out = run(&dir, &["call", "svc", "hello"]).ok();
    assert_eq!(out.stdout, "got hello");
    // Several callers at once, each gets its own answer.
    let calls: Vec<_> = (0..6)
        .map(|i| start(memlane(&dir, &["call", "svc", &format!("n{i}")]), None))
        .collect();
    for (i, c) in calls.into_iter().enumerate() {
        assert_eq!(c.finish().ok().stdout, format!("got n{i}"));
    }
    let out = run(&dir, &["call", "svc", "fail"]).fails(1);
    assert!(
        out.stderr.contains("exit status: 3") && out.stderr.contains("broken"),
        "{out:#?}"
    );
    let out = run(&dir, &["call", "svc", "slow"]).fails(1);
    assert!(out.stderr.contains("was killed"), "{out:#?}");
    // Request on standard input.
    let out = common::run_with_stdin(&dir, &["call", "svc"], b"piped").ok();
    assert_eq!(out.stdout, "got piped");

    drop(server); // killed
    let out = run(&dir, &["call", "svc", "x", "--timeout", "60s"]).fails(1);
    assert!(out.stderr.contains("no live server"), "{out:#?}");
    run(&dir, &["rm", "svc.rq"]).ok();
}

#[test]
fn serve_count_stops_it_and_calls_then_fail() {
    let dir = TempDir::new("serve-count");
    let ready = dir.path().join("ready");
    let mut cmd = memlane(&dir, &["serve", "svc2", "--count", "1"]);
    cmd.arg("--ready-file").arg(&ready).args(["--", "cat"]);
    let server = start(cmd, None);
    wait_for_file(&ready);
    assert_eq!(run(&dir, &["call", "svc2", "once"]).ok().stdout, "once");
    // --count 1: it has exited.
    assert!(server.finish().status.success());
    let out = run(&dir, &["call", "svc2", "again"]).fails(1);
    assert!(out.stderr.contains("no live server"), "{out:#?}");
    run(&dir, &["rm", "svc2.rq"]).ok();
}

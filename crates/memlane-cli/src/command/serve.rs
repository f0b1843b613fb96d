//! `memlane serve`: answers each request of a service by running a command
//! with the request on standard input and replying with its standard output.
//!
//! Requests are received on this thread; each runs in a thread of its own,
//! at most `--concurrency` at once (beyond that, requests stay queued in
//! the service, where another server may take them). A command that exits
//! with a failure, cannot start or outlives `--timeout` (it is then killed)
//! gets an error response, which `memlane call` reports.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use memlane::service::Request;
use memlane::ServeError;

use crate::cli::ServeArgs;
use crate::interrupt::Interrupts;
use crate::output;

/// How often a waiting server checks for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Serves until interrupted (or `--count` requests were answered).
pub fn run(dir: Option<&Path>, args: ServeArgs) -> anyhow::Result<()> {
    let interrupts = Interrupts::install()?;
    let mut builder = memlane::service(&args.name)
        .max_message(usize::try_from(args.max_request).unwrap_or(usize::MAX));
    if let Some(d) = dir {
        builder = builder.dir(d);
    }
    let mut server = builder
        .server()
        .with_context(|| format!("starting service '{}'", args.name))?;
    if let Some(ready) = &args.ready_file {
        std::fs::write(ready, format!("{}\n", std::process::id()))
            .with_context(|| format!("creating the ready file {}", output::path(ready)))?;
    }
    let (done_tx, done_rx) = mpsc::channel::<(Request, Result<Vec<u8>, String>)>();
    let mut running = 0u32;
    let mut answered = 0u64;
    let limit = args.count.unwrap_or(u64::MAX);
    let mut received = 0u64;
    loop {
        // Send back what finished.
        while let Ok((req, result)) = done_rx.try_recv() {
            running -= 1;
            answered += 1;
            reply(&mut server, &req, result);
        }
        if answered >= limit {
            break;
        }
        if let Some(status) = interrupts.caught() {
            drop(server);
            std::process::exit(status);
        }
        if running >= args.concurrency || received >= limit {
            // At the bound: wait for one to finish.
            if let Ok((req, result)) = done_rx.recv_timeout(SIGNAL_CHECK) {
                running -= 1;
                answered += 1;
                reply(&mut server, &req, result);
            }
            continue;
        }
        let req = match server.recv_timeout(if running > 0 {
            Duration::from_millis(1)
        } else {
            SIGNAL_CHECK
        }) {
            Ok(r) => r,
            Err(ServeError::Timeout) => continue,
            Err(e) => return Err(e).context("receiving a request"),
        };
        received += 1;
        running += 1;
        let tx = done_tx.clone();
        let command = args.command.clone();
        let timeout = args.timeout;
        std::thread::spawn(move || {
            let result = run_command(&command, &req.payload, timeout);
            let _ = tx.send((req, result));
        });
    }
    Ok(())
}

fn reply(server: &mut memlane::Server, req: &Request, result: Result<Vec<u8>, String>) {
    let sent = match result {
        Ok(out) => match server.respond(req, &out) {
            Err(ServeError::TooLarge { len, max }) => server.respond_error(
                req,
                &format!("the response is {len} bytes; the client takes at most {max}"),
            ),
            r => r,
        },
        Err(msg) => server.respond_error(req, &msg),
    };
    if let Err(e) = sent {
        eprintln!("warning: response to request {} not sent: {e}", req.id);
    }
}

/// Runs `command` with `input` on stdin; its stdout, or an error message.
fn run_command(
    command: &[std::ffi::OsString],
    input: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let name = command[0].to_string_lossy().into_owned();
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run '{name}': {e}"))?;
    let mut stdin = child.stdin.take();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&input);
        }
    });
    let mut stdout = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            v
        })
    });
    let mut stderr = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            v
        })
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "'{name}' did not finish within {timeout:?} and was killed"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("waiting for '{name}': {e}")),
        }
    };
    let _ = writer.join();
    let out = stdout
        .take()
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    let err = stderr
        .take()
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    if status.success() {
        Ok(out)
    } else {
        let err = String::from_utf8_lossy(&err);
        Err(format!("'{name}' failed ({status}): {}", err.trim()))
    }
}

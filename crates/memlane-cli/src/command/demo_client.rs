//! `memlane demo-client` (hidden): the client half of `memlane demo`, run
//! by it in a separate process. It opens both channels by name, subscribes
//! to the requests and says so (`subscribed`), prints the
//! text messages it receives, answers `ready`, then echoes each round-trip
//! request.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::cli::DemoClientArgs;
use crate::command::open_channel;
use crate::output;

/// How long the client waits for any one message before giving up (the
/// server may have died).
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the client.
pub fn run(dir: Option<&Path>, args: DemoClientArgs) -> anyhow::Result<()> {
    let req = open_channel(dir, &args.req)?;
    let resp = open_channel(dir, &args.resp)?;
    let mut requests = req.subscriber()?;
    let mut answers = resp.publisher()?;
    // The server sends nothing until it knows this process listens.
    answers.send(b"subscribed")?;
    let mut out = std::io::stdout().lock();
    for i in 1..=args.messages {
        let msg = requests
            .recv_timeout(TIMEOUT)
            .with_context(|| format!("demo client: waiting for text message {i}"))?;
        writeln!(out, "client received: {}", output::escape(&msg))?;
    }
    out.flush()?;
    answers.send(b"ready")?;
    for i in 0..args.round_trips {
        let msg = requests
            .recv_timeout(TIMEOUT)
            .with_context(|| format!("demo client: waiting for round trip {i}"))?;
        answers.send(&msg)?;
    }
    Ok(())
}

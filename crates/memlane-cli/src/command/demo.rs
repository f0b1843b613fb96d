//! `memlane demo`: the server half of a two-process demonstration.
//!
//! It creates a request and a response channel, starts a copy of this
//! program as `memlane demo-client` in a separate process, which opens
//! both by name, then
//!
//! 1. waits until the client says, on the response channel, that it has
//!    subscribed to the request channel (only messages sent after that
//!    reach it);
//! 2. sends a few text messages, which the client prints, and waits for the
//!    client's `ready` on the response channel;
//! 3. runs round trips: an 8-byte counter out, the client echoes it back;
//!    each round-trip time goes into a histogram, reported with the
//!    one-way latency (half of it).
//!
//! Guards remove both channels and reap the child on every path out.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hdrhistogram::Histogram;
use memlane::{Channel, Publisher, RecvTimeoutError, SendTimeoutError, Subscriber};

use crate::cli::DemoArgs;
use crate::output;

/// How long the server waits for any one step of the client.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a wait looks at whether the client has died.
const POLL: Duration = Duration::from_millis(100);

/// Removes the demo's channels when dropped.
struct Channels {
    dir: Option<PathBuf>,
    names: Vec<String>,
}

impl Drop for Channels {
    fn drop(&mut self) {
        for name in &self.names {
            if let Err(e) = memlane::remove(self.dir.as_deref(), name) {
                eprintln!("warning: could not remove demo channel '{name}': {e}");
            }
        }
    }
}

/// Stops and reaps the client process when dropped, unless already reaped.
struct Client {
    child: Child,
    status: Option<ExitStatus>,
}

impl Client {
    /// Fails if the client has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self
            .child
            .try_wait()
            .context("checking on the demo client")?
        {
            self.status = Some(status);
            bail!("the demo client process exited early ({status}); see its messages above");
        }
        Ok(())
    }

    /// Waits up to `timeout` for the client to exit and returns its status.
    fn wait(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .context("waiting for the demo client")?
            {
                self.status = Some(status);
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("the demo client did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the demo.
pub fn run(dir: Option<&Path>, args: DemoArgs) -> anyhow::Result<()> {
    let pid = std::process::id();
    let req_name = format!("demo-{pid}-req");
    let resp_name = format!("demo-{pid}-resp");
    let create = |name: &str| {
        let mut builder = Channel::builder(name).capacity(64 << 10);
        if let Some(dir) = dir {
            builder = builder.dir(dir);
        }
        builder
            .create()
            .with_context(|| format!("creating the demo channel '{name}'"))
    };
    let mut channels = Channels {
        dir: dir.map(Path::to_path_buf),
        names: Vec::new(),
    };
    let req = create(&req_name)?;
    channels.names.push(req_name.clone());
    let resp = create(&resp_name)?;
    channels.names.push(resp_name.clone());
    println!("server (pid {pid}): created channels '{req_name}' and '{resp_name}'");

    // Subscribe before the client can answer, so no answer is missed.
    let mut answers = resp.subscriber()?;
    let mut requests = req.publisher()?;

    let exe = std::env::current_exe().context("finding this program to start the demo client")?;
    let mut command = Command::new(&exe);
    if let Some(dir) = dir {
        command.arg("--dir").arg(dir);
    }
    command
        .arg("demo-client")
        .args(["--req", &req_name, "--resp", &resp_name])
        .args(["--messages", &args.messages.to_string()])
        .args(["--round-trips", &args.round_trips.to_string()])
        .stdin(Stdio::null());
    let child = command
        .spawn()
        .with_context(|| format!("starting the demo client {}", output::path(&exe)))?;
    let mut client = Client {
        child,
        status: None,
    };
    println!("server: started client process {}", client.child.id());

    // 1. Wait for the client to subscribe: it says so on the response
    //    channel, which this process subscribed to before starting it.
    let hello = recv(&mut answers, &mut client, "the client's subscribed message")?;
    if hello != b"subscribed" {
        bail!(
            "unexpected first answer from the demo client: {}",
            output::escape(&hello)
        );
    }
    println!("server: the client subscribed to '{req_name}'");

    // 2. A few text messages.
    for i in 1..=args.messages {
        let text = format!("hello #{i} from the server (pid {pid})");
        println!("server sent:     {text}");
        send(&mut requests, text.as_bytes(), &mut client)?;
    }
    let ready = recv(&mut answers, &mut client, "the client's ready message")?;
    if ready != b"ready" {
        bail!(
            "unexpected answer from the demo client: {}",
            output::escape(&ready)
        );
    }

    // 3. Round trips.
    let mut rtt = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    for i in 0..u64::from(args.round_trips) {
        let ping = i.to_le_bytes();
        let start = Instant::now();
        send(&mut requests, &ping, &mut client)?;
        let pong = recv(&mut answers, &mut client, "an echo")?;
        let elapsed = start.elapsed();
        if pong != ping {
            bail!(
                "round trip {i}: the echo {} does not match the request {}",
                output::hex(&pong),
                output::hex(&ping)
            );
        }
        rtt.saturating_record(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1));
    }
    let status = client.wait(STEP_TIMEOUT)?;
    if !status.success() {
        bail!("the demo client failed ({status})");
    }
    if args.round_trips > 0 {
        print_latency(&rtt);
    }
    drop(channels);
    println!("server: removed both channels; done");
    Ok(())
}

/// Sends one message, failing if the client dies or stops reading.
fn send(publisher: &mut Publisher, msg: &[u8], client: &mut Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        match publisher.send_timeout(msg, POLL) {
            Ok(()) => return Ok(()),
            Err(SendTimeoutError::Timeout) => {}
            Err(e) => return Err(anyhow!(e)),
        }
        client.check_alive()?;
        if Instant::now() >= deadline {
            bail!(
                "waited {STEP_TIMEOUT:?} for the demo client to make room in the request channel"
            );
        }
    }
}

/// Receives one message, failing if the client dies or takes too long.
fn recv(sub: &mut Subscriber, client: &mut Client, what: &str) -> anyhow::Result<Vec<u8>> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        match sub.recv_timeout(POLL) {
            Ok(msg) => return Ok(msg.to_vec()),
            Err(RecvTimeoutError::Timeout) => {}
            Err(e) => return Err(anyhow!(e)),
        }
        client.check_alive()?;
        if Instant::now() >= deadline {
            bail!("waited {STEP_TIMEOUT:?} for {what} from the demo client");
        }
    }
}

/// Prints the percentiles of the round-trip times and of their halves.
fn print_latency(rtt: &Histogram<u64>) {
    let points = [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)];
    println!("latency over {} round trips:", rtt.len());
    let header: String = points.iter().map(|(n, _)| format!("{n:>11}")).collect();
    println!("{:<12}{header}{:>11}", "", "max");
    for (label, div) in [("one-way", 2), ("round trip", 1)] {
        let cells: String = points
            .iter()
            .map(|(_, q)| format!("{:>11}", output::nanos(rtt.value_at_percentile(*q) / div)))
            .collect();
        println!("{label:<12}{cells}{:>11}", output::nanos(rtt.max() / div));
    }
    println!("(one-way = round trip / 2)");
}

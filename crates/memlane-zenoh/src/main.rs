//! `memlane-bridge` (also `memlane bridge`): forwards memlane channels and
//! latest-value slots over Zenoh. See `docs/BRIDGE.md`.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use memlane_zenoh::config::{BridgeConfig, Direction, FullPolicy, Route};
use memlane_zenoh::wire::Kind;
use memlane_zenoh::Bridge;

/// Forwards memlane channels and latest-value slots to Zenoh key
/// expressions and back, so the same names work on several machines.
///
/// Counters (forwarded, dropped, bytes, per direction) are printed on
/// SIGUSR1, on each line read from standard input, and at exit. It stops,
/// with its final counters, on SIGINT/SIGTERM (Windows: Ctrl-C, Ctrl-Break)
/// or a line `quit` on standard input. Logs go to standard error (RUST_LOG
/// sets the level).
#[derive(Debug, Parser)]
#[command(name = "memlane-bridge", version, after_help = EXAMPLES)]
struct Args {
    /// Forward local channel NAME to Zenoh (key KEYEXPR, default PREFIX/NAME).
    #[arg(long = "out", value_name = "NAME[=KEYEXPR]")]
    out: Vec<String>,
    /// Forward Zenoh key KEYEXPR (default PREFIX/NAME) into local channel NAME.
    #[arg(long = "in", value_name = "NAME[=KEYEXPR]")]
    inbound: Vec<String>,
    /// Both ways at once (no echo: the bridge never sends back what it received).
    #[arg(long, value_name = "NAME[=KEYEXPR]")]
    both: Vec<String>,
    /// As --out, for a latest-value slot (the newest value also answers Zenoh queries).
    #[arg(long, value_name = "NAME[=KEYEXPR]")]
    latest_out: Vec<String>,
    /// As --in, for a latest-value slot (starts from the newest value other bridges hold).
    #[arg(long, value_name = "NAME[=KEYEXPR]")]
    latest_in: Vec<String>,
    /// As --both, for a latest-value slot.
    #[arg(long, value_name = "NAME[=KEYEXPR]")]
    latest_both: Vec<String>,
    /// Routes and settings from a TOML file (see docs/BRIDGE.md); command-line
    /// routes are added to its routes, and options given here override its settings.
    #[arg(short, long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Zenoh's own configuration file (JSON5 or YAML), passed to Zenoh as is.
    #[arg(long, value_name = "FILE.json5")]
    zenoh_config: Option<PathBuf>,
    /// Set one Zenoh configuration key, e.g. --zenoh-set 'scouting/multicast/enabled=false'.
    #[arg(long, value_name = "PATH=JSON5")]
    zenoh_set: Vec<String>,
    /// Zenoh mode: peer (default), client (talks to a router) or router.
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// Listen on a Zenoh endpoint, e.g. tcp/0.0.0.0:7447 (repeatable).
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// Connect to a Zenoh endpoint, e.g. tcp/10.0.0.2:7447 (repeatable; retried until it answers).
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// Turn off multicast scouting (peers then find each other only through listed endpoints).
    #[arg(long)]
    no_multicast_scouting: bool,
    /// When a local ring is full: block (hold the remote publishers back; while its subscribers
    /// read nothing for half Zenoh's lease, drop and count) or drop (and count). A route in a
    /// --config file may set its own `full`, which wins.
    #[arg(long, value_name = "block|drop")]
    full: Option<String>,
    /// Key prefix for routes given without a key expression.
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
    /// Directory of the local names (default $MEMLANE_DIR, else /dev/shm).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Ring capacity (bytes) of channels the bridge has to create.
    #[arg(long, value_name = "BYTES")]
    capacity: Option<u64>,
    /// Largest message of channels and slots the bridge has to create.
    #[arg(long, value_name = "BYTES")]
    max_message: Option<usize>,
    /// Polls of the bridge's local subscribers before they sleep (default 0: at once).
    #[arg(long, value_name = "POLLS")]
    spin: Option<u32>,
    /// Create missing channels with membarrier-ordered wake-ups (default: fences; see docs/BRIDGE.md).
    #[arg(long)]
    membarrier: bool,
    /// Write the counters as JSON to FILE every 200 ms and at exit (replaced atomically).
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// Also print the counters every SECONDS.
    #[arg(long, value_name = "SECONDS")]
    stats_every: Option<f64>,
}

const EXAMPLES: &str = "Examples:
  # machine A (10.0.0.1): publish local channel 'imu' on Zenoh key memlane/imu
  memlane-bridge --out imu --listen tcp/0.0.0.0:7447
  # machine B: receive it into its own channel 'imu'
  memlane-bridge --in imu --connect tcp/10.0.0.1:7447
  # one channel shared both ways, through a router
  memlane-bridge --both chat --mode client --connect tcp/router:7447";

fn routes_of(
    specs: &[String],
    direction: Direction,
    kind: Kind,
    into: &mut Vec<Route>,
) -> anyhow::Result<()> {
    for s in specs {
        into.push(Route::parse(s, direction, kind)?);
    }
    Ok(())
}

fn bridge_config(args: &Args) -> anyhow::Result<BridgeConfig> {
    let mut cfg = match &args.config {
        Some(p) => BridgeConfig::from_toml_file(p)?,
        None => BridgeConfig::default(),
    };
    let r = &mut cfg.routes;
    routes_of(&args.out, Direction::Out, Kind::Channel, r)?;
    routes_of(&args.inbound, Direction::In, Kind::Channel, r)?;
    routes_of(&args.both, Direction::Both, Kind::Channel, r)?;
    routes_of(&args.latest_out, Direction::Out, Kind::Latest, r)?;
    routes_of(&args.latest_in, Direction::In, Kind::Latest, r)?;
    routes_of(&args.latest_both, Direction::Both, Kind::Latest, r)?;
    if let Some(f) = &args.full {
        cfg.full = match f.as_str() {
            "block" => FullPolicy::Block,
            "drop" => FullPolicy::Drop,
            other => anyhow::bail!("--full {other:?}: expected block or drop"),
        };
    }
    if let Some(p) = &args.prefix {
        cfg.prefix = p.clone();
    }
    if args.dir.is_some() {
        cfg.dir = args.dir.clone();
    }
    if args.capacity.is_some() {
        cfg.capacity = args.capacity;
    }
    if let Some(spin) = args.spin {
        cfg.spin = spin;
    }
    if args.membarrier {
        cfg.membarrier = true;
    }
    if args.max_message.is_some() {
        cfg.max_message = args.max_message;
    }
    Ok(cfg)
}

fn zenoh_config(args: &Args) -> anyhow::Result<memlane_zenoh::zenoh::Config> {
    use memlane_zenoh::zenoh::Config;
    let zerr = |e: memlane_zenoh::zenoh::Error| anyhow::anyhow!("{e}");
    let mut z = match &args.zenoh_config {
        Some(p) => Config::from_file(p)
            .map_err(zerr)
            .with_context(|| format!("Zenoh configuration {}", p.display()))?,
        None => Config::default(),
    };
    let json_list = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
    if let Some(m) = &args.mode {
        z.insert_json5("mode", &serde_json::to_string(m)?)
            .map_err(zerr)
            .context("--mode")?;
    }
    if !args.listen.is_empty() {
        z.insert_json5("listen/endpoints", &json_list(&args.listen))
            .map_err(zerr)
            .context("--listen")?;
    }
    if !args.connect.is_empty() {
        z.insert_json5("connect/endpoints", &json_list(&args.connect))
            .map_err(zerr)
            .context("--connect")?;
    }
    if args.no_multicast_scouting {
        z.insert_json5("scouting/multicast/enabled", "false")
            .map_err(zerr)?;
    }
    for s in &args.zenoh_set {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("--zenoh-set {s:?}: expected PATH=JSON5"))?;
        z.insert_json5(k, v)
            .map_err(zerr)
            .with_context(|| format!("--zenoh-set {s:?}"))?;
    }
    Ok(z)
}

enum Event {
    Print,
    Stop(&'static str),
}

fn write_stats_json(path: &PathBuf, bridge: &Bridge) {
    let tmp = path.with_extension("tmp");
    let json = serde_json::to_string_pretty(&bridge.stats()).expect("stats serialize");
    if std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, path))
        .is_err()
    {
        tracing::warn!(path = %path.display(), "cannot write the stats file");
    }
}

#[cfg(unix)]
fn watch_signals(tx: mpsc::Sender<Event>) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGUSR1])?;
    std::thread::spawn(move || {
        for s in signals.forever() {
            let ev = match s {
                SIGUSR1 => Event::Print,
                SIGINT => Event::Stop("SIGINT"),
                _ => Event::Stop("SIGTERM"),
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    Ok(())
}

#[cfg(windows)]
fn watch_signals(tx: mpsc::Sender<Event>) -> anyhow::Result<()> {
    // signal-hook installs its handler with the C runtime's `signal`, whose
    // console control handler raises SIGINT for Ctrl-C and SIGBREAK for
    // Ctrl-Break (as in the memlane command); a thread turns the flag into
    // a stop.
    use signal_hook::consts::{SIGBREAK, SIGINT, SIGTERM};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let flag = Arc::new(AtomicUsize::new(0));
    for sig in [SIGINT, SIGBREAK, SIGTERM] {
        signal_hook::flag::register_usize(sig, Arc::clone(&flag), sig as usize)
            .with_context(|| format!("installing the handler for signal {sig}"))?;
    }
    std::thread::spawn(move || loop {
        let why = match flag.load(Ordering::Relaxed) {
            0 => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            s if s == SIGBREAK as usize => "Ctrl-Break",
            _ => "Ctrl-C",
        };
        let _ = tx.send(Event::Stop(why));
        return;
    });
    Ok(())
}

/// What a line read on standard input asks for: `quit` (or `q`, `exit`,
/// `stop`) stops the bridge as SIGTERM does — the way to stop it where
/// there are no signals to send (a supervisor on Windows, a test) — and
/// any other line prints the counters.
fn stdin_event(line: &str) -> Event {
    match line.trim() {
        "quit" | "q" | "exit" | "stop" => Event::Stop("quit on standard input"),
        _ => Event::Print,
    }
}

/// Set in the environment of a bridge that restarted itself: how many
/// times it did (see [`restart`]).
const RESTARTS_ENV: &str = "MEMLANE_BRIDGE_RESTARTS";

/// The exit status of a bridge that must be started again and cannot do it
/// itself (not on Unix): `EX_TEMPFAIL`, for a supervisor to act on.
const EXIT_RESTART: u8 = 75;

/// How a run ends.
enum Ending {
    /// Stopped, as asked.
    Stopped,
    /// Its Zenoh session lost a remote bridge it still routes to
    /// (`Bridge::split`): to be started again.
    Split,
}

/// Starts the bridge afresh with the same arguments, which ends the Zenoh
/// sessions of this process (with their sockets): on Unix by `exec`, in
/// the same process (the same pid, standard input and output), so a
/// supervisor or a script sees nothing but the logs. Returns only if that
/// failed, or on other systems, with the status to exit with.
fn restart() -> std::process::ExitCode {
    let restarts = std::env::var(RESTARTS_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        match std::env::current_exe() {
            Ok(exe) => {
                let e = std::process::Command::new(exe)
                    .args(std::env::args_os().skip(1))
                    .env(RESTARTS_ENV, restarts.to_string())
                    .exec();
                eprintln!("error: cannot restart the bridge: {e}");
            }
            Err(e) => eprintln!("error: cannot find the bridge's own program to restart it: {e}"),
        }
    }
    eprintln!(
        "error: the Zenoh session lost a remote bridge it still routes to: start the bridge \
         again (exit status {EXIT_RESTART}; restart {restarts})"
    );
    std::process::ExitCode::from(EXIT_RESTART)
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(Ending::Stopped) => std::process::ExitCode::SUCCESS,
        Ok(Ending::Split) => restart(),
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<Ending> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,zenoh=warn")),
        )
        .init();
    let cfg = bridge_config(&args)?;
    let z = zenoh_config(&args)?;
    let (tx, rx) = mpsc::channel();
    watch_signals(tx.clone())?;
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                let ev = stdin_event(&line);
                line.clear();
                if tx.send(ev).is_err() {
                    return;
                }
            }
        });
    }
    let bridge = Bridge::start(&cfg, z)?;
    tracing::info!(routes = cfg.routes.len(), "memlane-bridge ready");
    if let Ok(n) = std::env::var(RESTARTS_ENV) {
        tracing::warn!(restarts = %n, "restarted after its Zenoh session lost a remote bridge it still routed to");
    }
    let every = args
        .stats_every
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64);
    let mut last_print = Instant::now();
    let (reason, ending) = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::Print) => eprint!("{}", bridge.stats()),
            Ok(Event::Stop(why)) => break (why, Ending::Stopped),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break ("no event source", Ending::Stopped)
            }
        }
        if bridge.split() {
            break (
                "its Zenoh session lost a remote bridge it still routes to: restarting",
                Ending::Split,
            );
        }
        if let Some(p) = &args.stats_json {
            write_stats_json(p, &bridge);
        }
        if every.is_some_and(|e| last_print.elapsed() >= e) {
            last_print = Instant::now();
            eprint!("{}", bridge.stats());
        }
    };
    tracing::info!(reason, "stopping");
    // Stops the threads; the final counters go to the file and the terminal.
    let final_stats = bridge.shutdown();
    if let Some(p) = &args.stats_json {
        let tmp = p.with_extension("tmp");
        let json = serde_json::to_string_pretty(&final_stats)?;
        std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, p))?;
    }
    eprint!("{final_stats}");
    Ok(ending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quit_line_stops_and_any_other_prints() {
        for l in ["quit\n", "q\n", " exit \r\n", "stop"] {
            assert!(matches!(stdin_event(l), Event::Stop(_)), "{l:?}");
        }
        for l in ["\n", "stats\n", "quitting\n", "Q\n"] {
            assert!(matches!(stdin_event(l), Event::Print), "{l:?}");
        }
    }
}

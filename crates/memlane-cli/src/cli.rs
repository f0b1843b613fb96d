//! The command-line arguments, as clap derive types: one struct per
//! subcommand, parsed and validated before any command runs (a bad size,
//! duration or name is a usage error, exit status 2).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::parse;

/// Inter-process communication over named shared memory.
///
/// Channels live as files `memlane.NAME` in the segment directory:
/// `--dir`, else `$MEMLANE_DIR`, else `/dev/shm` (on Windows
/// `%TEMP%\memlane`).
#[derive(Debug, Parser)]
#[command(name = "memlane", version)]
pub struct Cli {
    /// The segment directory (default: $MEMLANE_DIR, else /dev/shm; on
    /// Windows %TEMP%\memlane).
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a channel.
    Create(CreateArgs),
    /// Send messages: each argument is one message; without arguments,
    /// each line of standard input is one.
    Send(SendArgs),
    /// Subscribe to a channel and print each message as it arrives, one
    /// per line (messages sent after it subscribed; with --from-oldest, the
    /// ring's history first).
    Listen(ListenArgs),
    /// A latest-value slot: create it, set its value, get the value there
    /// now, or watch each new value.
    Latest(LatestArgs),
    /// Show a channel's or latest-value slot's settings, counters and
    /// endpoints.
    Info(InfoArgs),
    /// List every memlane entry in the segment directory.
    List(ListArgs),
    /// A live view of every channel (and the other kinds) in the segment
    /// directory: rates in and out, endpoints with pid, state and lag,
    /// fill and losses; read-only. Keys: q quit, s/S sort, ↑/↓ select,
    /// Enter detail, Esc back, r refresh.
    Top(TopArgs),
    /// Remove channels or segments by name.
    Rm(RmArgs),
    /// Remove what no live process holds: segments left by crashed or
    /// exited processes, temporary files of creators that died, liveness
    /// token files of older versions; with --reap, also reclaim dead endpoints' slots in
    /// the named channels.
    Gc(GcArgs),
    /// Show the whole system: two processes exchange messages over a pair
    /// of channels and measure the latency.
    Demo(DemoArgs),
    /// The client half of `memlane demo` (run by it, in a child process).
    #[command(hide = true)]
    DemoClient(DemoClientArgs),
    /// Measure memlane on this machine against the hardware floor (a cache
    /// line, a futex, a minimal ring, memcpy) in two processes: latency,
    /// throughput and fan-out, with each figure's ratio to the floor.
    Bench(BenchArgs),
    /// The second process of `memlane bench` (run by it).
    #[command(hide = true)]
    BenchChild(BenchChildArgs),
    /// Send one request to a service and print its response.
    Call(CallArgs),
    /// Serve a service: answer each request by running COMMAND with the
    /// request on standard input, replying with its standard output.
    Serve(ServeArgs),
    /// Forward channels and latest-value slots to other machines over
    /// Zenoh: runs `memlane-bridge` (a separate program, crate
    /// memlane-zenoh) with the arguments that follow; `memlane bridge
    /// --help` shows them.
    #[command(disable_help_flag = true)]
    Bridge(BridgeArgs),
}

/// Arguments of `memlane bridge`: passed to `memlane-bridge` as they are.
#[derive(Debug, Args)]
pub struct BridgeArgs {
    /// The arguments of `memlane-bridge`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<OsString>,
}

/// Arguments of `memlane call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The service's name.
    #[arg(value_parser = parse::name)]
    pub name: String,
    /// The request (its bytes as given); without it, standard input.
    pub request: Option<OsString>,
    /// How long to wait for the response (e.g. 500ms, 10s).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse::duration)]
    pub timeout: Duration,
}

/// Arguments of `memlane serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The service's name.
    #[arg(value_parser = parse::name)]
    pub name: String,
    /// How long one COMMAND may run; then it is killed and the client gets
    /// an error.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse::duration)]
    pub timeout: Duration,
    /// How many COMMANDs may run at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Largest request in bytes.
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = parse::size)]
    pub max_request: u64,
    /// Stop after answering this many requests.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Create this file (holding the pid) once serving.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, num_args = 1.., value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Arguments of `memlane create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The channel's name: ASCII letters, digits, '.', '_' and '-'.
    #[arg(value_parser = parse::name)]
    pub name: String,
    /// Ring capacity: a power of two from 4KiB to 16GiB (e.g. 64KiB, 1MiB, 4096).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse::size)]
    pub capacity: u64,
    /// Largest message (default: 64KiB, or less to fit the capacity).
    #[arg(long, value_name = "SIZE", value_parser = parse::size)]
    pub max_message: Option<u64>,
    /// Most publishers at once.
    #[arg(long, value_name = "N")]
    pub max_publishers: Option<u32>,
    /// Most subscribers at once.
    #[arg(long, value_name = "N")]
    pub max_subscribers: Option<u32>,
    /// Back the channel by this file instead of anonymous shared memory.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Replace an existing file at --file instead of failing.
    #[arg(long, requires = "file")]
    pub force: bool,
    /// Replace a stale channel at the name (one that no live process holds:
    /// its users exited or crashed) instead of failing.
    #[arg(long)]
    pub replace_stale: bool,
    /// Order wake-ups with memory fences instead of Linux's membarrier
    /// (needed if some process that will use the channel may not call
    /// membarrier, e.g. under a seccomp filter).
    #[arg(long)]
    pub no_membarrier: bool,
}

/// Arguments of `memlane send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The channel's name.
    #[arg(value_parser = parse::name)]
    pub name: String,
    /// The messages, one per argument (default: one per line of standard input).
    #[arg(value_name = "MESSAGE", value_parser = clap::value_parser!(OsString))]
    pub messages: Vec<OsString>,
    /// Wait at most this long for space in a full channel (e.g. 500ms, 2s;
    /// default: wait as long as it takes).
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub timeout: Option<Duration>,
}

/// How `memlane listen` prints a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The bytes as text, control characters and invalid UTF-8 escaped
    /// (`\n`, `\t`, `\x1b`, `\\`).
    Text,
    /// Lowercase hexadecimal.
    Hex,
    /// One JSON object per line: {"seq":0,"len":5,"text":"hello"}, or
    /// "hex" instead of "text" for bytes that are not UTF-8.
    Json,
}

/// Arguments of `memlane listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The channel's name.
    #[arg(value_parser = parse::name)]
    pub name: String,
    /// Exit after this many messages.
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    /// Exit (status 0) when no message arrives for this long (e.g. 500ms, 2s, 1m).
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub timeout: Option<Duration>,
    /// How to print each message. On a typed channel (see `memlane info`)
    /// text and hex both print the values in hex, one group per value, and
    /// JSON adds the type's name; on a serde channel that records a
    /// schema, text prints each message as a JSON value (a message that
    /// does not decode is reported on stderr), JSON as "value" in the
    /// object ("error" and "hex" for one that does not decode), and hex
    /// its bytes.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Create this file once subscribed (only messages sent after that are
    /// received), so that scripts know when to start sending.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
    /// Exit (status 0) once every publisher has left and everything they
    /// sent was printed: no publisher joined for a second, after one was
    /// seen (a listener started before its publishers waits for them).
    #[arg(long)]
    pub until_disconnected: bool,
    /// Start at the oldest message still in the ring (the recent history,
    /// or a file-backed channel's content after a restart) instead of the
    /// next one sent.
    #[arg(long, conflicts_with = "lossy")]
    pub from_oldest: bool,
    /// Join as a lossy subscriber: never hold publishers back; when they
    /// lap this listener, say on standard error how many messages it lost
    /// and go on from the oldest one still in the ring.
    #[arg(long)]
    pub lossy: bool,
}

/// Arguments of `memlane latest`.
#[derive(Debug, Args)]
pub struct LatestArgs {
    /// The slot's name: ASCII letters, digits, '.', '_' and '-'.
    #[arg(value_parser = parse::name)]
    pub name: String,
    /// What to do with it.
    #[command(subcommand)]
    pub action: LatestAction,
}

/// What `memlane latest NAME` does.
#[derive(Debug, Subcommand)]
pub enum LatestAction {
    /// Create the slot (empty until the first `set`).
    Create(LatestCreateArgs),
    /// Write a value: the argument, or all of standard input with `-`.
    Set(LatestSetArgs),
    /// Print the value there now (exit status 1 and "no value" on standard
    /// error while nothing was written).
    Get(LatestGetArgs),
    /// Print the value there now, then each new value as it is written, one
    /// per line (a reader slower than the writers sees only the newest).
    Watch(LatestWatchArgs),
}

/// Arguments of `memlane latest NAME create`.
#[derive(Debug, Args)]
pub struct LatestCreateArgs {
    /// The largest value (e.g. 1KiB, 64KiB, 100).
    #[arg(long, value_name = "SIZE", default_value = "4KiB", value_parser = parse::size)]
    pub max_value: u64,
    /// Most writers at once.
    #[arg(long, value_name = "N", default_value_t = memlane::DEFAULT_MAX_WRITERS)]
    pub max_writers: u32,
    /// Replace a stale slot at the name (one that no live process holds)
    /// instead of failing.
    #[arg(long)]
    pub replace_stale: bool,
}

/// Arguments of `memlane latest NAME set`.
#[derive(Debug, Args)]
pub struct LatestSetArgs {
    /// The value (`-`: read it from standard input, bytes as they are).
    #[arg(value_name = "VALUE", value_parser = clap::value_parser!(OsString))]
    pub value: OsString,
    /// Create the slot first if it does not exist (with the defaults of
    /// `memlane latest NAME create`).
    #[arg(long)]
    pub create: bool,
}

/// Arguments of `memlane latest NAME get`.
#[derive(Debug, Args)]
pub struct LatestGetArgs {
    /// How to print the value (JSON: {"version":3,"len":5,"text":"hello"}).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Arguments of `memlane latest NAME watch`.
#[derive(Debug, Args)]
pub struct LatestWatchArgs {
    /// How to print each value (JSON: {"version":3,"len":5,"text":"hello"}).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit after this many values.
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    /// Exit (status 0) when no new value comes for this long (e.g. 500ms, 2s).
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub timeout: Option<Duration>,
    /// Create this file once the slot is open (every value written after
    /// that is seen, or a newer one), so that scripts know when to write.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
}

/// Arguments of `memlane info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The channel's or slot's name.
    #[arg(value_parser = parse::name)]
    pub name: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `memlane list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `memlane top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Time between refreshes (rates are computed over it), e.g. 500ms, 2s.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse::duration)]
    pub interval: Duration,
    /// Take two samples one interval apart, print the result and exit
    /// (a table; JSON with --json).
    #[arg(long)]
    pub once: bool,
    /// With --once: print JSON (its fields are documented in docs/TOP.md).
    #[arg(long, requires = "once")]
    pub json: bool,
    /// With --once, for tests: after the first sample, print `first sample
    /// taken` to standard error and wait for a line on standard input
    /// before the second (the rates are still over the real time between
    /// the two).
    #[arg(long, hide = true, requires = "once")]
    pub step: bool,
}

/// Arguments of `memlane gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Also reclaim the slots of dead publishers and subscribers in these
    /// channels (a dead subscriber holds publishers back).
    #[arg(long, value_name = "NAME", value_parser = parse::name)]
    pub reap: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `memlane rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The names to remove.
    #[arg(required = true, value_name = "NAME", value_parser = parse::name)]
    pub names: Vec<String>,
}

/// Arguments of `memlane demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Text messages to send before measuring.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub messages: u32,
    /// Round trips to measure.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub round_trips: u32,
}

/// Arguments of the hidden `memlane demo-client`.
#[derive(Debug, Args)]
pub struct DemoClientArgs {
    /// The request channel (server → client).
    #[arg(long, value_parser = parse::name)]
    pub req: String,
    /// The response channel (client → server).
    #[arg(long, value_parser = parse::name)]
    pub resp: String,
    /// Text messages to expect.
    #[arg(long)]
    pub messages: u32,
    /// Round trips to echo.
    #[arg(long)]
    pub round_trips: u32,
}

/// Arguments of `memlane bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Far fewer iterations (seconds instead of about half a minute): rough figures.
    #[arg(long)]
    pub quick: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Round trips per latency measurement and round (default 40000, a
    /// quarter of that at 64 KiB; 1000 with --quick).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub round_trips: Option<u64>,
    /// Messages per throughput measurement (default 1000000 of 64 B and
    /// 1500 of 1 MiB; --quick: 20000 and 20).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: Option<u64>,
    /// Rounds of every two-process measurement, interleaved (each round
    /// measures the floors and memlane once, seconds apart); each figure is
    /// its median round's, each ratio the median of the rounds' ratios.
    /// One round is at the mercy of a machine whose speed changes from
    /// one minute to the next.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=99))]
    pub rounds: u32,
}

/// Arguments of the hidden `memlane bench-child`.
#[derive(Debug, Args)]
pub struct BenchChildArgs {
    /// The job, as `key=value` arguments written by `memlane bench`.
    #[arg(required = true, value_name = "KEY=VALUE")]
    pub job: Vec<String>,
}

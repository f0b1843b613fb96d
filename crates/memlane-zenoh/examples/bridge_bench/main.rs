//! Latency and throughput over the bridge on loopback, next to Zenoh's own
//! publisher/subscriber between two processes and a Unix stream socket.
//!
//! ```sh
//! cargo run --release -p memlane-zenoh --example bridge_bench [ROUNDS]
//! ```
//!
//! Each path links a driver process to an echo process:
//! * `unix`: a Unix stream socket, length-prefixed frames;
//! * `zenoh`: a Zenoh publisher and subscriber each way over TCP on
//!   127.0.0.1 (reliable, `CongestionControl::Block`, as the bridge puts);
//! * `bridge`: memlane channel → bridge process A → Zenoh (TCP 127.0.0.1) →
//!   bridge process B → memlane channel, and back the same way (four
//!   processes).
//!
//! Latency: round trips of one message (one-way = round trip / 2), median
//! and p99. Throughput: messages sent one way as fast as the path takes
//! them, until the echo process has counted them all. The paths are
//! measured in turn, size by size, for ROUNDS rounds (`bridge_bench
//! [ROUNDS]`, default 5); the tables give medians over rounds and the
//! bridge/Zenoh ratios per round.
//!
//! Environment: `BENCH_SPIN`, `BENCH_BRIDGE_SPIN` and `BENCH_ZENOH_POLL_US`
//! set who polls (see the results page); `BENCH_PATHS=zenoh,bridge` and
//! `BENCH_SIZES=4096` narrow a run to some paths and sizes (for a
//! profiler), and `BENCH_TPUT_X=N` sends N times as many throughput
//! messages per round (steadier figures).
//! Results and their reading: `docs/benchmarks/bridge.md`.
//!
//! Unix only: the baseline it measures beside the bridge is a Unix stream
//! socket. On Windows it says so and exits.

#[cfg(unix)]
mod unix;

fn main() {
    #[cfg(unix)]
    unix::main();
    #[cfg(not(unix))]
    eprintln!("bridge_bench runs on Unix only (its baseline is a Unix stream socket)");
}

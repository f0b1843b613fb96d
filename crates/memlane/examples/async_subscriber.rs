//! An async subscriber on tokio: it opens the [`Channel`] NAME (creating
//! it if it does not exist yet) and prints COUNT messages, one per line,
//! received with `recv_async` (feature `async`) while another task ticks,
//! both on a single-threaded runtime: waiting for a message blocks no
//! thread (memlane's reactor thread wakes the task).
//!
//! ```text
//! cargo run -p memlane --features async --example async_subscriber -- NAME [COUNT]
//! cargo run -p memlane --example publisher -- NAME hello world
//! ```
//!
//! `NAME` defaults to `memlane-chat`, `COUNT` to 10. Each wait is bounded
//! by a one-second `tokio::time::timeout`, which drops the pending receive
//! when it fires; no message is lost by that (`recv_async` is
//! cancellation safe). If this process created the channel, it removes
//! the channel's name when it exits.

use std::process::ExitCode;
use std::time::Duration;

use memlane::{Channel, OpenError};

const DEFAULT_NAME: &str = "memlane-chat";
const DEFAULT_COUNT: u64 = 10;

/// Message bytes as text: invalid UTF-8 replaced, control characters
/// escaped (another process wrote them).
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .flat_map(|c| {
            let s: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            s
        })
        .collect()
}

async fn run(name: &str, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let (channel, created) = match Channel::open(name) {
        Ok(channel) => (channel, false),
        Err(OpenError::NotFound { .. }) => (Channel::create(name)?, true),
        Err(e) => return Err(e.into()),
    };
    let mut subscriber = channel.subscriber()?;
    eprintln!("async_subscriber: joined channel '{name}'; waiting for {count} messages");
    // Another task on the same thread keeps running while we wait.
    let ticker = tokio::spawn(async {
        let mut ticks = 0u64;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            ticks += 1;
            eprintln!("async_subscriber: tick {ticks}");
        }
    });
    let mut received = 0;
    let result = async {
        while received < count {
            match tokio::time::timeout(Duration::from_secs(1), subscriber.recv_async()).await {
                Ok(message) => {
                    println!("{}", printable(&message?));
                    received += 1;
                }
                // The pending receive was dropped; nothing was taken.
                Err(_elapsed) => eprintln!("async_subscriber: nothing for a second"),
            }
        }
        Ok::<(), memlane::RecvError>(())
    }
    .await;
    ticker.abort();
    drop(subscriber);
    drop(channel);
    if created {
        Channel::remove(name)?;
    }
    Ok(result?)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| DEFAULT_NAME.to_string());
    let count = match args.next().map(|c| c.parse()) {
        None => DEFAULT_COUNT,
        Some(Ok(c)) => c,
        Some(Err(_)) => {
            eprintln!("usage: async_subscriber [NAME] [COUNT]");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("async_subscriber: error: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&name, count)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("async_subscriber: error on '{name}': {e}");
            ExitCode::FAILURE
        }
    }
}

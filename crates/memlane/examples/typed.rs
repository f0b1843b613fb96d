//! A typed publisher and subscriber of a plain-old-data type, `Imu`,
//! sent and received in place, without serialisation or copy: the
//! publisher fills each sample in ring space it loaned, the subscriber
//! reads a `&Imu` in the ring.
//!
//! Run the pair in two terminals, the subscriber first (it creates the
//! typed channel, and gets what is published after it joined):
//!
//! ```text
//! cargo run -p memlane --example typed -- sub [NAME] [COUNT] [--timeout SECS]
//! cargo run -p memlane --example typed -- pub [NAME] [COUNT]
//! ```
//!
//! `NAME` defaults to `memlane-imu`, `COUNT` to 5. The publisher sends
//! COUNT samples, the last two as one message (a slice of two). Opening a
//! channel of another type fails with an error naming both types (try
//! `memlane create other` then `typed pub other`); `memlane info NAME`
//! shows the type, `memlane listen NAME` each sample in hex.

use std::process::ExitCode;
use std::time::Duration;

use memlane::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use memlane::{Channel, MessageType, OpenError};

/// One sample of an inertial measurement unit: 32 bytes, no padding, any
/// bit pattern valid (zerocopy checks both when deriving).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct Imu {
    seq: u64,
    t_ns: u64,
    accel: [f32; 3],
    gyro_z: f32,
}

impl MessageType for Imu {
    // Fixed strings: the same in every program that uses the channel,
    // whatever its module path or compiler version.
    fn type_name() -> std::borrow::Cow<'static, str> {
        "example::Imu".into()
    }
    fn layout_hash() -> u64 {
        memlane::layout_hash(b"seq: u64, t_ns: u64, accel: [f32; 3], gyro_z: f32")
    }
}

const USAGE: &str = "usage: typed sub|pub [NAME] [COUNT] [--timeout SECS]";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut timeout = None;
    if let Some(i) = args.iter().position(|a| a == "--timeout") {
        let secs = args.get(i + 1).and_then(|s| s.parse::<f64>().ok());
        let Some(d) = secs.and_then(|s| Duration::try_from_secs_f64(s).ok()) else {
            eprintln!("typed: --timeout needs a number of seconds\n{USAGE}");
            return ExitCode::from(2);
        };
        timeout = Some(d);
        args.drain(i..i + 2);
    }
    let name = args.get(1).cloned().unwrap_or_else(|| "memlane-imu".into());
    let count: u64 = match args.get(2).map(|c| c.parse()) {
        None => 5,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("typed: COUNT is not a whole number\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("sub") => subscribe(&name, count, timeout),
        Some("pub") => publish(&name, count),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("typed: error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn subscribe(name: &str, count: u64, timeout: Option<Duration>) -> Result<()> {
    // Create the channel typed, or open it if it exists (and check its type).
    let (channel, created) = match Channel::builder(name).message_type::<Imu>().create() {
        Ok(c) => (c, true),
        Err(memlane::CreateError::AlreadyExists { .. }) => (Channel::open(name)?, false),
        Err(e) => return Err(e.into()),
    };
    let typed = channel.typed::<Imu>()?;
    let mut sub = typed.subscriber()?;
    eprintln!(
        "typed: subscribed to '{name}' ({})",
        channel.message_type()?.expect("typed")
    );
    let mut seen = 0;
    while seen < count {
        // A message is one sample or a slice of them.
        let samples = match timeout {
            Some(t) => sub.recv_slice_timeout(t)?,
            None => sub.recv_slice()?,
        };
        for s in samples.iter() {
            println!(
                "seq {} t {} ns accel {:?} gyro_z {}",
                s.seq, s.t_ns, s.accel, s.gyro_z
            );
        }
        seen += samples.len() as u64;
    }
    drop(sub);
    if created {
        Channel::remove(name)?;
    }
    Ok(())
}

fn publish(name: &str, count: u64) -> Result<()> {
    let channel = match Channel::open(name) {
        Ok(c) => c,
        Err(e @ OpenError::NotFound { .. }) => {
            eprintln!("typed: hint: start the subscriber first: cargo run -p memlane --example typed -- sub {name}");
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    let mut publ = channel.typed::<Imu>()?.publisher()?;
    let sample = |seq: u64| Imu {
        seq,
        t_ns: seq * 1_000_000,
        accel: [0.0, 0.0, 9.81],
        gyro_z: seq as f32 * 0.5,
    };
    let singles = if count >= 2 { count - 2 } else { count };
    for seq in 0..singles {
        // Loaned ring space, filled in place, then published.
        let mut loan = publ.loan()?;
        *loan = sample(seq);
        loan.commit()?;
    }
    if count >= 2 {
        // The last two as one message: a slice of samples.
        let mut loan = publ.loan_slice(2)?;
        loan[0] = sample(singles);
        loan[1] = sample(singles + 1);
        loan.commit()?;
    }
    eprintln!("typed: published {count} samples on '{name}'");
    Ok(())
}

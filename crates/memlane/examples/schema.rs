//! A serde channel that records its messages' schema, so that a program
//! without the Rust type can read them: `pub` sends `Reading`s (a struct
//! with a nested struct, an enum, a `Vec`, a `String` and an `Option`);
//! `show` prints each message as JSON using only the schema recorded in
//! the channel (as `memlane listen` does).
//!
//! ```text
//! cargo run -p memlane --features schema --example schema -- pub [NAME] [COUNT]
//! cargo run -p memlane --features schema --example schema -- show [NAME] [COUNT]
//! memlane listen NAME --from-oldest        # the same JSON lines
//! memlane info NAME                        # the type and its schema
//! ```
//!
//! `NAME` defaults to `memlane-readings`, `COUNT` to 3. `pub` creates the
//! channel (or opens it, checking that its schema is `Reading`'s) and
//! sends COUNT readings; `show` reads the messages still in the ring, from
//! the oldest, and removes the channel when it has printed COUNT.

use std::process::ExitCode;

use memlane::postcard_schema::Schema;
use memlane::{Channel, MessageType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Schema)]
#[postcard(crate = memlane::postcard_schema)]
struct Position {
    lat: f64,
    lon: f64,
}

#[derive(Debug, Serialize, Deserialize, Schema)]
#[postcard(crate = memlane::postcard_schema)]
enum Status {
    Ok,
    Degraded { reason: String },
    Failed(u16),
}

#[derive(Debug, Serialize, Deserialize, Schema)]
#[postcard(crate = memlane::postcard_schema)]
struct Reading {
    seq: u32,
    station: String,
    at: Position,
    temps_c: Vec<f32>,
    note: Option<String>,
    status: Status,
}

impl MessageType for Reading {
    fn type_name() -> std::borrow::Cow<'static, str> {
        "example::Reading".into()
    }
}

const USAGE: &str = "usage: schema pub|show [NAME] [COUNT]";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "memlane-readings".into());
    let count: u64 = match args.get(2).map(|c| c.parse()) {
        None => 3,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("schema: COUNT is not a whole number\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("pub") => publish(&name, count),
        Some("show") => show(&name, count),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("schema: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn publish(name: &str, count: u64) -> Result<()> {
    let channel = match Channel::builder(name)
        .serde_type_with_schema::<Reading>()
        .create()
    {
        Ok(c) => c,
        Err(memlane::CreateError::AlreadyExists { .. }) => Channel::open(name)?,
        Err(e) => return Err(e.into()),
    };
    // Checks the recorded type, schema included.
    let mut publ = channel.serde_with_schema::<Reading>()?.publisher()?;
    for seq in 0..count as u32 {
        publ.send(&Reading {
            seq,
            station: format!("north-{}", seq % 2),
            at: Position {
                lat: 59.91,
                lon: 10.75 + f64::from(seq) * 0.25,
            },
            temps_c: vec![-1.5, 0.25 * seq as f32],
            note: (seq % 2 == 1).then(|| "windy".to_string()),
            status: match seq % 3 {
                0 => Status::Ok,
                1 => Status::Degraded {
                    reason: "low battery".into(),
                },
                _ => Status::Failed(503),
            },
        })?;
    }
    eprintln!("schema: published {count} readings on '{name}'");
    Ok(())
}

/// Needs no `Reading`: only the schema the channel records.
fn show(name: &str, count: u64) -> Result<()> {
    let channel = Channel::open(name)?;
    let record = channel.message_type()?.ok_or("the channel is untyped")?;
    let schema = record
        .schema()
        .ok_or("the channel records no schema")?
        .clone();
    eprintln!("schema: '{name}' carries {schema}");
    let mut sub = channel.subscriber_from_oldest()?;
    for _ in 0..count {
        let msg = sub.recv_timeout(std::time::Duration::from_secs(20))?;
        match schema.to_json(&msg) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("schema: a message that does not decode: {e}"),
        }
    }
    drop(sub);
    Channel::remove(name)?;
    Ok(())
}

//! A request-response pair: `rpc serve NAME [COUNT]` answers requests of
//! the service NAME (a request of two `u64`s, answered with their sum, a
//! plain typed request); `rpc call NAME A B` asks one and prints the sum.
//!
//! Run them in two terminals, the server first (it creates the service):
//!
//! ```text
//! cargo run -p memlane --example rpc -- serve adder
//! cargo run -p memlane --example rpc -- call adder 2 40
//! ```
//!
//! Several servers can serve one name (each request is answered by exactly
//! one); a call with no live server fails at once, and a call waits at
//! most 5 seconds for its answer.

use std::process::ExitCode;
use std::time::Duration;

use memlane::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The request: two numbers to add.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "memlane::zerocopy")]
#[repr(C)]
struct Add {
    a: u64,
    b: u64,
}

const USAGE: &str = "usage: rpc serve NAME [COUNT] | rpc call NAME A B";

fn serve(name: &str, count: Option<u64>) -> Result<(), Box<dyn std::error::Error>> {
    let mut server = memlane::service(name).server()?;
    println!("ready {name}");
    let mut answered = 0;
    while count.is_none_or(|c| answered < c) {
        let req = server.recv()?;
        match req.plain::<Add>() {
            Some(add) => server.respond_plain(&req, &add.a.wrapping_add(add.b))?,
            None => server.respond_error(&req, "expected two u64 numbers (16 bytes)")?,
        }
        answered += 1;
    }
    eprintln!("rpc: answered {answered} requests");
    Ok(())
}

fn call(name: &str, a: u64, b: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = memlane::service(name).client()?;
    let sum: u64 = client.call_plain(&Add { a, b }, Duration::from_secs(5))?;
    println!("{sum}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["serve", name] => serve(name, None),
        ["serve", name, n] => match n.parse() {
            Ok(n) => serve(name, Some(n)),
            Err(_) => Err(USAGE.into()),
        },
        ["call", name, a, b] => match (a.parse(), b.parse()) {
            (Ok(a), Ok(b)) => call(name, a, b),
            _ => Err(USAGE.into()),
        },
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rpc: error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

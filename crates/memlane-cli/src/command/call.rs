//! `memlane call`: sends one request to a service and prints the response.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;

use crate::cli::CallArgs;

/// Calls the service and writes the response's bytes to standard output.
pub fn run(dir: Option<&Path>, args: CallArgs) -> anyhow::Result<()> {
    let request = match &args.request {
        Some(r) => r.as_encoded_bytes().to_vec(),
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the request from standard input")?;
            buf
        }
    };
    let mut builder = memlane::service(&args.name);
    if let Some(d) = dir {
        builder = builder.dir(d);
    }
    let mut client = builder.client()?;
    let response = client
        .call_timeout(&request, args.timeout)
        .with_context(|| format!("calling service '{}'", args.name))?;
    let mut out = std::io::stdout().lock();
    out.write_all(&response)?;
    if !response.ends_with(b"\n") && std::io::IsTerminal::is_terminal(&out) {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

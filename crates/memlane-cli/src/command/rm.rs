//! `memlane rm`: removes channels, segments or events by name.

use std::path::Path;

use crate::cli::RmArgs;
use crate::command::AlreadyReported;
use crate::output;

/// Removes each name; reports every failure and fails if any did.
pub fn run(dir: Option<&Path>, args: RmArgs) -> anyhow::Result<()> {
    let mut failed = false;
    for name in &args.names {
        match memlane::remove(dir, name) {
            Ok(()) => println!("removed '{}'", output::escape(name.as_bytes())),
            Err(e) => {
                crate::report(&anyhow::Error::new(e));
                failed = true;
            }
        }
    }
    if failed {
        Err(AlreadyReported.into())
    } else {
        Ok(())
    }
}

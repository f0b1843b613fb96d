//! `memlane create`: creates a channel and prints what it created.

use std::path::Path;

use memlane::{Channel, Disposition};

use crate::cli::CreateArgs;
use crate::output;

/// Creates the channel described by `args`.
pub fn run(dir: Option<&Path>, args: CreateArgs) -> anyhow::Result<()> {
    // A channel made by `memlane create` is held by nobody once this
    // process exits, so the library's default (replace a stale channel)
    // would make a second `create` silently reset it: ask for it instead.
    let mut builder = Channel::builder(&args.name)
        .capacity(args.capacity)
        .replace_stale(args.replace_stale)
        .membarrier(!args.no_membarrier);
    if let Some(dir) = dir {
        builder = builder.dir(dir);
    }
    if let Some(max) = args.max_message {
        let max = usize::try_from(max)
            .map_err(|_| anyhow::anyhow!("--max-message {max} is too large for this machine"))?;
        builder = builder.max_message(max);
    }
    if let Some(n) = args.max_publishers {
        builder = builder.max_publishers(n);
    }
    if let Some(n) = args.max_subscribers {
        builder = builder.max_subscribers(n);
    }
    if let Some(file) = &args.file {
        let disposition = if args.force {
            Disposition::CreateAlways
        } else {
            Disposition::CreateNew
        };
        builder = builder.file(file, disposition);
    }
    let channel = builder.create()?;
    let info = channel.info();
    println!("created channel '{}'", output::escape(info.name.as_bytes()));
    println!("  path:         {}", output::path(&info.path));
    println!("  capacity:     {}", output::size_exact(info.capacity));
    println!(
        "  max message:  {}",
        output::size_exact(info.max_message as u64)
    );
    println!("  publishers:   up to {}", info.max_publishers);
    println!("  subscribers:  up to {}", info.max_subscribers);
    println!("  barriers:     {}", output::barriers(info.membarrier));
    Ok(())
}

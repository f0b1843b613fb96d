//! One module per subcommand, each with a `run` function taking the
//! segment directory (`--dir`, `None` for the library's default) and its
//! parsed arguments.

pub mod bench;
pub mod bridge;
pub mod call;
pub mod create;
pub mod demo;
pub mod demo_client;
pub mod gc;
pub mod info;
pub mod latest;
pub mod list;
pub mod listen;
pub mod rm;
pub mod send;
pub mod serve;
pub mod top;

use std::path::Path;

use memlane::{Channel, Latest, OpenError};

/// An error whose message was already printed; it only sets the exit status.
#[derive(Debug)]
pub struct AlreadyReported;

impl std::fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("errors were reported above")
    }
}

impl std::error::Error for AlreadyReported {}

/// Opens the channel `name` in `dir`, or in the default directory.
pub fn open_channel(dir: Option<&Path>, name: &str) -> Result<Channel, OpenError> {
    let options = Channel::open_options(name);
    match dir {
        Some(dir) => options.dir(dir),
        None => options,
    }
    .open()
}

/// Opens the latest-value slot `name` in `dir`, or in the default directory.
pub fn open_latest(dir: Option<&Path>, name: &str) -> Result<Latest, OpenError> {
    let options = Latest::open_options(name);
    match dir {
        Some(dir) => options.dir(dir),
        None => options,
    }
    .open()
}

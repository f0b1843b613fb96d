//! `memlane`: create, send on, listen to, inspect, list and remove
//! shared-memory channels from the shell, and a two-process demo.
//!
//! `cli.rs` holds the argument types, `command/<verb>.rs` one subcommand
//! each; this file dispatches and turns errors into a message and an exit
//! status: 0 on success, 1 when the command failed, 2 for a usage error
//! (reported by clap, including bad sizes, durations and names).

#![forbid(unsafe_code)]

mod cli;
mod command;
mod interrupt;
mod output;
mod parse;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = cli.dir.as_deref();
    let result = match cli.command {
        Command::Create(args) => command::create::run(dir, args),
        Command::Send(args) => command::send::run(dir, args),
        Command::Listen(args) => command::listen::run(dir, args),
        Command::Latest(args) => command::latest::run(dir, args),
        Command::Info(args) => command::info::run(dir, args),
        Command::List(args) => command::list::run(dir, args),
        Command::Top(args) => command::top::run(dir, args),
        Command::Rm(args) => command::rm::run(dir, args),
        Command::Gc(args) => command::gc::run(dir, args),
        Command::Demo(args) => command::demo::run(dir, args),
        Command::DemoClient(args) => command::demo_client::run(dir, args),
        Command::Bench(args) => command::bench::run(dir, args),
        Command::BenchChild(args) => command::bench::run_child(args),
        Command::Call(args) => command::call::run(dir, args),
        Command::Serve(args) => command::serve::run(dir, args),
        Command::Bridge(args) => command::bridge::run(dir, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.downcast_ref::<command::AlreadyReported>().is_none() {
                report(&e);
            }
            ExitCode::FAILURE
        }
    }
}

/// Prints `error: <message>` and then each source as `caused by: ...` to
/// standard error (no backtrace).
pub fn report(e: &anyhow::Error) {
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("caused by: {cause}");
    }
}

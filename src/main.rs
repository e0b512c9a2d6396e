//! `switchyard`: parse the command line and hand off to a subcommand. Exit codes:
//! 0 ok, 1 invalid config or refused operation, 2 usage error, 3 bind or I/O failure.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::run(args)
}

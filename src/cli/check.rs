//! `switchyard check`: validate a config like `nginx -t`.

use std::path::Path;
use std::process::ExitCode;

/// Prints `ok` (exit 0) or one line per problem on stderr (exit 1).
pub fn run(path: &Path) -> ExitCode {
    match switchyard_config::load(path) {
        Ok(_) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            for line in e.lines() {
                eprintln!("{line}");
            }
            ExitCode::from(super::INVALID)
        }
    }
}

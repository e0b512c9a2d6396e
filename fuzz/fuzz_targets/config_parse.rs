//! Any bytes as a config file: parsing never panics, and a refusal is located.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Err(e) = switchyard_config::parse(text, Path::new("fz.toml"))
    {
        for line in e.lines() {
            assert!(line.starts_with("fz.toml:"), "{line}");
        }
    }
});

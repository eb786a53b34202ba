//! Claude Code CLI `.credentials.json`: parsing and reading never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = credmap::claude::parse(data) {
        let _ = credmap::claude::read(&doc);
    }
});

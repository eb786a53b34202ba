//! OpenClaw legacy `auth-profiles.json`: parsing and reading never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = credmap::auth_profiles::parse(data) {
        let _ = credmap::auth_profiles::anthropic_profiles(&doc);
    }
});

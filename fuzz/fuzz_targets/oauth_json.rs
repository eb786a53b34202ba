//! OpenClaw legacy `credentials/oauth.json`: parsing and reading never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = credmap::oauth_json::parse(data) {
        let _ = credmap::oauth_json::anthropic(&doc);
    }
});

//! Bare tokens: `parse` and `find_token` never panic, and what they return is a token.
#![no_main]

use credmap::bare::{self, OAUTH_TOKEN_PREFIX};
use libfuzzer_sys::fuzz_target;

fn assert_is_token(token: &str) {
    let body = token.strip_prefix(OAUTH_TOKEN_PREFIX).expect("a token starts with the prefix");
    assert!(!body.is_empty() && body.chars().all(bare::is_token_char), "not a token shape");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(token) = bare::parse(text) {
        assert_eq!(token.expose(), text.trim());
        assert_is_token(token.expose());
        // The one token of a bare file is also what a search of the text finds.
        assert_eq!(bare::find_token(text).expect("a bare token is found").expose(), token.expose());
    }
    if let Ok(token) = bare::find_token(text) {
        assert_is_token(token.expose());
        assert!(text.contains(token.expose()));
    }
});

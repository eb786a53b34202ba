//! Fresh random-looking tokens of a realistic shape and length.

use std::fs::File;
use std::io::Read;

/// Prefix of an OAuth access token.
pub const ACCESS_PREFIX: &str = concat!("sk-ant-", "oat01-");
/// Prefix of an OAuth refresh token.
pub const REFRESH_PREFIX: &str = concat!("sk-ant-", "ort01-");
/// Characters after the prefix: real tokens are 108 characters long in all.
const BODY_LEN: usize = 95;
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A new access token (108 characters).
#[must_use]
pub fn access_token() -> String {
    random_token(ACCESS_PREFIX)
}

/// A new refresh token (108 characters).
#[must_use]
pub fn refresh_token() -> String {
    random_token(REFRESH_PREFIX)
}

/// Eight random hex digits (the CLI's temp-file suffix).
#[must_use]
pub fn hex8() -> String {
    let [a, b, c, d] = random_bytes::<4>();
    format!("{a:02x}{b:02x}{c:02x}{d:02x}")
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("/dev/urandom is readable");
    bytes
}

fn random_token(prefix: &str) -> String {
    let bytes = random_bytes::<BODY_LEN>();
    let mut token = String::with_capacity(prefix.len() + BODY_LEN);
    token.push_str(prefix);
    token.extend(bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 63)])));
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_real_shape_and_differ() {
        let (a, b) = (access_token(), access_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 108);
        assert!(a.starts_with(ACCESS_PREFIX) && refresh_token().starts_with(REFRESH_PREFIX));
        assert!(credmap::bare::parse(&a).is_ok());
    }
}

//! A token that never prints itself.

use sha2::{Digest, Sha256};
use std::fmt;

/// A secret token (access, refresh or setup token).
///
/// `Debug` and `Display` show only a recognised non-secret prefix (such as `sk-ant-oat01-`) and
/// the [`Fingerprint`]; the value itself is reachable only through [`Secret::expose`], so every
/// place that handles the raw token is easy to find.
///
/// ```
/// let s = credmap::Secret::new("sk-ant-oat01-very-secret-value");
/// let shown = format!("{s} {s:?}");
/// assert!(!shown.contains("very-secret"));
/// assert!(shown.starts_with("sk-ant-oat01-…("));
/// assert_eq!(s.expose(), "sk-ant-oat01-very-secret-value");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a raw token.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw token. Call this only to write the token into its destination.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the token is the empty string (the Claude CLI's logged-out stub holds `""`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length of the token in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The first 8 hex digits of the SHA-256 of the token: enough to tell two tokens apart in a
    /// log, useless for recovering the token.
    #[must_use]
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.0)
    }

    /// The token's recognised public prefix, for example `sk-ant-oat01-` (an OAuth access or
    /// setup token), `sk-ant-ort01-` (a refresh token) or `sk-ant-api03-` (an API key); empty when
    /// the token has no such prefix.
    #[must_use]
    pub fn kind_prefix(&self) -> &str {
        kind_prefix(&self.0)
    }
}

/// Recognises `sk-ant-<3 letters><2 digits>-`, the only part of an Anthropic token that is safe to
/// show.
fn kind_prefix(token: &str) -> &str {
    let b = token.as_bytes();
    let ok = b.len() > 13
        && token.starts_with("sk-ant-")
        && b[7..10].iter().all(u8::is_ascii_lowercase)
        && b[10..12].iter().all(u8::is_ascii_digit)
        && b[12] == b'-';
    if ok { &token[..13] } else { "" }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(empty)");
        }
        write!(f, "{}…({})", self.kind_prefix(), self.fingerprint())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({self})")
    }
}

/// A short, non-reversible identifier of a token: the first 8 hex digits of its SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 4]);

impl Fingerprint {
    /// Fingerprint of an arbitrary string (a token, or a value read back from a container).
    #[must_use]
    pub fn of(value: &str) -> Self {
        let digest = Sha256::digest(value.as_bytes());
        Self([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_first_8_hex_of_sha256() {
        // sha256("abc") = ba7816bf...
        assert_eq!(Fingerprint::of("abc").to_string(), "ba7816bf");
    }

    #[test]
    fn display_never_shows_the_value() {
        for t in ["sk-ant-oat01-SECRETSECRET", "sk-ant-ort01-SECRETSECRET", "SECRETSECRET", "sk-ant-SECRET"] {
            let s = Secret::new(t);
            assert!(!format!("{s}{s:?}").contains("SECRET"), "{t}");
        }
        assert_eq!(Secret::new("").to_string(), "(empty)");
    }

    #[test]
    fn kind_prefix_only_for_anthropic_shapes() {
        assert_eq!(Secret::new("sk-ant-oat01-x").kind_prefix(), "sk-ant-oat01-");
        assert_eq!(Secret::new("sk-ant-api03-x").kind_prefix(), "sk-ant-api03-");
        assert_eq!(Secret::new("sk-ant-oat01-").kind_prefix(), "");
        assert_eq!(Secret::new("sk-ant-XXX01-x").kind_prefix(), "");
        assert_eq!(Secret::new("short").kind_prefix(), "");
    }
}

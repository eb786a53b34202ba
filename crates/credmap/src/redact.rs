//! Redaction of token-shaped text in output we did not write ourselves (a child program's
//! stderr, Docker's error messages), before it is logged.

use crate::Secret;
use crate::bare::is_token_char;

/// Replaces every Anthropic token in `text` (`sk-ant-` + a kind such as `oat01`, `ort01` or
/// `api03` + `-` + token characters) by its fingerprint, as [`Secret`]'s `Display` shows it.
///
/// ```
/// let out = credmap::redact("error: token sk-ant-oat01-abcdef rejected; refresh sk-ant-ort01-xyz");
/// assert!(!out.contains("abcdef") && !out.contains("xyz"));
/// assert!(out.starts_with("error: token sk-ant-oat01-…("));
/// ```
#[must_use]
pub fn redact(text: &str) -> String {
    const PREFIX: &str = "sk-ant-";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(PREFIX) {
        out.push_str(&rest[..at]);
        let candidate = &rest[at..];
        let len = token_len(candidate);
        if len == 0 {
            out.push_str(PREFIX);
            rest = &candidate[PREFIX.len()..];
        } else {
            out.push_str(&Secret::new(&candidate[..len]).to_string());
            rest = &candidate[len..];
        }
    }
    out.push_str(rest);
    out
}

/// Length of the token at the start of `s` (which starts with `sk-ant-`), or 0 when what follows
/// is not `<letters><digits>-<token chars>`.
fn token_len(s: &str) -> usize {
    let after_prefix = &s["sk-ant-".len()..];
    let letters = after_prefix.find(|c: char| !c.is_ascii_lowercase()).unwrap_or(after_prefix.len());
    let after_letters = &after_prefix[letters..];
    let digits = after_letters.find(|c: char| !c.is_ascii_digit()).unwrap_or(after_letters.len());
    if letters == 0 || digits == 0 || !after_letters[digits..].starts_with('-') {
        return 0;
    }
    let body = &after_letters[digits + 1..];
    let body_len = body.find(|c: char| !is_token_char(c)).unwrap_or(body.len());
    if body_len == 0 {
        return 0;
    }
    "sk-ant-".len() + letters + digits + 1 + body_len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_replaced_and_the_rest_kept() {
        let text = "a sk-ant-oat01-AAA_b-1 b \"sk-ant-api03-KEY\" c sk-ant-ort01-R.";
        let out = redact(text);
        assert!(!out.contains("AAA_b-1") && !out.contains("KEY") && !out.contains("-R."));
        assert!(out.starts_with("a sk-ant-oat01-…("));
        assert!(out.ends_with(")."));
        assert_eq!(out.matches("sk-ant-").count(), 3);
    }

    #[test]
    fn text_that_only_looks_similar_is_kept() {
        for text in ["sk-ant-", "sk-ant-oat01-", "sk-ant-oat-x", "sk-ant-01-x", "plain text", "sk-ant-sk-ant-oat"] {
            assert_eq!(redact(text), text);
        }
    }
}

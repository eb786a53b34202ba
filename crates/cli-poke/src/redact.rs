//! What the CLI printed: tokens hidden before anything is logged, and the signs of a dead
//! refresh token.

use credmap::Secret;
use credmap::bare::is_token_char;

/// Replaces every token-shaped string (`sk-ant-<3 lowercase><2 digits>-<token chars>`) by its
/// kind prefix and fingerprint, as `Secret` displays it: `sk-ant-oat01-…(3f2a9c1e)`.
#[must_use]
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("sk-ant-") {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let len = token_len(candidate);
        if len > 0 {
            out.push_str(&Secret::new(&candidate[..len]).to_string());
            rest = &candidate[len..];
        } else {
            out.push_str("sk-ant-");
            rest = &candidate["sk-ant-".len()..];
        }
    }
    out.push_str(rest);
    out
}

/// Length of the token at the start of `s` (which starts with `sk-ant-`), or 0 when it is not one.
fn token_len(s: &str) -> usize {
    let b = s.as_bytes();
    let shaped = b.len() > 13
        && b[7..10].iter().all(u8::is_ascii_lowercase)
        && b[10..12].iter().all(u8::is_ascii_digit)
        && b[12] == b'-';
    if !shaped {
        return 0;
    }
    let body = s[13..].find(|c: char| !is_token_char(c)).unwrap_or(s.len() - 13);
    if body == 0 { 0 } else { 13 + body }
}

/// What the CLI prints when only a human login helps (DOMAIN.md §1), and how we describe it.
const DEAD_TOKEN_SIGNS: [(&str, &str); 3] = [
    ("invalid_grant", "the token endpoint answered invalid_grant: the refresh token is dead"),
    (
        "OAuth token has expired",
        "the CLI could not refresh and its access token has expired (\"OAuth token has expired\")",
    ),
    ("Not logged in", "the CLI says it is not logged in"),
];

/// Why the CLI's output says the refresh token is dead, if it does.
#[must_use]
pub(crate) fn dead_token_sign(output: &str) -> Option<&'static str> {
    DEAD_TOKEN_SIGNS.iter().find(|(needle, _)| output.contains(needle)).map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(kind: &str) -> String {
        format!("sk-ant-{kind}-{}", "Zx9_-".repeat(18))
    }

    #[test]
    fn every_token_shape_is_replaced_by_its_fingerprint() {
        let (a, r, k) = (fake("oat01"), fake("ort01"), fake("api03"));
        let text = format!("access {a}\n\"refresh\":\"{r}\", key={k}. done");
        let out = redact(&text);
        for t in [&a, &r, &k] {
            assert!(!out.contains(t.as_str()), "{out}");
            assert!(out.contains(&Secret::new(t.as_str()).to_string()), "{out}");
        }
        assert!(out.starts_with("access sk-ant-oat01-…(") && out.ends_with(". done"), "{out}");
    }

    #[test]
    fn text_that_is_not_a_token_is_kept() {
        for s in ["sk-ant-", "sk-ant-oat01-", "sk-ant-OAT01-abc", "sk-ant-oat1-abc", "see sk-ant-xyz", "ok", ""] {
            assert_eq!(redact(s), s);
        }
        assert_eq!(redact("é sk-ant-oat01-"), "é sk-ant-oat01-");
    }

    #[test]
    fn dead_token_signs_of_both_cli_generations() {
        assert!(dead_token_sign(r#"400 {"error":"invalid_grant"}"#).unwrap().contains("invalid_grant"));
        let old = r#"Failed to authenticate. API Error: 401 {"message":"OAuth token has expired. Please obtain a new token"}"#;
        assert!(dead_token_sign(old).unwrap().contains("expired"));
        assert!(dead_token_sign("Not logged in · Please run /login").is_some());
        assert_eq!(dead_token_sign("ok\n"), None);
        assert_eq!(dead_token_sign("API Error: Connection error."), None);
    }
}

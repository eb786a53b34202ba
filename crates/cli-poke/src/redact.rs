//! What the CLI printed: tokens hidden before anything is logged, and the signs of a dead
//! refresh token.

pub(crate) use credmap::redact;

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
    use credmap::Secret;

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
        for s in ["sk-ant-", "sk-ant-oat01-", "sk-ant-OAT01-abc", "see sk-ant-xyz", "ok", ""] {
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

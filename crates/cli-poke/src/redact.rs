//! What the CLI printed: tokens hidden before anything is logged, and the one sign in its output
//! that the refresh token is dead.
//!
//! Only `invalid_grant` counts. "OAuth token has expired" (2.1.112 to 2.1.332) and "Not logged
//! in" (2.1.197) are printed just the same when the token endpoint merely failed (HTTP 500, no
//! network) and the access token had expired meanwhile: a transient failure that the next run
//! repairs, not a lost login (docs/UPSTREAM.md, "Claude Code CLI"). The other evidence is the
//! logged-out stub and `loginEnded` in the file, and the token request's status in 2.1.112's
//! debug log ([`crate::debuglog`]).

pub(crate) use credmap::redact;

/// Why the CLI's output proves the refresh token dead, if it does.
#[must_use]
pub(crate) fn dead_token_sign(output: &str) -> Option<&'static str> {
    output.contains("invalid_grant").then_some("the token endpoint answered invalid_grant: the refresh token is dead")
}

/// The last non-empty line of the CLI's output, tokens hidden, at most 300 characters: what a
/// "refresh failed" message quotes.
#[must_use]
pub(crate) fn last_line(output: &str) -> Option<String> {
    let line = output.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let line = redact(line);
    Some(line.char_indices().nth(300).map_or(line.clone(), |(i, _)| format!("{}…", &line[..i])))
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
    fn regression_expired_and_not_logged_in_were_taken_for_a_dead_login() {
        assert!(dead_token_sign(r#"400 {"error":"invalid_grant"}"#).unwrap().contains("invalid_grant"));
        // What every build prints after a token endpoint 500 once the access token has expired.
        let old = r#"Failed to authenticate. API Error: 401 {"message":"OAuth token has expired. Please obtain a new token"}"#;
        assert_eq!(dead_token_sign(old), None);
        assert_eq!(dead_token_sign("Not logged in · Please run /login"), None);
        assert_eq!(dead_token_sign("ok\n"), None);
        assert_eq!(dead_token_sign("API Error: Connection error."), None);
    }

    #[test]
    fn last_line_is_redacted_and_bounded() {
        let t = fake("oat01");
        assert_eq!(last_line(&format!("a\n  b {t} \n\n")).unwrap(), redact(&format!("b {t}")));
        assert_eq!(last_line("\n \n"), None);
        assert_eq!(last_line(&"x".repeat(400)).unwrap().chars().count(), 301);
    }
}

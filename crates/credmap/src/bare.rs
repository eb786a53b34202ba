//! A bare token, as `claude setup-token` prints it.
//!
//! Two readers: [`parse`] for text that must be exactly one token (a file holding just the
//! token, a value pasted on stdin), and [`find_token`] for free text that contains one token
//! among other output (the whole transcript of `claude setup-token`, with its banner, colour
//! codes and instructions).
//!
//! Neither checks the length: `openclaw models auth paste-token` wants at least 80 characters,
//! and that rule is checked where the token is handed over.
//!
//! ```
//! use credmap::bare;
//!
//! let token = format!("sk-ant-oat01-{}", "A1_b-".repeat(20));
//! assert_eq!(bare::parse(&format!("  {token}\n"))?.expose(), token);
//!
//! let output = format!("✓ Long-lived authentication token created:\n\n{token}\n\nStore it safely.\n");
//! assert_eq!(bare::find_token(&output)?.expose(), token);
//! # Ok::<(), credmap::Error>(())
//! ```

use crate::{Error, Secret};

/// The prefix of an OAuth access token and of a setup token.
pub const OAUTH_TOKEN_PREFIX: &str = "sk-ant-oat01-";

/// Whether `c` may appear in a token after its prefix (`[A-Za-z0-9_-]`).
#[must_use]
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Parses text that is exactly one OAuth token (surrounding whitespace allowed).
///
/// The token must start with [`OAUTH_TOKEN_PREFIX`] and continue with at least one of
/// `[A-Za-z0-9_-]`. The error says which rule failed ([`Error::NotAToken`]), never what the text
/// was.
///
/// ```
/// use credmap::{bare, Error};
/// assert!(bare::parse("sk-ant-oat01-abc_DEF-123\n").is_ok());
/// assert_eq!(
///     bare::parse("sk-ant-api03-abc"),
///     Err(Error::NotAToken { problem: "does not start with sk-ant-oat01-" })
/// );
/// assert_eq!(
///     bare::parse("sk-ant-oat01-abc\nsk-ant-oat01-def"),
///     Err(Error::NotAToken { problem: "contains whitespace or several lines" })
/// );
/// ```
pub fn parse(text: &str) -> Result<Secret, Error> {
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::NotAToken { problem: "empty" });
    }
    if token.contains(char::is_whitespace) {
        return Err(Error::NotAToken { problem: "contains whitespace or several lines" });
    }
    let Some(rest) = token.strip_prefix(OAUTH_TOKEN_PREFIX) else {
        return Err(Error::NotAToken { problem: "does not start with sk-ant-oat01-" });
    };
    if rest.is_empty() {
        return Err(Error::NotAToken { problem: "nothing after the sk-ant-oat01- prefix" });
    }
    if !rest.chars().all(is_token_char) {
        return Err(Error::NotAToken { problem: "contains characters a token cannot have" });
    }
    Ok(Secret::new(token))
}

/// Finds the one OAuth token in free text (e.g. the whole output of `claude setup-token`).
///
/// A token is [`OAUTH_TOKEN_PREFIX`] followed by the longest run of `[A-Za-z0-9_-]` (so colour
/// codes, quotes and punctuation around it are not part of it). The same token printed several
/// times is fine; two different tokens are an error, since there is no telling which one is
/// meant.
///
/// ```
/// use credmap::{bare, Error};
/// let out = "Your token: \x1b[1msk-ant-oat01-XyZ\x1b[22m (valid for one year)";
/// assert_eq!(bare::find_token(out)?.expose(), "sk-ant-oat01-XyZ");
/// assert_eq!(
///     bare::find_token("sk-ant-oat01-one sk-ant-oat01-two"),
///     Err(Error::NotAToken { problem: "several different tokens found" })
/// );
/// # Ok::<(), credmap::Error>(())
/// ```
pub fn find_token(text: &str) -> Result<Secret, Error> {
    let mut found: Option<&str> = None;
    let mut from = 0;
    while let Some(offset) = text[from..].find(OAUTH_TOKEN_PREFIX) {
        let start = from + offset;
        let body_start = start + OAUTH_TOKEN_PREFIX.len();
        let body_len = text[body_start..].find(|c: char| !is_token_char(c)).unwrap_or(text.len() - body_start);
        let end = body_start + body_len;
        if body_len > 0 {
            let token = &text[start..end];
            match found {
                Some(previous) if previous != token => {
                    return Err(Error::NotAToken { problem: "several different tokens found" });
                }
                _ => found = Some(token),
            }
        }
        from = end;
    }
    found.map(Secret::new).ok_or(Error::NotAToken { problem: "no sk-ant-oat01- token found" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_token(tag: &str) -> String {
        format!("{OAUTH_TOKEN_PREFIX}TEST-{tag}-{}", "abcDEF0123_-".repeat(7))
    }

    fn problem(r: Result<Secret, Error>) -> &'static str {
        match r {
            Err(Error::NotAToken { problem }) => problem,
            other => panic!("expected NotAToken, got {other:?}"),
        }
    }

    #[test]
    fn parse_accepts_one_token_with_surrounding_whitespace() {
        let t = fake_token("one");
        for text in [t.clone(), format!("{t}\n"), format!("  {t}\r\n"), format!("\n\t{t}  \n\n")] {
            assert_eq!(parse(&text).unwrap().expose(), t);
        }
        // No length rule here: OpenClaw's 80-character minimum is checked elsewhere.
        assert_eq!(parse("sk-ant-oat01-x").unwrap().expose(), "sk-ant-oat01-x");
    }

    #[test]
    fn parse_names_the_problem_without_the_value() {
        let t = fake_token("two");
        assert_eq!(problem(parse("")), "empty");
        assert_eq!(problem(parse(" \n\t ")), "empty");
        assert_eq!(problem(parse(&format!("{t}\n{t}"))), "contains whitespace or several lines");
        assert_eq!(problem(parse(&format!("Token: {t}"))), "contains whitespace or several lines");
        assert_eq!(problem(parse("sk-ant-ort01-TESTrefresh")), "does not start with sk-ant-oat01-");
        assert_eq!(problem(parse("SK-ANT-OAT01-TEST")), "does not start with sk-ant-oat01-");
        assert_eq!(problem(parse(&format!("\"{t}\""))), "does not start with sk-ant-oat01-");
        assert_eq!(problem(parse("sk-ant-oat01-")), "nothing after the sk-ant-oat01- prefix");
        assert_eq!(problem(parse(&format!("{t}.x"))), "contains characters a token cannot have");
        assert_eq!(problem(parse(&format!("{t}é"))), "contains characters a token cannot have");
        assert_eq!(problem(parse(&format!("{t}\0"))), "contains characters a token cannot have");
        let err = parse(&format!("{t}!")).unwrap_err().to_string();
        assert!(!err.contains("TEST"), "{err}");
    }

    #[test]
    fn find_token_in_setup_token_output() {
        let t = fake_token("setup");
        let output = format!(
            "\x1b[?25l\x1b[2K\x1b[1G✓ Long-lived authentication token created successfully!\n\n\
             Your OAuth token (valid for 1 year):\n\n\x1b[1m{t}\x1b[22m\n\n\
             Store this token securely. You won't be able to see it again.\n\n\
             Use this token by setting: export CLAUDE_CODE_OAUTH_TOKEN=<token>\n\x1b[?25h"
        );
        assert_eq!(find_token(&output).unwrap().expose(), t);
    }

    #[test]
    fn find_token_tolerates_repeats_and_punctuation() {
        let t = fake_token("rep");
        assert_eq!(find_token(&format!("a {t}. b \"{t}\" c '{t}',")).unwrap().expose(), t);
        assert_eq!(find_token(&format!("CLAUDE_CODE_OAUTH_TOKEN={t}\n")).unwrap().expose(), t);
    }

    #[test]
    fn find_token_errors() {
        assert_eq!(problem(find_token("")), "no sk-ant-oat01- token found");
        assert_eq!(problem(find_token("Error: not logged in")), "no sk-ant-oat01- token found");
        assert_eq!(problem(find_token("prefix only: sk-ant-oat01- and nothing")), "no sk-ant-oat01- token found");
        assert_eq!(problem(find_token("refresh: sk-ant-ort01-TESTabc")), "no sk-ant-oat01- token found");
        let (a, b) = (fake_token("a"), fake_token("b"));
        assert_eq!(problem(find_token(&format!("{a}\n{b}\n"))), "several different tokens found");
        // A token that is a prefix of another is still a different token.
        assert_eq!(problem(find_token(&format!("{a} {a}X"))), "several different tokens found");
    }

    #[test]
    fn find_token_handles_multibyte_text_around() {
        let t = fake_token("utf8");
        assert_eq!(find_token(&format!("🔑→{t}←🔑")).unwrap().expose(), t);
        assert_eq!(problem(find_token("sk-ant-oat01-é")), "no sk-ant-oat01- token found");
    }
}

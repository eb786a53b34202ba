//! Telling the formats apart.

use crate::{Error, bare, dotenv, json};
use std::fmt;
use std::str::FromStr;

/// A credentials format this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Claude Code CLI `.credentials.json` ([`crate::claude`]).
    Claude,
    /// OpenClaw legacy `credentials/oauth.json` ([`crate::oauth_json`]).
    OpenclawOauth,
    /// OpenClaw legacy `auth-profiles.json` ([`crate::auth_profiles`]).
    OpenclawProfiles,
    /// A `KEY=value` file ([`crate::dotenv`]).
    Dotenv,
    /// A systemd drop-in ([`crate::dropin`]).
    SystemdDropin,
    /// A bare token ([`crate::bare`]).
    BareToken,
}

impl Format {
    /// Every format, in detection order.
    pub const ALL: [Self; 6] =
        [Self::Claude, Self::OpenclawOauth, Self::OpenclawProfiles, Self::Dotenv, Self::SystemdDropin, Self::BareToken];

    /// The format's name on the command line and in output.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Claude => "claude",
            Self::OpenclawOauth => "openclaw-oauth",
            Self::OpenclawProfiles => "openclaw-profiles",
            Self::Dotenv => "dotenv",
            Self::SystemdDropin => "systemd-dropin",
            Self::BareToken => "bare-token",
        }
    }

    /// Whether documents of this format record an expiry (a bare token, `.env` and drop-in do not).
    #[must_use]
    pub fn has_expiry(self) -> bool {
        matches!(self, Self::Claude | Self::OpenclawOauth | Self::OpenclawProfiles)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|f| f.name()).collect();
            format!("unknown format `{s}` (one of: {})", names.join(", "))
        })
    }
}

/// Detects the format of a document.
///
/// JSON objects are told apart by their keys (`claudeAiOauth`, `profiles`, `anthropic`). Input
/// that starts like JSON but does not parse is reported as the JSON error (a half-written
/// `.credentials.json` is "truncated JSON", not "unrecognised"). Text is a bare token when it is
/// one token, a drop-in when it has a `[Section]` header, else `KEY=value` when it has at least
/// one assignment.
///
/// ```
/// use credmap::{detect, Format};
/// assert_eq!(detect(br#"{"claudeAiOauth":{}}"#), Ok(Format::Claude));
/// assert_eq!(detect(b"[Service]\nEnvironment=ANTHROPIC_OAUTH_TOKEN=x\n"), Ok(Format::SystemdDropin));
/// assert_eq!(detect(b"ANTHROPIC_OAUTH_TOKEN=x\n"), Ok(Format::Dotenv));
/// assert!(detect(br#"{"claudeAiOauth":{"acc"#).is_err());
/// ```
pub fn detect(bytes: &[u8]) -> Result<Format, Error> {
    let text = json::text(bytes)?;
    // A byte-order mark before JSON is JSON all the same (json::parse then names the mark), not
    // a `KEY=value` file with a bad first line.
    let unmarked = text.strip_prefix('\u{feff}').unwrap_or(text);
    let trimmed = unmarked.trim_start();
    if trimmed.starts_with('{') || (trimmed.starts_with('[') && !starts_with_section_header(trimmed)) {
        let doc = json::parse(bytes)?;
        return if doc.root.contains_key(crate::claude::KEY) {
            Ok(Format::Claude)
        } else if doc.root.contains_key("profiles") {
            Ok(Format::OpenclawProfiles)
        } else if doc.root.contains_key(crate::oauth_json::PROVIDER) {
            Ok(Format::OpenclawOauth)
        } else {
            Err(Error::UnrecognisedFormat)
        };
    }
    if bare::parse(text).is_ok() {
        return Ok(Format::BareToken);
    }
    if unmarked.lines().any(|l| {
        let l = l.trim();
        l.starts_with('[') && l.ends_with(']')
    }) {
        return Ok(Format::SystemdDropin);
    }
    match dotenv::parse(text) {
        Ok(env) if !env.entries().is_empty() => Ok(Format::Dotenv),
        Ok(_) => Err(Error::UnrecognisedFormat),
        Err(e) => Err(e),
    }
}

/// `[Service]`-style first line (a unit file), as opposed to a JSON array.
fn starts_with_section_header(text: &str) -> bool {
    let first = text.lines().next().unwrap_or("").trim_end();
    first.len() > 2
        && first.ends_with(']')
        && first[1..first.len() - 1].chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert!("json".parse::<Format>().unwrap_err().contains("one of: claude"));
    }

    #[test]
    fn json_kinds() {
        assert_eq!(detect(include_bytes!("../tests/fixtures/claude-2.1.112-with-mcp.json")), Ok(Format::Claude));
        assert_eq!(detect(include_bytes!("../tests/fixtures/oauth-with-openai.json")), Ok(Format::OpenclawOauth));
        assert_eq!(
            detect(include_bytes!("../tests/fixtures/auth-profiles-cooldown.json")),
            Ok(Format::OpenclawProfiles)
        );
        assert_eq!(detect(b"{}"), Err(Error::UnrecognisedFormat));
        assert_eq!(
            detect(b"[1,2]"),
            Err(Error::WrongType { path: "(root)".into(), expected: "an object", found: "an array" })
        );
    }

    #[test]
    fn unit_files_are_not_mistaken_for_json_arrays() {
        assert_eq!(detect(b"[Service]\nEnvironment=A=b\n"), Ok(Format::SystemdDropin));
        assert_eq!(
            detect(b"# managed\n[Unit]\nDescription=x\n[Service]\nEnvironment=A=b\n"),
            Ok(Format::SystemdDropin)
        );
        assert_eq!(detect(b"ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-x\n"), Ok(Format::Dotenv));
        assert_eq!(detect(b"  sk-ant-oat01-abcDEF_123-x\n"), Ok(Format::BareToken));
        assert!(matches!(detect(b"[\"a\"]"), Err(Error::WrongType { .. })));
    }

    /// A `.credentials.json` saved with a byte-order mark was taken for a `KEY=value` file:
    /// "line 1: invalid character in variable name".
    #[test]
    fn regression_a_bom_before_json_was_taken_for_dotenv() {
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(include_bytes!("../tests/fixtures/claude-2.1.112-with-mcp.json"));
        assert_eq!(detect(&with_bom), Err(Error::ByteOrderMark));
        assert!(Error::ByteOrderMark.to_string().contains("byte-order mark"));
        assert_eq!(crate::claude::parse(&with_bom).unwrap_err(), Error::ByteOrderMark);
        // Text formats keep theirs.
        assert_eq!(detect(b"\xEF\xBB\xBFANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-x\n"), Ok(Format::Dotenv));
        assert_eq!(detect(b"\xEF\xBB\xBF[Service]\nEnvironment=A=b\n"), Ok(Format::SystemdDropin));
    }

    #[test]
    fn truncated_json_is_reported_as_truncated() {
        let full = include_bytes!("../tests/fixtures/claude-2.1.112-with-mcp.json");
        for cut in [1, 10, full.len() / 2, full.len() - 1] {
            assert!(matches!(detect(&full[..cut]), Err(Error::Json { truncated: true, .. })), "cut at {cut}");
        }
    }
}

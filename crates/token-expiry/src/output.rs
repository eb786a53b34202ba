//! The output formats: text lines, JSON lines, bare seconds and Prometheus textfile metrics.
//!
//! No function here ever sees a raw token: tokens print through `Secret`'s `Display` (prefix and
//! fingerprint) or as their fingerprint.

use crate::report::{Outcome, Report, Status};
use serde_json::{Map, Value};
use std::fmt::Write as _;

pub(crate) use keeper_core::clock::human;

/// One judged input.
pub(crate) type Judged = (Report, Status);

/// Whole seconds from `now_ms` until `expires_ms`, rounded down (negative once expired).
pub(crate) fn remaining_seconds(expires_ms: i64, now_ms: i64) -> i64 {
    (expires_ms - now_ms).div_euclid(1000)
}

/// `7h 59m 12s left` / `3m 5s ago`.
pub(crate) fn remaining_text(expires_ms: i64, now_ms: i64) -> String {
    let ms = expires_ms - now_ms;
    if ms > 0 { format!("{} left", human((ms / 1000) as u64)) } else { format!("{} ago", human((-ms / 1000) as u64)) }
}

/// `login ends 2026-05-31T12:00:00Z (in 29d 23h)` / `login ended … (2h ago)`: the CLI's
/// `refreshTokenExpiresAt`, the hard end of the login that no refresh moves.
pub(crate) fn login_text(end_ms: i64, now_ms: i64) -> String {
    let at = credmap::ExpiresAt::from_millis(end_ms).map_or_else(|_| end_ms.to_string(), |e| e.to_string());
    let ms = end_ms - now_ms;
    if ms > 0 {
        format!("login ends {at} (in {}; then `claude auth login`)", human((ms / 1000) as u64))
    } else {
        format!("login ended {at} ({} ago; run `claude auth login`)", human((-ms / 1000) as u64))
    }
}

/// `claude`, or `openclaw-profiles profile anthropic:claude-code`, or `dotenv ANTHROPIC_OAUTH_TOKEN`.
fn source_kind(r: &Report, key: &str) -> String {
    let Some(format) = r.format else { return "unknown format".to_owned() };
    let mut out = format.name().to_owned();
    if let Some(p) = &r.profile {
        let _ = write!(out, " profile {p}");
    }
    if matches!(format, credmap::Format::Dotenv | credmap::Format::SystemdDropin) {
        let _ = write!(out, " {key}");
    }
    out
}

/// The default one-line report on stdout, or `None` for invalid inputs (reported on stderr).
pub(crate) fn text_line((r, status): &Judged, now_ms: i64, key: &str) -> Option<String> {
    let name = r.name();
    let word = status.word();
    Some(match &r.outcome {
        Outcome::Expiry { token, expires_at, refresh_expires_at } => {
            let mut line = format!(
                "{name}: {word}, {}, expires {expires_at}, {}, {token}",
                remaining_text(expires_at.as_millis(), now_ms),
                source_kind(r, key)
            );
            if let Some(end) = refresh_expires_at {
                let _ = write!(line, ", {}", login_text(end.as_millis(), now_ms));
            }
            line
        }
        Outcome::NoExpiry { token } => format!("{name}: {word}, no expiry recorded, {}, {token}", source_kind(r, key)),
        Outcome::LoggedOut => {
            format!("{name}: {word}, the Claude CLI is logged out: run `claude auth login`, {}", source_kind(r, key))
        }
        Outcome::Invalid(_) => return None,
    })
}

/// The one-line error on stderr: for invalid inputs always, and under `--seconds` also for inputs
/// with no expiry to print.
pub(crate) fn error_line(r: &Report, seconds_mode: bool) -> Option<String> {
    let problem = match &r.outcome {
        Outcome::Invalid(p) => p.to_string(),
        Outcome::NoExpiry { .. } if seconds_mode => {
            format!("no expiry recorded ({})", r.format.map_or("unknown format", credmap::Format::name))
        }
        Outcome::LoggedOut if seconds_mode => credmap::Error::LoggedOut.to_string(),
        _ => return None,
    };
    Some(format!("{}: error: {problem}", r.name()))
}

/// `--seconds`: remaining whole seconds, or `None` when the input has no expiry.
pub(crate) fn seconds_line((r, _): &Judged, now_ms: i64) -> Option<String> {
    match &r.outcome {
        Outcome::Expiry { expires_at, .. } => Some(remaining_seconds(expires_at.as_millis(), now_ms).to_string()),
        _ => None,
    }
}

/// `--json`: one object per input.
pub(crate) fn json_line((r, status): &Judged, now_ms: i64) -> String {
    let mut o = Map::new();
    o.insert("file".into(), Value::from(r.name()));
    if let Some(f) = r.format {
        o.insert("format".into(), Value::from(f.name()));
    }
    if let Some(p) = &r.profile {
        o.insert("profile".into(), Value::from(p.as_str()));
    }
    o.insert("status".into(), Value::from(status.word()));
    o.insert("exit_code".into(), Value::from(status.exit_code()));
    match &r.outcome {
        Outcome::Expiry { token, expires_at, refresh_expires_at } => {
            o.insert("expires_at".into(), Value::from(expires_at.to_string()));
            o.insert("expires_at_ms".into(), Value::from(expires_at.as_millis()));
            o.insert("remaining_seconds".into(), Value::from(remaining_seconds(expires_at.as_millis(), now_ms)));
            o.insert("fingerprint".into(), Value::from(token.fingerprint().to_string()));
            if let Some(end) = refresh_expires_at {
                o.insert("login_expires_at".into(), Value::from(end.to_string()));
                o.insert("login_expires_at_ms".into(), Value::from(end.as_millis()));
                o.insert("login_remaining_seconds".into(), Value::from(remaining_seconds(end.as_millis(), now_ms)));
                // The same instant under its earlier name, for existing consumers.
                o.insert("refresh_token_expires_at".into(), Value::from(end.to_string()));
            }
        }
        Outcome::NoExpiry { token } => {
            o.insert("fingerprint".into(), Value::from(token.fingerprint().to_string()));
        }
        Outcome::LoggedOut => {}
        Outcome::Invalid(p) => {
            o.insert("error".into(), Value::from(p.to_string()));
        }
    }
    Value::Object(o).to_string()
}

/// Escapes a Prometheus label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub(crate) fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `--prometheus`: `node_exporter` textfile metrics, each family once with its series together.
pub(crate) fn prometheus(judged: &[Judged], now_ms: i64) -> String {
    type Sample = fn(&Judged, i64) -> Option<String>;
    let families: [(&str, &str, Sample); 5] = [
        (
            "openclaw_keeper_token_expiry_timestamp_seconds",
            "When the OAuth access token expires, as Unix time.",
            |(r, _), _| expiry_ms(r).map(|ms| ms.div_euclid(1000).to_string()),
        ),
        (
            "openclaw_keeper_token_remaining_seconds",
            "Seconds until the OAuth access token expires (negative once expired).",
            |(r, _), now| expiry_ms(r).map(|ms| remaining_seconds(ms, now).to_string()),
        ),
        (
            "openclaw_keeper_token_login_expiry_timestamp_seconds",
            "When the login ends (claudeAiOauth.refreshTokenExpiresAt; refreshes never move it), as Unix time.",
            |(r, _), _| login_ms(r).map(|ms| ms.div_euclid(1000).to_string()),
        ),
        (
            "openclaw_keeper_token_valid",
            "1 when the token has not expired, 0 when it has or the file is a logged-out stub or unreadable.",
            |(_, status), _| match status {
                Status::Ok | Status::Within | Status::LoginEnding => Some("1".into()),
                Status::Expired | Status::LoggedOut | Status::Invalid => Some("0".into()),
                Status::NoExpiry => None,
            },
        ),
        (
            "openclaw_keeper_token_read_ok",
            "1 when the file was read and understood, 0 when it is missing, unreadable or invalid.",
            |(_, status), _| Some(if *status == Status::Invalid { "0" } else { "1" }.into()),
        ),
    ];
    let mut out = String::new();
    for (name, help, sample) in families {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for j in judged {
            if let Some(v) = sample(j, now_ms) {
                let _ = writeln!(out, "{name}{{file=\"{}\"}} {v}", escape_label(&j.0.name()));
            }
        }
    }
    out
}

fn login_ms(r: &Report) -> Option<i64> {
    match &r.outcome {
        Outcome::Expiry { refresh_expires_at: Some(end), .. } => Some(end.as_millis()),
        _ => None,
    }
}

fn expiry_ms(r: &Report) -> Option<i64> {
    match &r.outcome {
        Outcome::Expiry { expires_at, .. } => Some(expires_at.as_millis()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(0), "0s");
        assert_eq!(human(59), "59s");
        assert_eq!(human(7 * 3600 + 59 * 60 + 12), "7h 59m 12s");
        assert_eq!(human(3 * 60 + 5), "3m 5s");
        assert_eq!(human(86_400 + 5), "1d 5s");
        assert_eq!(human(3600), "1h");
    }

    #[test]
    fn remaining_rounds_towards_the_past() {
        assert_eq!(remaining_seconds(10_500, 0), 10);
        assert_eq!(remaining_seconds(0, 500), -1);
        assert_eq!(remaining_text(185_999, 0), "3m 5s left");
        assert_eq!(remaining_text(0, 185_999), "3m 5s ago");
        assert_eq!(remaining_text(0, 0), "0s ago");
    }

    #[test]
    fn label_escaping() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}

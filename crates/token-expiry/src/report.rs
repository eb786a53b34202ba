//! Reading one input and judging its token: the part shared by the report and the wait mode.

use credmap::auth_profiles::{self, DEFAULT_PROFILE_ID, ProfileKind};
use credmap::claude::{self, OauthState};
use credmap::{Credential, ExpiresAt, Format, Secret, bare, dotenv, dropin, json, oauth_json};
use keeper_core::input::{self, ReadError, Source};
use std::fmt;
use std::time::Duration;

/// How inputs are interpreted (from the command line).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Format forced with `--format`, else detected per input.
    pub(crate) format: Option<Format>,
    /// Profile asked for with `--profile-id`; `None` means the default with fallback.
    pub(crate) profile_id: Option<String>,
    /// Variable holding the token in `KEY=value` files and drop-ins.
    pub(crate) key: String,
}

/// What one input says about its token.
#[derive(Debug)]
pub(crate) struct Report {
    /// Where it was read from.
    pub(crate) source: Source,
    /// Its format, once known.
    pub(crate) format: Option<Format>,
    /// The `auth-profiles.json` profile reported on.
    pub(crate) profile: Option<String>,
    /// What was found.
    pub(crate) outcome: Outcome,
}

/// What was found in one input.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A token with an expiry.
    Expiry {
        /// The access token (printed only as prefix + fingerprint).
        token: Secret,
        /// When it expires.
        expires_at: ExpiresAt,
        /// When the login ends (the CLI's `refreshTokenExpiresAt`: the refresh token's hard end,
        /// which no refresh extends), when the file records it.
        refresh_expires_at: Option<ExpiresAt>,
    },
    /// A token in a format that records no expiry.
    NoExpiry {
        /// The token.
        token: Secret,
    },
    /// The Claude CLI's logged-out stub.
    LoggedOut,
    /// Unreadable or invalid input.
    Invalid(Problem),
}

/// Why an input is unusable.
#[derive(Debug)]
pub(crate) enum Problem {
    /// Reading failed.
    Read(ReadError),
    /// The document is malformed or incomplete.
    Format(credmap::Error),
    /// An `oauth.json` without an `anthropic` entry.
    NoAnthropicEntry,
    /// `--profile-id ID` names no profile.
    NoSuchProfile(String),
    /// No Anthropic `oauth`/`token` profile with an expiry.
    NoUsableProfile,
    /// The variable is not set in a `KEY=value` file or drop-in.
    KeyNotSet(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => e.fmt(f),
            Self::Format(e) => e.fmt(f),
            Self::NoAnthropicEntry => f.write_str("no anthropic entry"),
            Self::NoSuchProfile(id) => write!(f, "no profile `{id}`"),
            Self::NoUsableProfile => {
                write!(f, "no profile `{DEFAULT_PROFILE_ID}` and no other Anthropic oauth/token profile with an expiry")
            }
            Self::KeyNotSet(key) => write!(f, "`{key}` is not set (see --key)"),
        }
    }
}

impl From<credmap::Error> for Problem {
    fn from(e: credmap::Error) -> Self {
        Self::Format(e)
    }
}

/// The verdict on one input; [`Status::rank`] orders them by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Not expired (more than `--within` left).
    Ok,
    /// Expires within `--within`.
    Within,
    /// Already expired.
    Expired,
    /// Logged-out stub.
    LoggedOut,
    /// Unreadable or invalid.
    Invalid,
    /// No expiry recorded.
    NoExpiry,
    /// The access token is fine, but the login ends within `--login-within` (or has ended).
    LoginEnding,
}

impl Status {
    /// The word used in every output.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Within => "within",
            Self::Expired => "expired",
            Self::LoggedOut => "logged-out",
            Self::Invalid => "invalid",
            Self::NoExpiry => "no-expiry",
            Self::LoginEnding => "login-ending",
        }
    }

    /// The exit code this status alone gives.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Within => 1,
            Self::Expired => 2,
            Self::LoggedOut => 3,
            Self::Invalid => 4,
            Self::NoExpiry => 5,
            Self::LoginEnding => EXIT_LOGIN_ENDING,
        }
    }

    /// How bad it is; with several inputs the worst wins (4 > 3 > 2 > 1 > 6 > 5 > 0).
    pub(crate) fn rank(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::NoExpiry => 1,
            Self::LoginEnding => 2,
            Self::Within => 3,
            Self::Expired => 4,
            Self::LoggedOut => 5,
            Self::Invalid => 6,
        }
    }
}

/// The exit code of [`Status::LoginEnding`]: the login ends within `--login-within`.
pub(crate) const EXIT_LOGIN_ENDING: u8 = 6;

/// Whether `remaining_ms` is `window` or less (negative: already past).
fn inside(remaining_ms: i64, window: Duration) -> bool {
    u128::try_from(remaining_ms).map_or(true, |r| r <= window.as_millis())
}

impl Report {
    /// The verdict at `now_ms`, with the `--within` and `--login-within` windows if any. The
    /// access token's state comes first: a login ending soon is reported only for a token that is
    /// otherwise fine (and only when the file records the login's end).
    pub(crate) fn status(&self, now_ms: i64, within: Option<Duration>, login_within: Option<Duration>) -> Status {
        match &self.outcome {
            Outcome::Expiry { expires_at, refresh_expires_at, .. } => {
                let remaining = expires_at.remaining_ms(now_ms);
                if remaining <= 0 {
                    Status::Expired
                } else if within.is_some_and(|w| inside(remaining, w)) {
                    Status::Within
                } else if login_within
                    .zip(*refresh_expires_at)
                    .is_some_and(|(w, end)| inside(end.remaining_ms(now_ms), w))
                {
                    Status::LoginEnding
                } else {
                    Status::Ok
                }
            }
            Outcome::NoExpiry { .. } => Status::NoExpiry,
            Outcome::LoggedOut => Status::LoggedOut,
            Outcome::Invalid(_) => Status::Invalid,
        }
    }

    /// The name of the input in messages: the path, or `(stdin)`.
    pub(crate) fn name(&self) -> String {
        self.source.to_string()
    }
}

/// Reads and judges one input.
pub(crate) fn inspect(source: &Source, settings: &Settings) -> Report {
    let (format, profile, outcome) = match input::read_bounded(source) {
        Ok(bytes) => interpret(&bytes, settings),
        Err(e) => (None, None, Outcome::Invalid(Problem::Read(e))),
    };
    Report { source: source.clone(), format, profile, outcome }
}

/// Interprets the bytes of one input: its format (once known), the profile reported on, and
/// what was found.
fn interpret(bytes: &[u8], settings: &Settings) -> (Option<Format>, Option<String>, Outcome) {
    let format = match settings.format.map_or_else(|| credmap::detect(bytes), Ok) {
        Ok(f) => f,
        Err(e) => return (None, None, Outcome::Invalid(e.into())),
    };
    let mut profile = None;
    let result = match format {
        Format::Claude => claude_outcome(bytes),
        Format::OpenclawOauth => oauth_json::parse(bytes)
            .and_then(|doc| oauth_json::anthropic(&doc))
            .map_err(Problem::from)
            .and_then(|c| c.ok_or(Problem::NoAnthropicEntry))
            .map(with_expiry),
        Format::OpenclawProfiles => profile_outcome(bytes, settings.profile_id.as_deref(), &mut profile),
        Format::Dotenv => text_token(bytes, |t| Ok(dotenv::parse(t)?.token(&settings.key)), &settings.key),
        Format::SystemdDropin => text_token(bytes, |t| Ok(dropin::parse(t)?.token(&settings.key)), &settings.key),
        Format::BareToken => {
            json::text(bytes).and_then(bare::parse).map(|token| Outcome::NoExpiry { token }).map_err(Problem::from)
        }
    };
    (Some(format), profile, result.unwrap_or_else(Outcome::Invalid))
}

fn with_expiry(c: Credential) -> Outcome {
    Outcome::Expiry { token: c.access_token, expires_at: c.expires_at, refresh_expires_at: c.refresh_token_expires_at }
}

fn claude_outcome(bytes: &[u8]) -> Result<Outcome, Problem> {
    Ok(match claude::read(&claude::parse(bytes)?)? {
        OauthState::LoggedOut { .. } => Outcome::LoggedOut,
        OauthState::Credential(c) => with_expiry(c),
    })
}

/// A token held in a text format without expiry (`.env`, drop-in).
fn text_token(
    bytes: &[u8],
    get: impl FnOnce(&str) -> Result<Option<Secret>, credmap::Error>,
    key: &str,
) -> Result<Outcome, Problem> {
    let token = get(json::text(bytes)?)?.ok_or_else(|| Problem::KeyNotSet(key.to_owned()))?;
    Ok(Outcome::NoExpiry { token })
}

/// The profile asked for, or by default `anthropic:claude-code` and, when that is absent, the first
/// Anthropic `oauth`/`token` profile with an expiry that can be read.
fn profile_outcome(bytes: &[u8], requested: Option<&str>, chosen: &mut Option<String>) -> Result<Outcome, Problem> {
    let doc = auth_profiles::parse(bytes)?;
    if let Some(id) = requested {
        *chosen = Some(id.to_owned());
        let cred = auth_profiles::profile_credential(&doc, id)?;
        return cred.map(with_expiry).ok_or_else(|| Problem::NoSuchProfile(id.to_owned()));
    }
    *chosen = Some(DEFAULT_PROFILE_ID.to_owned());
    if let Some(cred) = auth_profiles::profile_credential(&doc, DEFAULT_PROFILE_ID)? {
        return Ok(with_expiry(cred));
    }
    *chosen = None;
    let mut first_error = None;
    for p in auth_profiles::anthropic_profiles(&doc)? {
        if !matches!(p.kind, ProfileKind::OAuth | ProfileKind::Token) || p.expires_at.is_none() {
            continue;
        }
        match auth_profiles::profile_credential(&doc, &p.id) {
            Ok(Some(cred)) => {
                *chosen = Some(p.id);
                return Ok(with_expiry(cred));
            }
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert((p.id, e));
            }
        }
    }
    match first_error {
        Some((id, e)) => {
            *chosen = Some(id);
            Err(e.into())
        }
        None => Err(Problem::NoUsableProfile),
    }
}

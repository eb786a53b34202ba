//! Reading the Claude CLI's credentials file: the one input, checked before anything is written.

use credmap::claude::{self, OauthState};
use credmap::{Credential, ExpiresAt};
use keeper_core::input::{ReadError, Source, read_bounded};
use serde_json::Value;
use std::path::Path;

/// A usable source: the credential and the `claudeAiOauth` section it came from (to tell a token
/// change from an unrelated rewrite of the file).
#[derive(Debug, Clone)]
pub(crate) struct Fresh {
    pub(crate) credential: Credential,
    pub(crate) section: Value,
}

/// Why the source cannot be copied anywhere.
#[derive(Debug)]
pub(crate) enum Unusable {
    /// Missing, unreadable, too large, half-written or malformed; an empty token.
    Invalid(String),
    /// The CLI's logged-out stub: its refresh failed and only `claude auth login` helps.
    LoggedOut,
    /// The token has already expired (the CLI has not refreshed it yet).
    Expired(ExpiresAt),
}

/// Reads and checks the source. `allow_expired` lets an expired token through.
pub(crate) fn read(path: &Path, now_ms: i64, allow_expired: bool) -> Result<Fresh, Unusable> {
    let bytes = read_bounded(&Source::File(path.to_path_buf())).map_err(|e| {
        Unusable::Invalid(match e {
            ReadError::NotFound => "no such file (has `claude auth login` been run as this user?)".to_owned(),
            other => other.to_string(),
        })
    })?;
    let doc = claude::parse(&bytes).map_err(|e| Unusable::Invalid(e.to_string()))?;
    let credential = match claude::read(&doc).map_err(|e| Unusable::Invalid(e.to_string()))? {
        OauthState::Credential(c) => c,
        OauthState::LoggedOut { .. } => return Err(Unusable::LoggedOut),
    };
    if !allow_expired && credential.is_expired(now_ms) {
        return Err(Unusable::Expired(credential.expires_at));
    }
    let section = claude::oauth_section(&doc).cloned().unwrap_or(Value::Null);
    Ok(Fresh { credential, section })
}

/// The source's `claudeAiOauth` section as it is now, or `None` when the file cannot be read or
/// parsed: what a one-shot run compares before and after a round to see a write that landed
/// during it. No checks (expiry, logged-out): a change to any of those is a change.
pub(crate) fn snapshot(path: &Path) -> Option<Value> {
    let bytes = read_bounded(&Source::File(path.to_path_buf())).ok()?;
    let doc = claude::parse(&bytes).ok()?;
    Some(claude::oauth_section(&doc).cloned().unwrap_or(Value::Null))
}

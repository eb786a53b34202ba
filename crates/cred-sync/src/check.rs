//! `--check`: one row per target saying whether it holds the source's token, without writing.

use crate::paste::PasteSettings;
use crate::store;
use crate::sync::{Resolved, Settings, read_target, resolve, retired};
use crate::target::{FileTarget, Kind, TargetSpec};
use credmap::{Credential, ExpiresAt, Secret};
use keeper_core::process;
use serde_json::{Value, json};
use std::fmt;

/// A target's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    InSync,
    Stale,
    Missing,
    Unreadable,
    RetiredFile,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::InSync => "in-sync",
            State::Stale => "stale",
            State::Missing => "missing",
            State::Unreadable => "unreadable",
            State::RetiredFile => "retired-file",
        })
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) target: String,
    pub(crate) kind: Kind,
    pub(crate) state: State,
    pub(crate) token: Option<Secret>,
    pub(crate) expires_at: Option<ExpiresAt>,
    pub(crate) detail: Option<String>,
}

impl Row {
    fn new(target: String, kind: Kind, state: State) -> Self {
        Self { target, kind, state, token: None, expires_at: None, detail: None }
    }

    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "target": self.target,
            "kind": self.kind.name(),
            "state": self.state.to_string(),
            "fingerprint": self.token.as_ref().map(ToString::to_string),
            "expires": self.expires_at.map(|e| e.to_string()),
            "expires_ms": self.expires_at.map(ExpiresAt::as_millis),
            "detail": self.detail,
        })
    }

    /// A table line: state, kind, target, token, expiry, detail.
    pub(crate) fn to_text(&self) -> String {
        let token = self.token.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
        let expires = self.expires_at.map_or_else(|| "-".to_owned(), |e| e.to_string());
        let detail = self.detail.as_deref().map(|d| format!("  ({d})")).unwrap_or_default();
        format!("{:<12} {:<17} {} {token} {expires}{detail}", self.state.to_string(), self.kind.name(), self.target)
    }
}

/// Rows for every target.
pub(crate) fn rows(settings: &Settings, cred: &Credential) -> Vec<Row> {
    let mut rows = Vec::new();
    for spec in &settings.targets {
        if spec.kind == Kind::OpenclawPaste {
            rows.push(paste_row(&settings.paste, spec.agent.as_deref(), cred));
            continue;
        }
        match spec.files() {
            Err(problem) => rows.push(Row::new(spec.to_string(), spec.kind, State::Unreadable).detail(problem)),
            Ok(files) if files.is_empty() => rows.push(empty_glob_row(spec)),
            Ok(files) => rows.extend(files.iter().map(|f| file_row(f, settings, cred))),
        }
    }
    rows
}

fn empty_glob_row(spec: &TargetSpec) -> Row {
    let name = spec.to_string();
    // No agent file to clean is the goal of clear-stale; no agent file to write is a gap.
    if spec.kind == Kind::ClearStale {
        Row::new(name, spec.kind, State::InSync).detail("no file matches")
    } else {
        Row::new(name, spec.kind, State::Missing).detail("no file matches")
    }
}

fn file_row(target: &FileTarget, settings: &Settings, cred: &Credential) -> Row {
    let name = crate::target::show(&target.path);
    let row = |state| Row::new(name.clone(), target.kind, state);
    let path = match resolve(&target.path, settings.follow_symlinks) {
        Err(problem) => return row(State::Unreadable).detail(problem),
        Ok(Resolved::Absent(_)) if target.kind == Kind::ClearStale => return row(State::InSync).detail("no file"),
        Ok(Resolved::Absent(p) | Resolved::Present(p)) => p,
    };
    if let Some(evidence) = retired(target, settings) {
        let present = path.exists();
        let what =
            if present { "present: remove it with `openclaw doctor --fix`" } else { "absent, but still configured" };
        return row(State::RetiredFile).detail(format!("{what}; {evidence}"));
    }
    let bytes = match read_target(&path) {
        Err(problem) => return row(State::Unreadable).detail(problem),
        Ok(None) => return row(State::Missing),
        Ok(Some(bytes)) => bytes,
    };
    if target.kind == Kind::ClearStale {
        return match store::clear_stale(&bytes) {
            Err(e) => row(State::Unreadable).detail(e.to_string()),
            Ok(cleared) if cleared.contents.is_none() => row(State::InSync).detail("no stale Anthropic profile"),
            Ok(cleared) => row(State::Stale).detail(format!("stale profiles: {}", cleared.removed.join(", "))),
        };
    }
    match store::holding(target.kind, Some(&bytes), &settings.shape) {
        Err(e) => row(State::Unreadable).detail(e.to_string()),
        Ok(mut held) => {
            if held.expires_at.is_none() {
                // A .env or drop-in: the expiry cred-sync remembers writing with this token.
                held.expires_at = held
                    .token
                    .as_ref()
                    .and_then(|t| crate::sync::remembered_expiry(&settings.paste.state_dir, &path, t));
            }
            let state = if held.matches(target.kind, cred, settings.shape.policy) {
                State::InSync
            } else if held.token.is_none() {
                State::Missing
            } else {
                State::Stale
            };
            Row { token: held.token, expires_at: held.expires_at, ..row(state) }
        }
    }
}

/// How far OpenClaw's recorded expiry may be from the source's and still be the same paste:
/// `--expires-in` is whole minutes counted from the moment of the paste, less the paste timeout
/// (added to this slack where it is used).
const PASTE_EXPIRY_SLACK_MS: i64 = 5 * 60 * 1000;

/// A paste target: the state file says what was pasted; `openclaw models status --json` says
/// whether OpenClaw still has it.
fn paste_row(paste: &PasteSettings, agent: Option<&str>, cred: &Credential) -> Row {
    let name =
        agent.map_or_else(|| Kind::OpenclawPaste.name().to_owned(), |a| format!("{}:{a}", Kind::OpenclawPaste.name()));
    let row = |state| Row::new(name.clone(), Kind::OpenclawPaste, state);
    let listed = match models_status(paste, agent) {
        Ok(listed) => listed,
        Err(problem) => return row(State::Unreadable).detail(problem),
    };
    let Some(listed) = listed else {
        return row(State::Missing).detail(format!("OpenClaw lists no profile {}", paste.profile_id));
    };
    let last = paste.last_pasted(agent);
    let same_token = last.as_ref().is_some_and(|l| l.fingerprint == cred.access_token.fingerprint().to_string());
    let slack = PASTE_EXPIRY_SLACK_MS + i64::try_from(paste.timeout.as_millis()).unwrap_or(i64::MAX / 2);
    let same_expiry = listed.expires_at.is_some_and(|e| (e.as_millis() - cred.expires_at.as_millis()).abs() <= slack);
    let state = if same_token && same_expiry { State::InSync } else { State::Stale };
    let token = if same_token { Some(cred.access_token.clone()) } else { None };
    let detail = match (&listed.status, last) {
        (Some(status), Some(_)) => format!("OpenClaw says {status}"),
        (Some(status), None) => format!("OpenClaw says {status}; not pasted by cred-sync"),
        (None, _) => "listed by OpenClaw".to_owned(),
    };
    Row { token, expires_at: listed.expires_at, ..row(state) }.detail(detail)
}

/// A profile as `openclaw models status --json` lists it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listed {
    pub(crate) status: Option<String>,
    pub(crate) expires_at: Option<ExpiresAt>,
}

fn models_status(paste: &PasteSettings, agent: Option<&str>) -> Result<Option<Listed>, String> {
    let mut cmd = paste.openclaw();
    cmd.args(["models", "status", "--json"]);
    if let Some(agent) = agent {
        cmd.args(["--agent", agent]);
    }
    let shown = PasteSettings::shown(&cmd);
    let done = process::run(cmd, None, paste.timeout).map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    // `models status` exits 1 for an expired or missing credential and still prints its JSON.
    let parsed: Option<Value> = serde_json::from_slice(&done.stdout).ok();
    match parsed {
        // E.g. AUTH_PROFILE_MIGRATION_REQUIRED when a retired JSON file sits beside the store.
        Some(v) if v.get("ok") == Some(&Value::Bool(false)) => {
            let message = v.pointer("/error/message").and_then(Value::as_str).unwrap_or("no message");
            Err(format!("`{shown}` failed: {}", credmap::redact(message)))
        }
        Some(v) => Ok(find_profile(&v, &paste.profile_id)),
        None => Err(format!("`{shown}` {} without JSON output", done.describe())),
    }
}

/// Finds the profile in `auth.oauth.profiles[]` (by `profileId`; `expiresAt` in ms, absent once
/// expired — as OpenClaw 2026.6.1 and 2026.9.6 print it).
pub(crate) fn find_profile(status: &Value, profile_id: &str) -> Option<Listed> {
    let profiles = status.pointer("/auth/oauth/profiles")?.as_array()?;
    let p = profiles
        .iter()
        .find(|p| ["profileId", "id"].iter().any(|k| p.get(*k).and_then(Value::as_str) == Some(profile_id)))?;
    let expires_at = match p.get("expiresAt") {
        Some(Value::Number(n)) => n.as_f64().and_then(|n| ExpiresAt::from_number(n).ok()),
        Some(Value::String(s)) => humantime::parse_rfc3339_weak(s)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| ExpiresAt::from_millis(d.as_millis() as i64).ok()),
        _ => None,
    };
    Some(Listed { status: p.get("status").and_then(Value::as_str).map(str::to_owned), expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape `openclaw models status --json` printed in 2026.9.6 after a paste.
    #[test]
    fn the_pasted_profile_is_found_in_models_status() {
        let status = serde_json::json!({"auth": {"oauth": {"warnAfterMs": 86_400_000, "profiles": [
            {"profileId": "anthropic:other", "status": "ok", "expiresAt": 1_795_000_000_000_i64},
            {"profileId": "anthropic:claude-code", "provider": "anthropic", "type": "token", "status": "expiring",
             "expiresAt": 1_795_325_516_540_i64, "remainingMs": 28_789_982, "source": "store"}]}}});
        let listed = find_profile(&status, "anthropic:claude-code").unwrap();
        assert_eq!(listed.status.as_deref(), Some("expiring"));
        assert_eq!(listed.expires_at.map(ExpiresAt::as_millis), Some(1_795_325_516_540));
        assert_eq!(find_profile(&status, "anthropic:default"), None);
        let expired = serde_json::json!({"auth": {"oauth": {"profiles": [
            {"profileId": "anthropic:claude-code", "status": "expired", "reasonCode": "expired"}]}}});
        assert_eq!(find_profile(&expired, "anthropic:claude-code").unwrap().expires_at, None);
    }
}

//! One sync: the source's credential into every target, each judged and written on its own.

use crate::delivery::Delivery;
use crate::generation::{self, Version};
use crate::paste::{self, PasteSettings};
use crate::store::{self, Shape};
use crate::target::{FileTarget, Kind, TargetSpec, show};
use credmap::{Credential, ExpiresAt, Fingerprint, Secret};
use keeper_core::input::{ReadError, Source, read_bounded};
use keeper_core::write::{DirLock, overwrite_in_place, replace_atomically};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Everything a sync needs besides the credential.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) targets: Vec<TargetSpec>,
    pub(crate) shape: Shape,
    pub(crate) allow_downgrade: bool,
    pub(crate) follow_symlinks: bool,
    pub(crate) force_legacy: bool,
    pub(crate) paste: PasteSettings,
    /// The host's installed OpenClaw, when one is found.
    pub(crate) installed: Option<Version>,
}

/// What happened to one target.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// It already held the token.
    Unchanged,
    /// Written (or, in a dry run, would be).
    Written,
    /// Holds a token that lives longer (or, `by`, another target of the run does); not replaced.
    Downgrade { held: ExpiresAt, by: Option<String> },
    /// Could not be written; the message names the file and the problem.
    Failed(String),
}

/// One target's result.
#[derive(Debug, Clone)]
pub(crate) struct TargetReport {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) outcome: Outcome,
    /// What was written: the token, or for `clear-stale` the profiles removed.
    pub(crate) wrote: Wrote,
    /// How the running gateway takes what was written (meaningful for a written target).
    pub(crate) delivery: Delivery,
}

/// What a written target now holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Wrote {
    Nothing,
    Token { token: Secret, expires_at: ExpiresAt },
    Removed(Vec<String>),
}

impl TargetReport {
    fn new(name: String, kind: Kind, outcome: Outcome) -> Self {
        Self { name, kind, outcome, wrote: Wrote::Nothing, delivery: kind.default_delivery() }
    }

    /// The JSON change line for a written target (`compose-recreate --stdin` reads these):
    /// `restart` says whether the batch needs the gateway restarted (or recreated) to take it.
    pub(crate) fn change_line(&self, restart: bool) -> Option<Value> {
        if self.outcome != Outcome::Written {
            return None;
        }
        let (name, kind, delivery) = (&self.name, self.kind.name(), self.delivery.name());
        Some(match &self.wrote {
            Wrote::Token { token, expires_at } => json!({
                "target": name,
                "kind": kind,
                "fingerprint": token.to_string(),
                "expires": expires_at.to_string(),
                "expires_ms": expires_at.as_millis(),
                "delivery": delivery,
                "restart": restart,
            }),
            Wrote::Removed(ids) => {
                json!({"target": name, "kind": kind, "removed": ids, "delivery": delivery, "restart": restart})
            }
            Wrote::Nothing => json!({"target": name, "kind": kind, "delivery": delivery, "restart": restart}),
        })
    }
}

/// Syncs `cred` into every target. With `dry_run`, nothing is written and no program is run.
///
/// The downgrade rule holds for the run as a whole: when any target holds a different token that
/// expires later than `cred` (in the file, or as remembered for a file that records no expiry),
/// no target is given `cred` (unless `--allow-downgrade`), so a stale source never leaves the
/// copies on two tokens. A dry pass judges every target first; it reads, writes nothing.
pub(crate) fn sync_all(settings: &Settings, cred: &Credential, now_ms: i64, dry_run: bool) -> Vec<TargetReport> {
    if settings.allow_downgrade {
        return sync_each(settings, cred, now_ms, dry_run);
    }
    let judged = sync_each(settings, cred, now_ms, true);
    let newest = judged
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Downgrade { held, .. } => Some((*held, r.name.clone())),
            _ => None,
        })
        .max_by_key(|(held, _)| *held);
    if let Some((held, by)) = newest {
        return judged
            .into_iter()
            .map(|mut r| {
                if r.outcome == Outcome::Written && matches!(r.wrote, Wrote::Token { .. }) {
                    r.outcome = Outcome::Downgrade { held, by: Some(by.clone()) };
                    r.wrote = Wrote::Nothing;
                }
                r
            })
            .collect();
    }
    if dry_run { judged } else { sync_each(settings, cred, now_ms, false) }
}

/// Syncs `cred` into every target, each judged on its own.
fn sync_each(settings: &Settings, cred: &Credential, now_ms: i64, dry_run: bool) -> Vec<TargetReport> {
    let mut reports = Vec::new();
    for spec in &settings.targets {
        if spec.kind == Kind::OpenclawPaste {
            reports.push(paste::sync(&settings.paste, spec.agent.as_deref(), cred, now_ms, settings, dry_run));
            continue;
        }
        match spec.files() {
            Err(problem) => reports.push(TargetReport::new(spec.to_string(), spec.kind, Outcome::Failed(problem))),
            Ok(files) if files.is_empty() => keeper_core::log::log(
                keeper_core::log::Level::Warning,
                crate::PROGRAM,
                format_args!("{spec}: no file matches (yet)"),
            ),
            Ok(files) => reports.extend(files.iter().map(|f| sync_file(f, cred, settings, now_ms, dry_run))),
        }
    }
    reports
}

/// Where a file target really is, after the symlink rule.
pub(crate) enum Resolved {
    Absent(PathBuf),
    Present(PathBuf),
}

/// Applies the symlink rule and refuses directories.
pub(crate) fn resolve(path: &Path, follow_symlinks: bool) -> Result<Resolved, String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            if !follow_symlinks {
                return Err(format!(
                    "{} is a symbolic link: not written, since replacing it would replace the link (pass \
                     --follow-symlinks to write the file it points to)",
                    path.display()
                ));
            }
            match std::fs::canonicalize(path) {
                Ok(real) => resolve(&real, false),
                Err(e) => Err(format!("{} is a symbolic link that cannot be followed: {e}", path.display())),
            }
        }
        Ok(m) if m.is_dir() => Err(format!("{} is a directory, not a file", path.display())),
        Ok(_) => Ok(Resolved::Present(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Resolved::Absent(path.to_path_buf())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The SQLite-era refusal for a JSON target, unless `--force-legacy`.
pub(crate) fn retired(target: &FileTarget, settings: &Settings) -> Option<String> {
    if settings.force_legacy || !target.kind.is_retired_in_sqlite_era() {
        return None;
    }
    generation::sqlite_evidence(&target.path, settings.installed)
}

/// Reads a target's current bytes (`None` when it does not exist).
pub(crate) fn read_target(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match read_bounded(&Source::File(path.to_path_buf())) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(ReadError::NotFound) => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Where OpenClaw 2026.6.x keeps an agent's usage state (`usageStats`: cooldowns after errors),
/// beside `auth-profiles.json` (docs/UPSTREAM.md).
const AUTH_STATE_FILE: &str = "auth-state.json";

/// Clears `usageStats[profile_id]`'s cooldown in an agent's `auth-state.json`, when there is one:
/// a 401 on the old token puts the provider into a cooldown that the new token must not inherit
/// ("Provider anthropic has auth issue (skipping all models)"; seen with the real 2026.6.1, even
/// after its in-process restart). A file that cannot be read or written is left alone, with a
/// warning: the token itself was written.
fn clear_state_cooldown(path: &Path, profile_id: &str, in_place: bool) {
    let warn = |what: String| {
        keeper_core::log::log(keeper_core::log::Level::Warning, crate::PROGRAM, format_args!("{what}"));
    };
    let bytes = match read_target(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return,
        Err(problem) => return warn(format!("{problem}; its cooldown of {profile_id} is left as it is")),
    };
    let mut doc = match credmap::auth_profiles::parse(&bytes) {
        Ok(doc) => doc,
        Err(e) => return warn(format!("{}: {e}; its cooldown of {profile_id} is left as it is", path.display())),
    };
    if !credmap::auth_profiles::clear_cooldown(&mut doc, profile_id) {
        return;
    }
    let written =
        if in_place { overwrite_in_place(path, &doc.to_bytes()) } else { replace_atomically(path, &doc.to_bytes()) };
    match written {
        Ok(()) => keeper_core::log::log(
            keeper_core::log::Level::Info,
            crate::PROGRAM,
            format_args!("{}: cleared the cooldown of {profile_id} (the new token starts clean)", path.display()),
        ),
        Err(e) => warn(format!("cannot write {}: {e}; its cooldown of {profile_id} stays", path.display())),
    }
}

fn sync_file(target: &FileTarget, cred: &Credential, settings: &Settings, now_ms: i64, dry_run: bool) -> TargetReport {
    let name = show(&target.path);
    let kind = target.kind;
    match try_sync_file(target, cred, settings, now_ms, dry_run) {
        Ok((outcome, wrote, delivery)) => TargetReport { name, kind, outcome, wrote, delivery },
        Err(problem) => TargetReport::new(name, kind, Outcome::Failed(problem)),
    }
}

fn try_sync_file(
    target: &FileTarget,
    cred: &Credential,
    settings: &Settings,
    now_ms: i64,
    dry_run: bool,
) -> Result<(Outcome, Wrote, Delivery), String> {
    let mut delivery = target.kind.default_delivery();
    let (path, exists) = match resolve(&target.path, settings.follow_symlinks)? {
        Resolved::Absent(p) => (p, false),
        Resolved::Present(p) => (p, true),
    };
    if target.kind == Kind::ClearStale && !exists {
        return Ok((Outcome::Unchanged, Wrote::Nothing, delivery));
    }
    if let Some(evidence) = retired(target, settings) {
        return Err(generation::refusal(&path, &evidence, target.kind == Kind::ClearStale));
    }
    let dir = keeper_core::paths::parent_dir(&path);
    if !dir.is_dir() {
        if target.kind != Kind::SystemdDropin || dry_run {
            return Err(format!("{}: directory {} does not exist", path.display(), dir.display()));
        }
        // `openclaw-gateway.service.d/` is ours to create; the unit's own directory must exist.
        std::fs::create_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    // Two cred-sync processes (a unit and a hand-run one) must not interleave read and write.
    let _lock = DirLock::acquire(dir).map_err(|e| format!("cannot lock directory {}: {e}", dir.display()))?;
    let current = read_target(&path)?;
    let unreadable = |e: credmap::Error| {
        format!("{}: {e}; the file is left as it is (fix or remove it to let cred-sync write it)", path.display())
    };

    let (contents, wrote) = if target.kind == Kind::ClearStale {
        let bytes = current.as_deref().unwrap_or_default();
        let cleared = store::clear_stale(bytes).map_err(unreadable)?;
        if !cleared.kept_api_keys.is_empty() {
            keeper_core::log::log(
                keeper_core::log::Level::Warning,
                crate::PROGRAM,
                format_args!(
                    "{}: API-key profile(s) {} kept; they are used before ANTHROPIC_OAUTH_TOKEN",
                    path.display(),
                    cleared.kept_api_keys.join(", ")
                ),
            );
        }
        match cleared.contents {
            None => return Ok((Outcome::Unchanged, Wrote::Nothing, delivery)),
            Some(after) => (after, Wrote::Removed(cleared.removed)),
        }
    } else {
        let mut held = store::holding(target.kind, current.as_deref(), &settings.shape).map_err(unreadable)?;
        if held.expires_at.is_none() {
            // A .env or drop-in records no expiry: what cred-sync wrote there last says it, as long
            // as the file still holds that very token.
            held.expires_at = held.token.as_ref().and_then(|t| remembered_expiry(&settings.paste.state_dir, &path, t));
        }
        if held.matches(target.kind, cred, settings.shape.policy) {
            return Ok((Outcome::Unchanged, Wrote::Nothing, delivery));
        }
        if !settings.allow_downgrade && held.is_downgraded_by(cred) {
            let held = held.expires_at.expect("a downgrade implies a held expiry");
            return Ok((Outcome::Downgrade { held, by: None }, Wrote::Nothing, delivery));
        }
        if delivery == Delivery::Live {
            delivery =
                Delivery::of_store_write(held.expires_at.map(ExpiresAt::as_millis), held.token.is_some(), now_ms);
        }
        let contents = store::render(target.kind, current.as_deref(), cred, &settings.shape).map_err(unreadable)?;
        (contents, Wrote::Token { token: cred.access_token.clone(), expires_at: cred.expires_at })
    };
    if !dry_run {
        let written =
            if target.in_place { overwrite_in_place(&path, &contents) } else { replace_atomically(&path, &contents) };
        written.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        if target.kind == Kind::OpenclawProfiles {
            clear_state_cooldown(&dir.join(AUTH_STATE_FILE), &settings.shape.profile_id, target.in_place);
        }
        if !target.kind.records_expiry() && target.kind != Kind::ClearStale {
            remember_written(&settings.paste.state_dir, &path, cred);
        }
    }
    Ok((Outcome::Written, wrote, delivery))
}

/// The state file remembering what cred-sync last wrote into a target that records no expiry
/// itself (`.env`, drop-in): `written-<file name>-<fingerprint of the path>.json`.
fn written_record(state_dir: &Path, target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let clean: String =
        name.chars().take(40).map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let id = Fingerprint::of(&target.to_string_lossy());
    state_dir.join(format!("written-{clean}-{id}.json"))
}

/// The expiry of `token` as remembered for `target`, when the record is of that very token.
pub(crate) fn remembered_expiry(state_dir: &Path, target: &Path, token: &Secret) -> Option<ExpiresAt> {
    let bytes = read_bounded(&Source::File(written_record(state_dir, target))).ok()?;
    let record: Value = serde_json::from_slice(&bytes).ok()?;
    if record.get("fingerprint")?.as_str()? != token.fingerprint().to_string() {
        return None;
    }
    ExpiresAt::from_millis(record.get("expires_ms")?.as_i64()?).ok()
}

/// Remembers the token just written into `target` and its expiry (a failure is only a warning:
/// the write itself worked).
fn remember_written(state_dir: &Path, target: &Path, cred: &Credential) {
    let record = json!({
        "target": show(target),
        "fingerprint": cred.access_token.fingerprint().to_string(),
        "expires_ms": cred.expires_at.as_millis(),
    });
    let file = written_record(state_dir, target);
    let saved =
        std::fs::create_dir_all(state_dir).and_then(|()| replace_atomically(&file, format!("{record}\n").as_bytes()));
    if let Err(e) = saved {
        keeper_core::log::log(
            keeper_core::log::Level::Warning,
            crate::PROGRAM,
            format_args!(
                "{}: written, but cannot remember its expiry in {}: {e} (the downgrade guard cannot protect it)",
                show(target),
                file.display()
            ),
        );
    }
}

//! `--to KIND[,in-place]:PATH` target specifications and their expansion into files.

use crate::delivery::Delivery;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// What kind of store a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Legacy shared `credentials/oauth.json`.
    OpenclawOauth,
    /// Legacy per-agent `auth-profiles.json` (PATH may be a glob).
    OpenclawProfiles,
    /// A `KEY=value` file.
    Dotenv,
    /// A systemd drop-in with `Environment=KEY=value`.
    SystemdDropin,
    /// SQLite-era OpenClaw, through `openclaw models auth paste-token`.
    OpenclawPaste,
    /// Remove stale Anthropic profiles from matching `auth-profiles.json` files (PATH may be a glob).
    ClearStale,
}

impl Kind {
    pub(crate) const ALL: [Kind; 6] = [
        Kind::OpenclawOauth,
        Kind::OpenclawProfiles,
        Kind::Dotenv,
        Kind::SystemdDropin,
        Kind::OpenclawPaste,
        Kind::ClearStale,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::OpenclawOauth => "openclaw-oauth",
            Kind::OpenclawProfiles => "openclaw-profiles",
            Kind::Dotenv => "dotenv",
            Kind::SystemdDropin => "systemd-dropin",
            Kind::OpenclawPaste => "openclaw-paste",
            Kind::ClearStale => "clear-stale",
        }
    }

    /// A JSON file that SQLite-era OpenClaw has retired (and fails on when it finds one).
    pub(crate) fn is_retired_in_sqlite_era(self) -> bool {
        matches!(self, Kind::OpenclawOauth | Kind::OpenclawProfiles | Kind::ClearStale)
    }

    /// How the running gateway takes a write of this kind, before what it replaced is known
    /// (see [`Delivery`]).
    pub(crate) fn default_delivery(self) -> Delivery {
        match self {
            // Re-read on every lookup (JSON era).
            Kind::OpenclawOauth | Kind::OpenclawProfiles => Delivery::Live,
            // paste-token says whether it told the gateway; until then, assume nobody did.
            Kind::OpenclawPaste => Delivery::Untold,
            // The variable, and the variable a cleared profile falls through to, are read at start.
            Kind::Dotenv | Kind::SystemdDropin | Kind::ClearStale => Delivery::AtStart,
        }
    }

    /// Whether the file records the token's expiry itself (the JSON stores); for the others
    /// cred-sync remembers it in its state directory.
    pub(crate) fn records_expiry(self) -> bool {
        matches!(self, Kind::OpenclawOauth | Kind::OpenclawProfiles)
    }

    /// A store the running gateway reads its credential from (not the environment).
    pub(crate) fn is_store(self) -> bool {
        matches!(self, Kind::OpenclawOauth | Kind::OpenclawProfiles | Kind::OpenclawPaste)
    }

    /// Whether PATH may be a glob matching many files (one per agent).
    fn takes_glob(self) -> bool {
        matches!(self, Kind::OpenclawProfiles | Kind::ClearStale)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `--to` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetSpec {
    pub(crate) kind: Kind,
    /// The file or glob (`~/` expanded); for `openclaw-paste`, `None`.
    pub(crate) path: Option<PathBuf>,
    /// `openclaw-paste:AGENT`: paste into that agent's store instead of the shared one.
    pub(crate) agent: Option<String>,
    /// Rewrite the file's own inode instead of renaming a new one over it (single-file bind
    /// mounts).
    pub(crate) in_place: bool,
}

impl FromStr for TargetSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (head, rest) = match s.split_once(':') {
            Some((head, rest)) => (head, Some(rest)),
            None => (s, None),
        };
        let mut words = head.split(',');
        let kind_name = words.next().unwrap_or_default();
        let kind = Kind::ALL.into_iter().find(|k| k.name() == kind_name).ok_or_else(|| {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown target kind {kind_name:?} (known: {})", known.join(", "))
        })?;
        let mut in_place = false;
        for modifier in words {
            match modifier {
                "in-place" if kind != Kind::OpenclawPaste => in_place = true,
                other => return Err(format!("unknown modifier {other:?} for {kind} (known: in-place)")),
            }
        }
        if kind == Kind::OpenclawPaste {
            let agent = rest.filter(|a| !a.is_empty()).map(str::to_owned);
            if agent.as_deref().is_some_and(|a| a.contains(['/', ' '])) {
                return Err("openclaw-paste:AGENT takes an agent id, not a path".into());
            }
            return Ok(Self { kind, path: None, agent, in_place });
        }
        let path = rest.filter(|p| !p.is_empty()).ok_or_else(|| format!("{kind} needs a path: {kind}:PATH"))?;
        // Every file kind takes in-place, globs too (each agent's auth-profiles.json may be
        // bind-mounted singly into its container): each matching file is rewritten in place.
        Ok(Self { kind, path: Some(expand_home(path)), agent: None, in_place })
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        if self.in_place {
            f.write_str(",in-place")?;
        }
        match (&self.path, &self.agent) {
            (Some(p), _) => write!(f, ":{}", p.display()),
            (None, Some(a)) => write!(f, ":{a}"),
            (None, None) => Ok(()),
        }
    }
}

/// `~/x` → `$HOME/x`, since a config file is not expanded by a shell.
fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => keeper_core::paths::home().join(rest),
        None if path == "~" => keeper_core::paths::home(),
        None => PathBuf::from(path),
    }
}

/// One concrete file of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileTarget {
    pub(crate) kind: Kind,
    pub(crate) path: PathBuf,
    pub(crate) in_place: bool,
}

impl TargetSpec {
    /// The files this target covers now. A glob is expanded afresh on every sync, so an agent
    /// added later is picked up. When only the directories are a glob
    /// (`agents/*/agent/auth-profiles.json`), every matching directory counts, whether or not the
    /// file exists there yet; a glob matching nothing covers no file.
    pub(crate) fn files(&self) -> Result<Vec<FileTarget>, String> {
        let Some(path) = &self.path else { return Ok(Vec::new()) };
        let text = path.to_string_lossy();
        let one = |p: PathBuf| FileTarget { kind: self.kind, path: p, in_place: self.in_place };
        if !self.kind.takes_glob() || !is_glob(&text) {
            return Ok(vec![one(path.clone())]);
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (pattern, file_name) = if is_glob(&name) {
            (text.into_owned(), None)
        } else {
            (keeper_core::paths::parent_dir(path).to_string_lossy().into_owned(), Some(name))
        };
        let matches = glob::glob(&pattern).map_err(|e| format!("bad glob {pattern}: {e}"))?;
        let mut files = Vec::new();
        for m in matches {
            let m = m.map_err(|e| format!("cannot expand {pattern}: {e}"))?;
            match &file_name {
                Some(name) if m.is_dir() => files.push(one(m.join(name))),
                Some(_) => {}
                None => files.push(one(m)),
            }
        }
        Ok(files)
    }
}

fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Shown for a path in messages and change lines.
pub(crate) fn show(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_modifiers_and_paths_parse() {
        let t: TargetSpec = "dotenv,in-place:/srv/openclaw/.env".parse().unwrap();
        assert_eq!(
            (t.kind, t.in_place, t.path.as_deref()),
            (Kind::Dotenv, true, Some(Path::new("/srv/openclaw/.env")))
        );
        let t: TargetSpec = "openclaw-paste".parse().unwrap();
        assert_eq!((t.kind, t.path, t.agent), (Kind::OpenclawPaste, None, None));
        let t: TargetSpec = "openclaw-paste:main".parse().unwrap();
        assert_eq!(t.agent.as_deref(), Some("main"));
        let t: TargetSpec = "openclaw-oauth:/a:b/oauth.json".parse().unwrap();
        assert_eq!(t.path.as_deref(), Some(Path::new("/a:b/oauth.json")), "only the first colon separates");
        assert_eq!(t.to_string(), "openclaw-oauth:/a:b/oauth.json");
    }

    #[test]
    fn mistakes_are_named() {
        for (spec, needle) in [
            ("dotnev:/x", "unknown target kind \"dotnev\""),
            ("dotenv", "dotenv needs a path"),
            ("dotenv:", "dotenv needs a path"),
            ("dotenv,inplace:/x", "unknown modifier \"inplace\""),
            ("openclaw-paste,in-place", "unknown modifier"),
            ("openclaw-paste:/x/y", "agent id"),
        ] {
            let err = spec.parse::<TargetSpec>().unwrap_err();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    /// `openclaw-profiles,in-place:` exited 64 ("never bind-mounted singly"), though users do
    /// bind-mount single agent files and README promised in-place for every file target.
    #[test]
    fn regression_in_place_was_refused_for_profile_targets() {
        for kind in ["openclaw-oauth", "openclaw-profiles", "dotenv", "systemd-dropin", "clear-stale"] {
            let t: TargetSpec = format!("{kind},in-place:/srv/a/agents/*/agent/auth-profiles.json").parse().unwrap();
            assert!(t.in_place, "{kind}");
            assert_eq!(t.to_string(), format!("{kind},in-place:/srv/a/agents/*/agent/auth-profiles.json"));
        }
        let t: TargetSpec = "openclaw-profiles,in-place:/srv/a/agents/*/agent/auth-profiles.json".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("agents/main/agent")).unwrap();
        let t = TargetSpec { path: Some(dir.path().join("agents/*/agent/auth-profiles.json")), ..t };
        assert!(t.files().unwrap().iter().all(|f| f.in_place), "every matched file is written in place");
    }

    #[test]
    fn home_is_expanded() {
        let t: TargetSpec = "dotenv:~/.openclaw/.env".parse().unwrap();
        assert_eq!(t.path.unwrap(), keeper_core::paths::home().join(".openclaw/.env"));
    }

    #[test]
    fn profile_globs_expand_to_every_agent_and_other_kinds_stay_literal() {
        let dir = tempfile::tempdir().unwrap();
        for agent in ["main", "nova"] {
            let d = dir.path().join("agents").join(agent).join("agent");
            std::fs::create_dir_all(&d).unwrap();
        }
        std::fs::write(dir.path().join("agents/main/agent/auth-profiles.json"), "{}").unwrap();
        std::fs::write(dir.path().join("agents/not-a-dir"), "").unwrap();
        let glob = format!("openclaw-profiles:{}/agents/*/agent/auth-profiles.json", dir.path().display());
        let files = glob.parse::<TargetSpec>().unwrap().files().unwrap();
        assert_eq!(files.len(), 2, "every agent directory, with or without the file yet");
        assert!(files[0].path.ends_with("agents/main/agent/auth-profiles.json"));
        assert!(files[1].path.ends_with("agents/nova/agent/auth-profiles.json"));
        let by_name = format!("clear-stale:{}/agents/*/agent/auth-*.json", dir.path().display());
        assert_eq!(
            by_name.parse::<TargetSpec>().unwrap().files().unwrap().len(),
            1,
            "a file-name glob: existing files"
        );
        let literal = format!("dotenv:{}/we*rd.env", dir.path().display()).parse::<TargetSpec>().unwrap();
        assert_eq!(literal.files().unwrap().len(), 1);
    }
}

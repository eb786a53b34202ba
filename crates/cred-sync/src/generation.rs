//! Telling the two OpenClaw generations apart: from 2026.6 on, credentials live in SQLite and the
//! JSON files are retired — a retired file beside a SQLite store makes the affected providers fail
//! with `AUTH_PROFILE_MIGRATION_REQUIRED`, so cred-sync must not create or write one.

use std::path::{Path, PathBuf};

/// The first release that keeps credentials in `openclaw-agent.sqlite` (docs/UPSTREAM.md, "generations and stores").
pub(crate) const FIRST_SQLITE_RELEASE: Version = Version([2026, 6, 5]);

/// An OpenClaw calendar version (`2026.9.6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version(pub(crate) [u32; 3]);

impl Version {
    /// Parses `2026.9.6` (a `-beta.1` style suffix is ignored).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let core = text.trim().trim_start_matches('v').split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let v = [parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0)];
        Some(Self(v))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c] = self.0;
        write!(f, "{a}.{b}.{c}")
    }
}

/// Why a path is taken to sit in a SQLite-era OpenClaw, or `None` for the JSON era.
///
/// Evidence, in order: `openclaw-agent.sqlite` beside the file; an `openclaw.json` in any
/// directory above it (the OpenClaw directory, wherever it is mounted) last written by a SQLite-era
/// release (`meta.lastTouchedVersion`, or the `meta.migrations` only those releases write); an
/// installed OpenClaw at or after [`FIRST_SQLITE_RELEASE`].
///
/// `state/openclaw.sqlite` alone is no evidence: 2026.6.1, which still reads `auth-profiles.json`,
/// creates it too (even from its npm postinstall).
pub(crate) fn sqlite_evidence(target: &Path, installed: Option<Version>) -> Option<String> {
    let dir = keeper_core::paths::parent_dir(target);
    let beside = dir.join("openclaw-agent.sqlite");
    if beside.exists() {
        return Some(format!("{} exists", beside.display()));
    }
    for ancestor in dir.ancestors() {
        let config = ancestor.join("openclaw.json");
        if let Some(evidence) = config_evidence(&config) {
            return Some(evidence);
        }
    }
    installed
        .filter(|v| *v >= FIRST_SQLITE_RELEASE)
        .map(|v| format!("the installed OpenClaw is {v} (credentials in SQLite since {FIRST_SQLITE_RELEASE})"))
}

/// What an `openclaw.json`'s `meta` says about the release that last wrote it.
fn config_evidence(config: &Path) -> Option<String> {
    match config_meta(config)? {
        (Era::Sqlite, why) => Some(why),
        (Era::Json, _) => None,
    }
}

/// The era an `openclaw.json`'s `meta` points to, and why; `None` when it says nothing.
fn config_meta(config: &Path) -> Option<(Era, String)> {
    let bytes = keeper_core::input::read_bounded(&keeper_core::input::Source::File(config.to_path_buf())).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let meta = json.get("meta")?;
    let version = meta.get("lastTouchedVersion").and_then(serde_json::Value::as_str).and_then(Version::parse);
    let era = |v: Version| if v >= FIRST_SQLITE_RELEASE { Era::Sqlite } else { Era::Json };
    match version {
        Some(v) => Some((era(v), format!("{} was last written by OpenClaw {v}", config.display()))),
        None => {
            meta.get("migrations").map(|_| (Era::Sqlite, format!("{} has SQLite-era migrations", config.display())))
        }
    }
}

/// OpenClaw's two generations of credential stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Era {
    /// Up to 2026.6.1: `oauth.json` and `auth-profiles.json`.
    Json,
    /// From 2026.6.5 on: SQLite; the JSON files are retired.
    Sqlite,
}

impl Era {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Era::Json => "json",
            Era::Sqlite => "sqlite",
        }
    }
}

/// `cred-sync --detect DIR`: the generation of the OpenClaw directory DIR and the evidence, by
/// the very rules the JSON-target refusal uses ([`sqlite_evidence`]): `scripts/setup.sh` asks
/// this instead of keeping a copy of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Detection {
    pub(crate) era: Era,
    /// Why: every piece of SQLite-era evidence found, else what points to the JSON era (or that
    /// nothing points anywhere).
    pub(crate) evidence: Vec<String>,
    pub(crate) installed: Option<Version>,
}

/// Judges the OpenClaw directory `dir`: an `openclaw-agent.sqlite` in any agent's directory
/// (`agents/*/agent/`), an `openclaw.json` in `dir` or above it written by a SQLite-era release,
/// an installed OpenClaw at or after [`FIRST_SQLITE_RELEASE`].
pub(crate) fn detect(dir: &Path, installed: Option<Version>) -> Detection {
    let mut sqlite = Vec::new();
    let agents = dir.join("agents");
    if let Ok(entries) = std::fs::read_dir(&agents) {
        let mut found: Vec<PathBuf> =
            entries.flatten().map(|e| e.path().join("agent/openclaw-agent.sqlite")).filter(|p| p.exists()).collect();
        found.sort();
        sqlite.extend(found.iter().map(|p| format!("{} exists", p.display())));
    }
    let mut json_hint = None;
    for ancestor in dir.ancestors() {
        match config_meta(&ancestor.join("openclaw.json")) {
            Some((Era::Sqlite, why)) => {
                sqlite.push(why);
                break;
            }
            // As sqlite_evidence: a JSON-era config does not end the search upwards.
            Some((Era::Json, why)) => {
                json_hint.get_or_insert(why);
            }
            None => {}
        }
    }
    let installed_why = installed.map(|v| format!("the installed OpenClaw is {v}"));
    match installed {
        Some(v) if v >= FIRST_SQLITE_RELEASE => {
            sqlite.push(format!("the installed OpenClaw is {v} (credentials in SQLite since {FIRST_SQLITE_RELEASE})"));
        }
        _ => {}
    }
    if !sqlite.is_empty() {
        return Detection { era: Era::Sqlite, evidence: sqlite, installed };
    }
    let evidence: Vec<String> = json_hint.into_iter().chain(installed_why).collect();
    let evidence = if evidence.is_empty() {
        vec!["no SQLite-era evidence (no openclaw-agent.sqlite, no SQLite-era openclaw.json meta, no SQLite-era OpenClaw installed)".to_owned()]
    } else {
        evidence
    };
    Detection { era: Era::Json, evidence, installed }
}

impl Detection {
    /// The `--detect` output: one JSON object.
    pub(crate) fn to_json(&self, dir: &Path) -> serde_json::Value {
        serde_json::json!({
            "dir": dir.display().to_string(),
            "generation": self.era.name(),
            "evidence": self.evidence,
            "installed_version": self.installed.map(|v| v.to_string()),
            "first_sqlite_release": FIRST_SQLITE_RELEASE.to_string(),
        })
    }
}

/// The version of the `openclaw` program `program` names (a name looked up in `PATH`, or a
/// path), read from its npm package's `package.json` — milliseconds, where `openclaw --version`
/// would start Node. `None` when it is not installed on this host or cannot be read.
pub(crate) fn installed_version(program: &str) -> Option<Version> {
    let script = which::which(program).ok()?;
    let script = std::fs::canonicalize(script).ok()?;
    package_version(&script)
}

/// Walks up from `script` to the `package.json` of the `openclaw` package that holds it.
fn package_version(script: &Path) -> Option<Version> {
    let mut candidates: Vec<PathBuf> = script.ancestors().skip(1).map(|d| d.join("package.json")).collect();
    // An npm global bin symlink resolves into the package; a wrapper script in a prefix's bin/
    // does not, so also look where npm installs it.
    if let Some(prefix) = script.parent().and_then(Path::parent) {
        candidates.push(prefix.join("lib/node_modules/openclaw/package.json"));
    }
    candidates.into_iter().find_map(|p| {
        let text = std::fs::read(&p).ok()?;
        let json: serde_json::Value = serde_json::from_slice(&text).ok()?;
        if json.get("name")?.as_str()? != "openclaw" {
            return None;
        }
        Version::parse(json.get("version")?.as_str()?)
    })
}

/// The error for a JSON target in a SQLite-era OpenClaw.
pub(crate) fn refusal(target: &Path, evidence: &str, clear_stale: bool) -> String {
    let instead = if clear_stale {
        "run `openclaw doctor --fix --non-interactive`, which imports and retires the file"
    } else {
        "use --to openclaw-paste (or a dotenv/systemd-dropin target for ANTHROPIC_OAUTH_TOKEN)"
    };
    format!(
        "{} is retired in SQLite-era OpenClaw ({evidence}): a retired file beside the SQLite store makes OpenClaw \
         fail with AUTH_PROFILE_MIGRATION_REQUIRED, so it is not written; {instead}, or pass --force-legacy",
        target.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(Version::parse("2026.9.6"), Some(Version([2026, 9, 6])));
        assert_eq!(Version::parse("v2026.6.5-beta.2\n"), Some(Version([2026, 6, 5])));
        assert_eq!(Version::parse("2026.6"), Some(Version([2026, 6, 0])));
        assert_eq!(Version::parse("garbage"), None);
        assert!(Version([2026, 6, 1]) < FIRST_SQLITE_RELEASE);
        assert!(Version([2026, 6, 35]) > FIRST_SQLITE_RELEASE);
    }

    #[test]
    fn sqlite_files_beside_or_the_config_above_mark_the_new_generation() {
        let root = tempfile::tempdir().unwrap();
        let agent = root.path().join("agents/main/agent");
        std::fs::create_dir_all(&agent).unwrap();
        std::fs::create_dir_all(root.path().join("state")).unwrap();
        let profiles = agent.join("auth-profiles.json");
        let oauth = root.path().join("credentials/oauth.json");
        assert_eq!(sqlite_evidence(&profiles, None), None);
        assert_eq!(sqlite_evidence(&profiles, Some(Version([2026, 5, 20]))), None);
        assert!(sqlite_evidence(&profiles, Some(Version([2026, 9, 6]))).unwrap().contains("2026.9.6"));

        // Regression: 2026.6.1 creates state/openclaw.sqlite too; it is not the new generation.
        std::fs::write(root.path().join("state/openclaw.sqlite"), b"SQLite format 3\0").unwrap();
        let config = root.path().join("openclaw.json");
        std::fs::write(&config, r#"{"meta":{"lastTouchedVersion":"2026.6.1","lastTouchedAt":"2026-06-02T10:00:00Z"}}"#)
            .unwrap();
        assert_eq!(sqlite_evidence(&oauth, None), None);

        std::fs::write(&config, r#"{"meta":{"lastTouchedVersion":"2026.9.6","migrations":{}}}"#).unwrap();
        assert!(sqlite_evidence(&oauth, None).unwrap().contains("last written by OpenClaw 2026.9.6"));
        std::fs::write(&config, r#"{"meta":{"migrations":{"authProfiles":1}}}"#).unwrap();
        assert!(sqlite_evidence(&profiles, None).unwrap().contains("SQLite-era migrations"));

        std::fs::remove_file(&config).unwrap();
        std::fs::write(agent.join("openclaw-agent.sqlite"), b"").unwrap();
        assert!(sqlite_evidence(&profiles, None).unwrap().contains("openclaw-agent.sqlite"));
        assert_eq!(sqlite_evidence(&oauth, None), None);
    }

    #[test]
    fn detect_names_the_generation_and_every_piece_of_evidence() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("openclaw");
        std::fs::create_dir_all(dir.join("agents/main/agent")).unwrap();
        std::fs::create_dir_all(dir.join("agents/nova/agent")).unwrap();
        let d = detect(&dir, None);
        assert_eq!(d.era, Era::Json);
        assert!(d.evidence[0].starts_with("no SQLite-era evidence"), "{d:?}");
        std::fs::write(dir.join("openclaw.json"), r#"{"meta":{"lastTouchedVersion":"2026.6.1"}}"#).unwrap();
        let d = detect(&dir, Some(Version([2026, 6, 1])));
        assert_eq!(d.era, Era::Json);
        assert_eq!(d.evidence.len(), 2, "{d:?}");
        assert!(d.evidence[0].ends_with("was last written by OpenClaw 2026.6.1"), "{d:?}");
        assert_eq!(d.evidence[1], "the installed OpenClaw is 2026.6.1");
        // 2026.6.1 creates state/openclaw.sqlite too: no evidence.
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::write(dir.join("state/openclaw.sqlite"), b"SQLite format 3\0").unwrap();
        assert_eq!(detect(&dir, None).era, Era::Json);
        std::fs::write(dir.join("agents/nova/agent/openclaw-agent.sqlite"), b"").unwrap();
        let d = detect(&dir, Some(Version([2026, 9, 6])));
        assert_eq!(d.era, Era::Sqlite);
        assert!(d.evidence[0].ends_with("agents/nova/agent/openclaw-agent.sqlite exists"), "{d:?}");
        assert!(d.evidence.iter().any(|e| e.contains("installed OpenClaw is 2026.9.6")), "{d:?}");
        // The same verdict as the JSON-target refusal for a target in that agent's directory.
        assert!(sqlite_evidence(&dir.join("agents/nova/agent/auth-profiles.json"), None).is_some());
        let json = d.to_json(&dir);
        assert_eq!(json["generation"], "sqlite");
        assert_eq!(json["installed_version"], "2026.9.6");
    }

    #[test]
    fn the_installed_version_is_read_from_the_npm_package() {
        let prefix = tempfile::tempdir().unwrap();
        let package = prefix.path().join("lib/node_modules/openclaw");
        std::fs::create_dir_all(package.join("dist")).unwrap();
        std::fs::write(package.join("package.json"), r#"{"name":"openclaw","version":"2026.9.6"}"#).unwrap();
        std::fs::write(package.join("openclaw.mjs"), "").unwrap();
        assert_eq!(package_version(&package.join("openclaw.mjs")), Some(Version([2026, 9, 6])));
        // A wrapper in PREFIX/bin that is not a symlink into the package.
        std::fs::create_dir_all(prefix.path().join("bin")).unwrap();
        assert_eq!(package_version(&prefix.path().join("bin/openclaw")), Some(Version([2026, 9, 6])));
    }
}

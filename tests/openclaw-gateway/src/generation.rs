//! Which OpenClaw, where it is installed, and the loud skip when it is not.

use std::io::Write;
use std::path::PathBuf;

/// Set to `1` (CI does) to make a missing OpenClaw a failure instead of a skip.
pub const REQUIRE_ENV: &str = "KEEPER_REQUIRE_OPENCLAW";

/// One of the two OpenClaw generations the keeper supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generation {
    /// 2026.9.6 (Node 24): credentials in SQLite, written through `models auth paste-token`.
    Sqlite,
    /// 2026.6.1 (Node 22), the last release that reads `auth-profiles.json`.
    Json,
}

impl Generation {
    /// Both generations, newest first.
    pub const ALL: [Generation; 2] = [Generation::Sqlite, Generation::Json];

    /// The variable naming this generation's `openclaw` (a file installed by
    /// `scripts/install-openclaw-for-tests.sh DEST` as `DEST/bin/openclaw-{sqlite,json}`).
    #[must_use]
    pub fn env_var(self) -> &'static str {
        match self {
            Generation::Sqlite => "KEEPER_OPENCLAW_SQLITE",
            Generation::Json => "KEEPER_OPENCLAW_JSON",
        }
    }

    /// The pinned version the install script puts there.
    #[must_use]
    pub fn version(self) -> &'static str {
        match self {
            Generation::Sqlite => "2026.9.6",
            Generation::Json => "2026.6.1",
        }
    }

    /// `sqlite` or `json`: the install script's file-name suffix.
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Generation::Sqlite => "sqlite",
            Generation::Json => "json",
        }
    }

    /// The installed `openclaw` of this generation, without a banner: `None` when
    /// [`Generation::env_var`] is unset or empty. Panics when it names a missing file (a typo
    /// must not look like a skip).
    #[must_use]
    pub fn program(self) -> Option<PathBuf> {
        let var = self.env_var();
        let path = PathBuf::from(std::env::var_os(var).filter(|v| !v.is_empty())?);
        assert!(path.is_file(), "{var}={} does not exist", path.display());
        Some(path)
    }

    /// The installed `openclaw` of this generation, or `None` after a loud `SKIPPED` banner on
    /// stderr. With `KEEPER_REQUIRE_OPENCLAW=1` a missing one panics instead.
    ///
    /// Call it first in a test (see [`crate::openclaw_or_skip`]): it is cheap, and a skipped
    /// test then starts nothing.
    #[must_use]
    pub fn installed(self) -> Option<PathBuf> {
        if let Some(path) = self.program() {
            return Some(path);
        }
        let var = self.env_var();
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| v.trim() == "1");
        let reason = format!(
            "{var} is not set (scripts/install-openclaw-for-tests.sh DEST, then {var}=DEST/bin/openclaw-{})",
            self.suffix()
        );
        assert!(!required, "{test}: {reason} ({REQUIRE_ENV}=1 makes this a failure)");
        let bar = "!".repeat(100);
        let banner = format!(
            "\n{bar}\n!!! SKIPPED {test}: {reason}\n!!! The test did NOT run. Set {REQUIRE_ENV}=1 to make this a failure (CI does).\n{bar}\n"
        );
        // Straight to the stderr handle: libtest captures only the print macros, and a skip
        // must be visible without --nocapture.
        let _ = std::io::stderr().lock().write_all(banner.as_bytes());
        None
    }
}

/// `openclaw_or_skip!(Generation::Sqlite);` returns from the calling test, after
/// [`Generation::installed`]'s banner, unless that generation is installed;
/// `openclaw_or_skip!(Generation::Sqlite, Generation::Json);` unless both are (a banner for each
/// missing one).
#[macro_export]
macro_rules! openclaw_or_skip {
    ($($generation:expr),+ $(,)?) => {
        // Every generation is asked (not short-circuited) so each missing one gets its banner.
        if [$( $crate::Generation::installed($generation).is_none() ),+].contains(&true) {
            return;
        }
    };
}

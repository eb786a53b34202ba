//! Default locations.

use std::path::{Path, PathBuf};

/// Directory name under `/etc` and `~/.config`.
pub const APP_DIR: &str = "openclaw-oauth-keeper";

/// The Claude CLI's credentials file, where the CLI itself looks for it:
/// `$CLAUDE_SECURESTORAGE_CONFIG_DIR/.credentials.json` when that is set (CLI 2.1.332 keeps the
/// file and its locks there; docs/UPSTREAM.md, "Claude Code CLI"), else
/// `$CLAUDE_CONFIG_DIR/.credentials.json`, else `~/.claude/.credentials.json`.
#[must_use]
pub fn claude_credentials() -> PathBuf {
    claude_secure_storage_dir().unwrap_or_else(claude_config_dir).join(".credentials.json")
}

/// `$CLAUDE_SECURESTORAGE_CONFIG_DIR`, when set and not empty: where CLI 2.1.332 keeps its
/// credentials file and its locks instead of the config dir.
#[must_use]
pub fn claude_secure_storage_dir() -> Option<PathBuf> {
    std::env::var_os("CLAUDE_SECURESTORAGE_CONFIG_DIR").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The Claude CLI's config dir: `$CLAUDE_CONFIG_DIR`, else `~/.claude`.
#[must_use]
pub fn claude_config_dir() -> PathBuf {
    match std::env::var_os("CLAUDE_CONFIG_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => home().join(".claude"),
    }
}

/// `$HOME`, or `/root` when unset (systemd system services run without it).
#[must_use]
pub fn home() -> PathBuf {
    std::env::var_os("HOME").filter(|v| !v.is_empty()).map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

/// Where the tools keep small state files (what was last pasted into OpenClaw, notification
/// markers): `/var/lib/openclaw-oauth-keeper` for root, else
/// `$XDG_STATE_HOME/openclaw-oauth-keeper` (`~/.local/state/…`).
#[must_use]
pub fn state_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib").join(APP_DIR);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map_or_else(|| home().join(".local/state"), PathBuf::from);
    base.join(APP_DIR)
}

/// The OpenClaw directory: `$OPENCLAW_STATE_DIR`, else `~/.openclaw`.
#[must_use]
pub fn openclaw_dir() -> PathBuf {
    std::env::var_os("OPENCLAW_STATE_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| home().join(".openclaw"), PathBuf::from)
}

/// The default config file: `/etc/openclaw-oauth-keeper/keeper.env` for root, else
/// `$XDG_CONFIG_HOME/openclaw-oauth-keeper/keeper.env` (`~/.config/…`).
#[must_use]
pub fn default_config_file() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/etc").join(APP_DIR).join("keeper.env");
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map_or_else(|| home().join(".config"), PathBuf::from);
    base.join(APP_DIR).join("keeper.env")
}

/// The directory holding `path` (`.` for a bare file name): what to watch, lock or fsync.
#[must_use]
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

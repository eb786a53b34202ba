//! Reading the CLI's credentials file, and `--force`'s rewrite of its expiry.

use crate::lockdir::{LockSet, Patience};
use credmap::claude::{self, OauthState};
use credmap::json::Document;
use credmap::{Credential, ExpiresAt};
use keeper_core::input::{Source, read_bounded};
use std::path::Path;
use std::time::Duration;

/// Reads of a file caught mid-write (empty or cut short, as an in-place write by CLI 2.1.112 can
/// be seen) are retried this often...
const TORN_READ_RETRIES: u32 = 5;
/// ...this far apart.
const TORN_READ_PAUSE: Duration = Duration::from_millis(20);

/// What the file holds.
#[derive(Debug, Clone)]
pub(crate) enum Creds {
    /// A credential (perhaps expired).
    Credential(Box<Credential>),
    /// The logged-out stub; `loginEnded` says why, when the CLI recorded it (2.1.318 and later:
    /// `"time_limit"` when the login reached its 30-day end).
    LoggedOut { login_ended: Option<String> },
}

/// `claudeAiOauth.loginEnded`, when the CLI recorded why the login ended.
pub(crate) fn login_ended(doc: &Document) -> Option<String> {
    let v = claude::oauth_section(doc)?.get("loginEnded")?;
    match v {
        serde_json::Value::Null | serde_json::Value::Bool(false) => None,
        serde_json::Value::String(s) if s.is_empty() => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The REAUTH reason for a stub or a `loginEnded` record.
pub(crate) fn logged_out_reason(login_ended: Option<&str>, when: &str) -> String {
    match login_ended {
        Some("time_limit") => format!(
            "{when}: the login reached its hard end (loginEnded: time_limit; a Max login lasts about 30 days from \
             `claude auth login`, whatever the refreshes do)"
        ),
        Some(other) => format!("{when}: the login ended (loginEnded: {other})"),
        None => format!("{when}: the token endpoint rejected its refresh token"),
    }
}

/// Reads and parses the file; the error names the file and what is wrong with it.
pub(crate) fn read(path: &Path) -> Result<(Document, Creds), String> {
    let mut attempt = 0;
    loop {
        match read_once(path) {
            Err(ReadFailure::Torn(_)) if attempt < TORN_READ_RETRIES => {
                attempt += 1;
                std::thread::sleep(TORN_READ_PAUSE);
            }
            Err(ReadFailure::Torn(e) | ReadFailure::Other(e)) => return Err(format!("{}: {e}", path.display())),
            Ok(r) => return Ok(r),
        }
    }
}

enum ReadFailure {
    Torn(String),
    Other(String),
}

fn read_once(path: &Path) -> Result<(Document, Creds), ReadFailure> {
    let bytes = read_bounded(&Source::File(path.to_path_buf())).map_err(|e| ReadFailure::Other(e.to_string()))?;
    let torn = |e: credmap::Error| match e {
        credmap::Error::Empty | credmap::Error::Json { truncated: true, .. } => ReadFailure::Torn(e.to_string()),
        e => ReadFailure::Other(e.to_string()),
    };
    let doc = claude::parse(&bytes).map_err(torn)?;
    let creds = match claude::read(&doc).map_err(torn)? {
        OauthState::Credential(c) => Creds::Credential(Box::new(c)),
        OauthState::LoggedOut { .. } => Creds::LoggedOut { login_ended: login_ended(&doc) },
    };
    Ok((doc, creds))
}

/// How `--force` rewrites the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum WriteMode {
    /// Temp file and rename (atomic; keeps owner and mode).
    Rename,
    /// The same inode (for a file bind-mounted on its own into a container).
    InPlace,
}

/// Rewrites the credentials file. A symlinked file is followed, never replaced by a regular
/// file: its target is rewritten (atomically in the target's directory, or in place) and the link
/// stays, with a warning, since the CLI itself replaces the link on its next write (temp + rename)
/// and its newer storage backend refuses a symlinked file.
pub(crate) fn write(path: &Path, mode: WriteMode, bytes: &[u8]) -> std::io::Result<()> {
    let target = if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        let target = std::fs::canonicalize(path)?;
        keeper_core::log::log(
            keeper_core::log::Level::Warning,
            crate::PROGRAM,
            format_args!(
                "{} is a symlink to {}: rewriting {} and keeping the link (the CLI replaces such a link with a \
                 regular file on its next write; point --creds and CLAUDE_CONFIG_DIR at the real directory)",
                path.display(),
                target.display(),
                target.display()
            ),
        );
        target
    } else {
        path.to_path_buf()
    };
    match mode {
        WriteMode::Rename => keeper_core::write::replace_atomically(&target, bytes),
        WriteMode::InPlace => keeper_core::write::overwrite_in_place(&target, bytes),
    }
}

/// How `--force` waits for the CLI's locks: as the CLI does, 5 more tries 1–2 s apart.
pub(crate) const LOCK_PATIENCE: Patience = Patience::CLI;

/// What `--force` did.
#[derive(Debug, Clone)]
pub(crate) struct Forced {
    /// The credential as it was, read under the lock.
    pub(crate) before: Box<Credential>,
    /// The expiry written.
    pub(crate) forced_expiry: ExpiresAt,
}

/// Why `--force` could not rewrite the file.
#[derive(Debug)]
pub(crate) enum ForceError {
    /// The file holds the logged-out stub (found under the lock).
    LoggedOut { login_ended: Option<String> },
    /// Locking, reading or writing failed.
    Failed(String),
}

/// Under the CLI's locks (all of them, in its order: `lockdir`): re-reads the file and sets
/// `claudeAiOauth.expiresAt` to `now_ms`, keeping everything else, then releases the locks.
pub(crate) fn force_expiry(
    path: &Path,
    mode: WriteMode,
    now_ms: i64,
    patience: Patience,
    on_wait: impl FnMut(&Path, &str),
) -> Result<Forced, ForceError> {
    let locks = LockSet::for_credentials(path).map_err(|e| ForceError::Failed(format!("{}: {e}", path.display())))?;
    let _held = locks.acquire(patience, on_wait).map_err(|e| ForceError::Failed(e.to_string()))?;
    let (mut doc, creds) = read(path).map_err(ForceError::Failed)?;
    let before = match creds {
        Creds::Credential(c) => c,
        Creds::LoggedOut { login_ended } => return Err(ForceError::LoggedOut { login_ended }),
    };
    let forced_expiry = ExpiresAt::from_millis(now_ms).map_err(|e| ForceError::Failed(format!("the clock: {e}")))?;
    claude::set_expires_at(&mut doc, forced_expiry)
        .map_err(|e| ForceError::Failed(format!("{}: {e}", path.display())))?;
    write(path, mode, &doc.to_bytes())
        .map_err(|e| ForceError::Failed(format!("{}: cannot rewrite: {e}", path.display())))?;
    Ok(Forced { before, forced_expiry })
}

/// Undoes `--force` when the CLI did not refresh: puts the original expiry back, under the lock,
/// if the file still holds the same access token and the forced expiry. Returns whether it did.
pub(crate) fn restore_expiry(
    path: &Path,
    mode: WriteMode,
    forced: &Forced,
    patience: Patience,
) -> Result<bool, String> {
    let locks = LockSet::for_credentials(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let _held = locks.acquire(patience, |_, _| {}).map_err(|e| e.to_string())?;
    let (mut doc, creds) = read(path)?;
    let Creds::Credential(now) = creds else { return Ok(false) };
    if now.access_token != forced.before.access_token || now.expires_at != forced.forced_expiry {
        return Ok(false);
    }
    claude::set_expires_at(&mut doc, forced.before.expires_at).map_err(|e| format!("{}: {e}", path.display()))?;
    write(path, mode, &doc.to_bytes()).map_err(|e| format!("{}: cannot rewrite: {e}", path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    const Q: Patience = Patience { retries: 1, min: Duration::from_millis(5), max: Duration::from_millis(10) };

    fn file(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join(".credentials.json");
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        path
    }

    const CRED: &str = r#"{"claudeAiOauth":{"accessToken":"A-1","refreshToken":"R-1","expiresAt":1767225600000,"scopes":["user:inference"],"x":1},"mcpOAuth":{"k":"v"}}"#;

    #[test]
    fn force_sets_only_the_expiry_keeps_mode_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), CRED);
        let forced = force_expiry(&path, WriteMode::Rename, 1_767_000_000_000, Q, |_, _| {}).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, CRED.replace("1767225600000", "1767000000000"));
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        let locks = LockSet::for_credentials(&path).unwrap();
        for p in [&locks.refresh, &locks.owner, &locks.legacy, &locks.storage] {
            assert!(!p.exists(), "{} is released", p.display());
        }
        assert!(restore_expiry(&path, WriteMode::Rename, &forced, Q).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), CRED);
        // a second restore finds the original expiry, not the forced one: nothing to do
        assert!(!restore_expiry(&path, WriteMode::Rename, &forced, Q).unwrap());
    }

    #[test]
    fn in_place_force_keeps_the_inode() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), CRED);
        let ino = std::fs::metadata(&path).unwrap().ino();
        force_expiry(&path, WriteMode::InPlace, 1_767_000_000_000, Q, |_, _| {}).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), ino);
        let ino2 = {
            force_expiry(&path, WriteMode::Rename, 1_767_000_000_001, Q, |_, _| {}).unwrap();
            std::fs::metadata(&path).unwrap().ino()
        };
        assert_ne!(ino2, ino);
    }

    #[test]
    fn restore_leaves_a_refreshed_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), CRED);
        let forced = force_expiry(&path, WriteMode::Rename, 1_767_000_000_000, Q, |_, _| {}).unwrap();
        let refreshed = CRED.replace("A-1", "A-2").replace("1767225600000", "1767300000000");
        std::fs::write(&path, &refreshed).unwrap();
        assert!(!restore_expiry(&path, WriteMode::Rename, &forced, Q).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), refreshed);
    }

    #[test]
    fn read_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "{\"claudeAiOauth\":{\"accessToken\":");
        let err = read(&path).unwrap_err();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        let stub = r#"{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":0}}"#;
        std::fs::write(&path, stub).unwrap();
        assert!(matches!(read(&path).unwrap().1, Creds::LoggedOut { login_ended: None }));
        assert!(matches!(
            force_expiry(&path, WriteMode::Rename, 1_767_000_000_000, Q, |_, _| {}),
            Err(ForceError::LoggedOut { login_ended: None })
        ));
        let ended = r#"{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":0,"loginEnded":"time_limit"}}"#;
        std::fs::write(&path, ended).unwrap();
        let Creds::LoggedOut { login_ended } = read(&path).unwrap().1 else { panic!("a stub") };
        assert!(logged_out_reason(login_ended.as_deref(), "x").contains("30 days"));
        assert!(read(&dir.path().join("missing")).unwrap_err().ends_with("no such file"));
    }
}

#[cfg(test)]
mod fifo_tests {
    /// cli-poke's read of a FIFO as the credentials file blocked forever in open(2); the shared
    /// reader (`keeper_core::input`) opens without blocking and refuses anything but a regular file.
    #[test]
    fn regression_a_fifo_as_the_credentials_file_blocked_forever() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join(".credentials.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || tx.send(super::read(&path).map(|_| ())).unwrap());
        let err = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("read returned at once").unwrap_err();
        assert_eq!(err, format!("{}: is a FIFO (named pipe), not a regular file: not read", fifo.display()));
    }
}

#[cfg(test)]
mod symlink_tests {
    use super::*;

    /// `--force` renamed a temp file over a symlinked `.credentials.json`: the link became a
    /// regular file without a word, and the file it pointed to kept the old expiry.
    #[test]
    fn regression_force_turned_a_symlinked_credentials_file_into_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("real");
        std::fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("creds.json");
        std::fs::write(&real, super::tests_support::CRED).unwrap();
        let claude = dir.path().join(".claude");
        std::fs::create_dir(&claude).unwrap();
        let link = claude.join(".credentials.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let quick = Patience { retries: 0, min: Duration::ZERO, max: Duration::ZERO };
        for mode in [WriteMode::Rename, WriteMode::InPlace] {
            let forced = force_expiry(&link, mode, 1_767_000_000_000, quick, |_, _| {}).unwrap();
            assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "{mode:?}: the link stays");
            assert!(std::fs::read_to_string(&real).unwrap().contains("1767000000000"), "{mode:?}: the target written");
            assert!(restore_expiry(&link, mode, &forced, quick).unwrap());
            assert_eq!(std::fs::read_to_string(&real).unwrap(), super::tests_support::CRED);
            assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        }
        // the locks are the link's directory's, where the CLI looks
        assert!(!claude.join(".oauth_refresh.lock").exists());
    }
}

#[cfg(test)]
mod tests_support {
    pub(super) const CRED: &str = r#"{"claudeAiOauth":{"accessToken":"A-1","refreshToken":"R-1","expiresAt":1767225600000,"scopes":["user:inference"],"x":1},"mcpOAuth":{"k":"v"}}"#;
}

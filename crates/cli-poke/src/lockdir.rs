//! The Claude CLI's own lock, for `--force`: the directory `${CLAUDE_CONFIG_DIR}.lock`, taken
//! with `mkdir` and released with `rmdir`, as the CLI's lock library (proper-lockfile) does. A lock
//! whose mtime is more than [`STALE_AFTER`] old belongs to a process that died and is taken over;
//! a live holder keeps its mtime fresh.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// proper-lockfile's default staleness, which the CLI uses.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(10);
/// How often a busy lock is retried.
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// The lock directory for a credentials file: its directory's path plus `.lock`
/// (`~/.claude/.credentials.json` → `~/.claude.lock`).
pub(crate) fn lock_path(credentials: &Path) -> io::Result<PathBuf> {
    let dir = std::path::absolute(keeper_core::paths::parent_dir(credentials))?;
    let mut p = dir.into_os_string();
    p.push(".lock");
    Ok(PathBuf::from(p))
}

/// A held lock, released (the directory removed) on drop.
#[derive(Debug)]
pub(crate) struct CliLock {
    path: PathBuf,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// A live holder kept it for the whole wait.
    Busy(Duration),
    /// The directory could not be made or checked.
    Io(io::Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Busy(d) => write!(f, "still held by another process after {}s", d.as_secs()),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Takes the lock at `path`, waiting up to `wait` for a live holder; `on_wait` is called once
/// when the lock is found busy.
pub(crate) fn acquire(path: &Path, wait: Duration, mut on_wait: impl FnMut()) -> Result<CliLock, LockError> {
    let start = Instant::now();
    let mut waited = false;
    loop {
        match fs::create_dir(path) {
            Ok(()) => return Ok(CliLock { path: path.to_path_buf() }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(LockError::Io(e)),
        }
        match fs::metadata(path).and_then(|m| m.modified()) {
            // Staleness is real time against the real mtime, whatever a fake clock says.
            Ok(mtime) if SystemTime::now().duration_since(mtime).unwrap_or_default() > STALE_AFTER => {
                let _ = fs::remove_dir(path);
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(LockError::Io(e)),
            Ok(_) => {}
        }
        if !waited {
            waited = true;
            on_wait();
        }
        if start.elapsed() >= wait {
            return Err(LockError::Busy(start.elapsed()));
        }
        std::thread::sleep(RETRY_EVERY);
    }
}

impl Drop for CliLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_path_is_the_config_dir_plus_lock() {
        let p = lock_path(Path::new("/home/u/.claude/.credentials.json")).unwrap();
        assert_eq!(p, Path::new("/home/u/.claude.lock"));
        let rel = lock_path(Path::new(".credentials.json")).unwrap();
        assert!(rel.is_absolute() && rel.to_string_lossy().ends_with(".lock"), "{}", rel.display());
    }

    #[test]
    fn busy_live_lock_then_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".claude.lock");
        let held = acquire(&path, Duration::ZERO, || {}).unwrap();
        let mut told = 0;
        assert!(matches!(acquire(&path, Duration::from_millis(150), || told += 1), Err(LockError::Busy(_))));
        assert_eq!(told, 1);
        drop(held);
        assert!(!path.exists());
        drop(acquire(&path, Duration::ZERO, || {}).unwrap());
    }

    #[test]
    fn stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".claude.lock");
        fs::create_dir(&path).unwrap();
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(1);
        fs::File::open(&path).unwrap().set_modified(old).unwrap();
        let lock = acquire(&path, Duration::ZERO, || panic!("a stale lock is not waited for")).unwrap();
        assert!(path.is_dir());
        drop(lock);
    }

    #[test]
    fn a_missing_parent_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir.lock");
        assert!(matches!(acquire(&path, Duration::ZERO, || {}), Err(LockError::Io(_))));
    }
}

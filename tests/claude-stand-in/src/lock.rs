//! The CLI's locks: directories made with `mkdir` (proper-lockfile), stale when their mtime is
//! more than 10 s old, refreshed while held. As 2.1.332: `<dir>/.oauth_refresh.lock` first, then
//! `${CLAUDE_CONFIG_DIR}.lock`, for a refresh; `<dir>/.storage-write.lock` around every write of
//! the credentials file (no owner record: the real 2.1.332 in `real_cli.rs` tests that part).
//!
//! Written independently of `cli-poke`'s lock on purpose: a fixture sharing code with the tool it
//! tests would hide the tool's bugs.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// A lock older than this (by its mtime, in real time) is taken over.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(10);
/// How often a waiting locker retries.
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// A held lock directory; removed on drop.
#[derive(Debug)]
pub(crate) struct LockDir {
    path: PathBuf,
}

/// `${dir}.lock` for a config dir `dir`.
#[must_use]
pub(crate) fn lock_path(config_dir: &Path) -> PathBuf {
    let mut p = config_dir.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Takes the lock, waiting up to `wait` while a live holder has it; `None` when it stayed busy.
pub(crate) fn acquire(path: &Path, wait: Duration) -> io::Result<Option<LockDir>> {
    let deadline = Instant::now() + wait;
    loop {
        match fs::create_dir(path) {
            Ok(()) => return Ok(Some(LockDir { path: path.to_path_buf() })),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                match fs::metadata(path).and_then(|m| m.modified()) {
                    Ok(mtime) if SystemTime::now().duration_since(mtime).unwrap_or_default() > STALE_AFTER => {
                        // proper-lockfile removes a stale lock and tries again.
                        let _ = fs::remove_dir(path);
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // just released
                    _ => {}
                }
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                std::thread::sleep(RETRY_EVERY);
            }
            Err(e) => return Err(e),
        }
    }
}

impl LockDir {
    fn touch(&self) {
        if let Ok(dir) = fs::File::open(&self.path) {
            let _ = dir.set_modified(SystemTime::now());
        }
    }
}

/// The two refresh locks, held together; the legacy one is released first (fields drop in order).
#[derive(Debug)]
pub(crate) struct RefreshLocks {
    legacy: LockDir,
    refresh: LockDir,
}

/// `<config_dir>/.oauth_refresh.lock`, then `${config_dir}.lock`; `None` when either stayed busy
/// (the one already taken is released).
pub(crate) fn acquire_refresh(config_dir: &Path, wait: Duration) -> io::Result<Option<RefreshLocks>> {
    let Some(refresh) = acquire(&config_dir.join(".oauth_refresh.lock"), wait)? else { return Ok(None) };
    let Some(legacy) = acquire(&lock_path(config_dir), wait)? else { return Ok(None) };
    Ok(Some(RefreshLocks { legacy, refresh }))
}

impl RefreshLocks {
    /// Holds both for `duration`, touching them as proper-lockfile does.
    pub(crate) fn hold_for(&self, duration: Duration) {
        let end = Instant::now() + duration;
        while let Some(left) = end.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            std::thread::sleep(left.min(STALE_AFTER / 2));
            self.legacy.touch();
            self.refresh.touch();
        }
    }
}

/// `<config_dir>/.storage-write.lock`, taken around a write of the credentials file.
pub(crate) fn acquire_storage(config_dir: &Path, wait: Duration) -> io::Result<LockDir> {
    acquire(&config_dir.join(".storage-write.lock"), wait)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::WouldBlock, ".storage-write.lock stayed busy"))
}

impl Drop for LockDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_then_stale_then_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(&dir.path().join(".claude"));
        assert_eq!(path, dir.path().join(".claude.lock"));
        let held = acquire(&path, Duration::ZERO).unwrap().unwrap();
        assert!(acquire(&path, Duration::from_millis(120)).unwrap().is_none());
        std::mem::forget(held); // a holder that died without releasing
        let old = SystemTime::now() - Duration::from_secs(11);
        fs::File::open(&path).unwrap().set_modified(old).unwrap();
        let taken = acquire(&path, Duration::ZERO).unwrap().expect("a stale lock is taken over");
        drop(taken);
        assert!(!path.exists());
    }

    #[test]
    fn refresh_locks_are_both_taken_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join(".claude");
        fs::create_dir(&config).unwrap();
        let held = acquire_refresh(&config, Duration::ZERO).unwrap().unwrap();
        assert!(config.join(".oauth_refresh.lock").is_dir() && dir.path().join(".claude.lock").is_dir());
        assert!(acquire_refresh(&config, Duration::from_millis(60)).unwrap().is_none());
        assert!(dir.path().join(".claude.lock").is_dir(), "a failed try releases nothing of the holder's");
        drop(held);
        assert!(!config.join(".oauth_refresh.lock").exists() && !dir.path().join(".claude.lock").exists());
        drop(acquire_storage(&config, Duration::ZERO).unwrap());
        assert!(!config.join(".storage-write.lock").exists());
    }
}

//! The CLI's lock: a directory `${CLAUDE_CONFIG_DIR}.lock` made with `mkdir` (proper-lockfile),
//! stale when its mtime is more than 10 s old, refreshed while held.
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
    /// Holds the lock for `duration`, touching its mtime every few seconds as proper-lockfile does,
    /// so that a slow refresh is not mistaken for a dead one.
    pub(crate) fn hold_for(&self, duration: Duration) {
        let end = Instant::now() + duration;
        while let Some(left) = end.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            std::thread::sleep(left.min(STALE_AFTER / 2));
            self.touch();
        }
    }

    fn touch(&self) {
        if let Ok(dir) = fs::File::open(&self.path) {
            let _ = dir.set_modified(SystemTime::now());
        }
    }
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
}

//! The one place the tools read the time.
//!
//! # Fake clock (a test and simulation hook)
//!
//! When the environment variable [`FAKE_CLOCK_ENV`] (`KEEPER_FAKE_CLOCK_FILE`) names a file,
//! [`now_ms`] returns the number that file holds (milliseconds since the Unix epoch, decimal,
//! surrounding whitespace allowed) instead of the system time. The file is read afresh at every
//! call, so a test or a simulation moves time forward for every process that shares the file
//! (the tools and the `claude` stand-in) by rewriting it: use [`set_fake_now_ms`], which replaces
//! the file by rename so that a reader never sees it half-written.
//!
//! Only an explicitly set, non-empty variable enables it; nothing in production sets it. A set
//! variable whose file cannot be read or parsed is a broken test set-up, and [`now_ms`] panics
//! with a message naming the file rather than silently falling back to the real time.
//!
//! The fake clock changes what "now" is for expiry decisions only. Sleeps, timeouts, timers and
//! file modification times stay real: use [`system_now_ms`] when comparing with those (for
//! example a lock directory's mtime).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable naming the fake clock file (see the module docs).
pub const FAKE_CLOCK_ENV: &str = "KEEPER_FAKE_CLOCK_FILE";

/// Milliseconds since the Unix epoch, now: the fake clock's time when [`FAKE_CLOCK_ENV`] is set,
/// else the system time.
///
/// # Panics
///
/// When [`FAKE_CLOCK_ENV`] is set but its file cannot be read or does not hold an integer.
#[must_use]
pub fn now_ms() -> i64 {
    match fake_clock_file() {
        Some(path) => read_fake_now_ms(&path).unwrap_or_else(|e| panic!("{FAKE_CLOCK_ENV}={}: {e}", path.display())),
        None => system_now_ms(),
    }
}

/// Milliseconds since the Unix epoch by the system clock, ignoring any fake clock.
#[must_use]
pub fn system_now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The fake clock file, when [`FAKE_CLOCK_ENV`] is set and not empty.
#[must_use]
pub fn fake_clock_file() -> Option<PathBuf> {
    std::env::var_os(FAKE_CLOCK_ENV).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Reads a fake clock file: one integer, milliseconds since the epoch.
pub fn read_fake_now_ms(path: &Path) -> io::Result<i64> {
    let text = std::fs::read_to_string(path)?;
    text.trim().parse::<i64>().map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidData, "does not hold an integer (milliseconds since the epoch)")
    })
}

/// Sets a fake clock file to `ms`: written to a temporary file beside it and renamed over it, so a
/// concurrent [`now_ms`] reads either the old time or the new one. Not fsynced: a clock file lives
/// as long as one test run.
pub fn set_fake_now_ms(path: &Path, ms: i64) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{ms}\n"))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Whole seconds for people: `1d 7h 59m 12s`, leaving out zero units (`0s` for zero).
#[must_use]
pub fn human(secs: u64) -> String {
    use std::fmt::Write as _;
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{n}{unit}");
        }
    }
    if out.is_empty() { "0s".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_file_round_trips_and_is_reread() {
        let dir = tempfile::tempdir().unwrap();
        let clock = dir.path().join("clock");
        set_fake_now_ms(&clock, 1_767_225_600_000).unwrap();
        assert_eq!(read_fake_now_ms(&clock).unwrap(), 1_767_225_600_000);
        set_fake_now_ms(&clock, 1_767_225_600_001).unwrap();
        assert_eq!(read_fake_now_ms(&clock).unwrap(), 1_767_225_600_001);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
        std::fs::write(&clock, " 42 \n").unwrap();
        assert_eq!(read_fake_now_ms(&clock).unwrap(), 42);
    }

    #[test]
    fn a_broken_fake_clock_file_is_an_error_not_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let clock = dir.path().join("clock");
        assert_eq!(read_fake_now_ms(&clock).unwrap_err().kind(), io::ErrorKind::NotFound);
        std::fs::write(&clock, "yesterday").unwrap();
        assert_eq!(read_fake_now_ms(&clock).unwrap_err().kind(), io::ErrorKind::InvalidData);
        std::fs::write(&clock, "").unwrap();
        assert!(read_fake_now_ms(&clock).is_err());
    }

    #[test]
    fn system_time_is_plausible() {
        // After 2025-01-01 and before 2200-01-01.
        let now = system_now_ms();
        assert!((1_735_689_600_000..7_258_118_400_000).contains(&now), "{now}");
    }
}

//! One line per event on stderr, with sd-daemon(3) priority prefixes under journald.
//!
//! When `JOURNAL_STREAM` is set (systemd connected stderr to the journal), each line starts with
//! `<3>` (error), `<4>` (warning), `<6>` (info) or `<7>` (debug) and journald files it at that
//! priority; otherwise lines start with the program name. Never log a token: log its
//! [`credmap::Fingerprint`] (`Secret`'s `Display` does that).

use std::fmt;
use std::io::Write;
use std::sync::OnceLock;

/// Message priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error = 3,
    /// Something is wrong but the tool carries on.
    Warning = 4,
    /// Normal operation.
    Info = 6,
    /// Detail.
    Debug = 7,
}

static JOURNAL: OnceLock<bool> = OnceLock::new();

/// Writes one log line to stderr.
pub fn log(level: Level, program: &str, message: fmt::Arguments<'_>) {
    let journal = *JOURNAL.get_or_init(|| std::env::var_os("JOURNAL_STREAM").is_some());
    let line = if journal {
        format!("<{}>{message}\n", level as u8)
    } else {
        let tag = match level {
            Level::Error => "error: ",
            Level::Warning => "warning: ",
            Level::Info | Level::Debug => "",
        };
        format!("{program}: {tag}{message}\n")
    };
    // One write per line so concurrent writers do not interleave mid-line.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

//! The I/O policy every openclaw-oauth-keeper tool shares, kept out of the pure `credmap`
//! library: the config file, bounded input reads, the clock, journald-aware logging, default
//! paths, signals, child processes, the HTTP client, durable writes and exit-code conventions.
#![deny(missing_docs)]

pub mod clock;
pub mod config;
pub mod http;
pub mod input;
pub mod log;
pub mod paths;
pub mod process;
pub mod signal;
pub mod watch;
pub mod write;

/// The tools' `--version`: the workspace version and the commit it was built from (`build.rs`:
/// `git rev-parse --short HEAD`, or `KEEPER_BUILD_COMMIT`, else "unknown"), e.g.
/// `0.1.0 (commit 2b0e108)`.
pub const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("KEEPER_BUILD_COMMIT"), ")");

/// Exit code for a command line that cannot be parsed (BSD `EX_USAGE`), the same for every tool.
pub const EXIT_USAGE: u8 = 64;

/// Prints a clap error (help and version go to stdout) and returns the exit code: 0 for
/// `--help`/`--version`, [`EXIT_USAGE`] for anything else.
#[must_use]
pub fn clap_exit(err: &clap::Error) -> std::process::ExitCode {
    let _ = err.print();
    if err.use_stderr() { std::process::ExitCode::from(EXIT_USAGE) } else { std::process::ExitCode::SUCCESS }
}

//! Support for the install tests: the repository's scripts and units, and the workspace's tools
//! built once per test binary, so a test can install them the way `scripts/setup.sh` does.
#![deny(missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

// --- systemd: the unit files, systemd-analyze and a private user manager (units helper) ---
pub mod systemd;
// --- end systemd ---
pub mod machine;
pub mod webhook;

/// The tools `scripts/setup.sh` installs.
pub const TOOLS: [&str; 4] = ["token-expiry", "cred-sync", "cli-poke", "compose-recreate"];

/// The repository's root directory.
#[must_use]
pub fn repo_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("tests/install in the repo").to_path_buf()
    })
}

/// A directory holding the four tools and the `claude` stand-in, built (once per test binary)
/// into this test binary's own target directory and profile.
#[must_use]
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let packages: Vec<&str> = TOOLS.iter().copied().chain(["claude-stand-in"]).collect();
        let dir = build_workspace_packages(&packages);
        for bin in TOOLS.iter().chain(&["claude"]) {
            assert!(dir.join(bin).is_file(), "{bin} was not built in {}", dir.display());
        }
        dir
    })
}

/// Builds the binaries of the given workspace packages into the calling test binary's own
/// target directory and profile (cargo hands a test only its own package's binaries) and
/// returns that profile directory, where they now are.
///
/// # Panics
/// When cargo cannot run or the build fails.
#[must_use]
pub fn build_workspace_packages(packages: &[&str]) -> PathBuf {
    // This test binary is <target>/<profile>/deps/<name>.
    let exe = std::env::current_exe().expect("own path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("test binary in <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("profile dir in the target dir");
    let profile = profile_dir.file_name().and_then(|n| n.to_str()).expect("profile name");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--bins", "--target-dir"]).arg(target_dir).current_dir(repo_root());
    for package in packages {
        cmd.args(["-p", package]);
    }
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "building {packages:?} failed");
    profile_dir.to_path_buf()
}

/// The fingerprint the tools print for a token: the first 8 hex digits of its SHA-256.
#[must_use]
pub fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    hex(&digest[..4])
}

/// Fresh tokens of the real shape (108 characters, distinct on every call): the claude
/// stand-in's own generator, so every test makes them one way.
pub use claude_stand_in::tokens::{access_token, refresh_token};

/// Whether `text` holds anything shaped like a token (`sk-ant-xxxNN-` and 20+ token characters):
/// output a test checks must never leak one.
#[must_use]
pub fn has_token_shape(text: &str) -> bool {
    text.match_indices("sk-ant-").any(|(i, _)| {
        let b = &text.as_bytes()[i + 7..];
        b.len() >= 26
            && b[..3].iter().all(u8::is_ascii_lowercase)
            && b[3..5].iter().all(u8::is_ascii_digit)
            && b[5] == b'-'
            && b[6..26].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
    })
}

/// Now, in Unix milliseconds (the credentials file's `expiresAt` unit).
///
/// # Panics
/// When the clock is before 1970 or past the year 292 million.
#[must_use]
pub fn now_ms() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// Writes `text` to `path`, creating its parent directories.
///
/// # Panics
/// On I/O errors.
pub fn write_file(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("a file path")).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Runs `scripts/verify.sh` in an empty environment that `configure` fills in (arguments,
/// variables): (exit code, stdout then stderr).
///
/// # Panics
/// When bash cannot run or the script is killed by a signal.
pub fn run_verify_sh(configure: impl FnOnce(&mut Command)) -> (i32, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts/verify.sh")).env_clear();
    configure(&mut cmd);
    let out = cmd.output().expect("bash runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().expect("exited"), text)
}

/// The STATUS column of the first row of verify.sh's table whose CHECK starts with `check`.
#[must_use]
pub fn row_status<'a>(table: &'a str, check: &str) -> Option<&'a str> {
    table.lines().find(|l| l.starts_with(check)).and_then(|l| l.split(" | ").nth(1)).map(str::trim)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

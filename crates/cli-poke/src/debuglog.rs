//! The CLI's debug log, written to a private file for one poke (`--debug-file PATH`): the only
//! place CLI 2.1.112 says what the token endpoint answered. It prints the same "OAuth token has
//! expired" after a 400 `invalid_grant` (a dead login) and after a 500 (a transient failure),
//! and leaves the file untouched in both cases; its debug log has
//! `AxiosError: [url=https://platform.claude.com/v1/oauth/token,status=400]` (docs/UPSTREAM.md,
//! "Claude Code CLI"). Later builds write the logged-out stub instead, which says the same.
//!
//! The log may hold secrets: it lives in a directory only this user can enter, only the token
//! request's status is taken from it, and it is deleted after the poke.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

/// At most this much of the log is read (2.1.112 writes ~30 KiB for one poke).
const MAX_READ: u64 = 8 << 20;

/// A private directory holding the log; removed on drop.
#[derive(Debug)]
pub(crate) struct DebugLog {
    dir: PathBuf,
}

impl DebugLog {
    /// Makes `<tmp>/cli-poke-debug.<pid>.<n>` with mode 0700.
    pub(crate) fn create() -> io::Result<Self> {
        let base = std::env::temp_dir();
        let pid = std::process::id();
        for n in 0..100_u32 {
            let dir = base.join(format!("cli-poke-debug.{pid}.{n}"));
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Self { dir }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free name for the debug log's directory"))
    }

    /// The file the CLI is told to write.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join("claude-debug.txt")
    }

    /// What the log says about the token requests, if it says anything.
    pub(crate) fn token_status(&self) -> Option<TokenStatus> {
        let mut text = String::new();
        let file = fs::File::open(self.path()).ok()?;
        file.take(MAX_READ).read_to_string(&mut text).ok()?;
        token_status(&text)
    }
}

impl Drop for DebugLog {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The HTTP status of the last failed token request the log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenStatus(pub(crate) u16);

impl TokenStatus {
    /// 400 and 401 are the endpoint's answer to a dead or revoked refresh token; anything else
    /// (429, 5xx) is the endpoint failing, and the next attempt may succeed.
    pub(crate) fn means_dead(self) -> bool {
        matches!(self.0, 400 | 401)
    }
}

/// Scans `text` for `…/oauth/token,status=NNN`; the last one wins.
fn token_status(text: &str) -> Option<TokenStatus> {
    text.lines().rev().find_map(line_status)
}

fn line_status(line: &str) -> Option<TokenStatus> {
    let at = line.find("/oauth/token,status=")?;
    let digits: String = line[at + "/oauth/token,status=".len()..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().map(TokenStatus)
}

/// Whether the CLI rejected `--debug-file` (a build older than the option).
pub(crate) fn option_unknown(output: &str) -> bool {
    output.contains("unknown option") && output.contains("--debug-file")
}

/// Whether the directory holding `path` is open to this user only.
#[cfg(test)]
fn is_private(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777 == 0o700
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_of_cli_2_1_112() {
        let log = "2026-12-01T23:32:18Z [ERROR] AxiosError: [url=https://api.anthropic.com/api/claude_cli/bootstrap,status=404,body=x] …\n\
                   2026-12-01T23:32:19Z [ERROR] AxiosError: [url=https://platform.claude.com/v1/oauth/token,status=500] AxiosError: Request failed with status code 500\n\
                   2026-12-01T23:32:20Z [ERROR] AxiosError: [url=https://platform.claude.com/v1/oauth/token,status=400] AxiosError: Request failed with status code 400\n";
        assert_eq!(token_status(log), Some(TokenStatus(400)));
        assert!(TokenStatus(400).means_dead() && TokenStatus(401).means_dead());
        assert!(!TokenStatus(500).means_dead() && !TokenStatus(429).means_dead());
        assert_eq!(token_status("[DEBUG] [API:auth] OAuth token check complete\n"), None);
        assert_eq!(token_status("…/oauth/token,status=]"), None);
    }

    #[test]
    fn the_directory_is_private_and_goes() {
        let log = DebugLog::create().unwrap();
        let path = log.path();
        assert!(is_private(&path));
        fs::write(&path, "[url=https://platform.claude.com/v1/oauth/token,status=503]").unwrap();
        assert_eq!(log.token_status(), Some(TokenStatus(503)));
        drop(log);
        assert!(!path.parent().unwrap().exists());
    }

    #[test]
    fn an_unknown_option_is_recognised() {
        assert!(option_unknown("error: unknown option '--debug-file'"));
        assert!(!option_unknown("error: unknown option '--foo'"));
    }
}

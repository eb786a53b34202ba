//! Shared set-up for cred-sync's tests: fake but realistic tokens (every one registered, so every
//! captured output can be searched for all of them), source files written the two ways the Claude
//! CLI writes them, and a watch process whose output is collected.
#![allow(dead_code, reason = "each test binary uses a different part of this module")]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Every token any test of this binary made.
static TOKENS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A small xorshift generator: tests need variety, not cryptographic randomness.
pub(crate) fn random_u64() -> u64 {
    static STATE: Mutex<u64> = Mutex::new(0);
    let mut s = STATE.lock().unwrap();
    if *s == 0 {
        *s = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    }
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn random_body(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    (0..len).map(|_| ALPHABET[(random_u64() % ALPHABET.len() as u64) as usize] as char).collect()
}

/// A new access token as the CLI holds them (`sk-ant-oat01-` + 95 characters, 108 in all).
pub(crate) fn access_token() -> String {
    register(format!("sk-ant-oat01-{}", random_body(95)))
}

/// A new access token of `len` characters in all (paste-token's length limit is under test).
pub(crate) fn access_token_of_len(len: usize) -> String {
    register(format!("sk-ant-oat01-{}", random_body(len - "sk-ant-oat01-".len())))
}

/// A new refresh token.
pub(crate) fn refresh_token() -> String {
    register(format!("sk-ant-ort01-{}", random_body(95)))
}

fn register(token: String) -> String {
    TOKENS.lock().unwrap().push(token.clone());
    token
}

/// Fails when any registered token appears in `text`.
pub(crate) fn assert_no_token(text: &str, what: &str) {
    for token in TOKENS.lock().unwrap().iter() {
        assert!(!text.contains(token.as_str()), "{what} contains a token: {text}");
        // A fragment long enough to be useful to an attacker counts too.
        assert!(!text.contains(&token[13..45]), "{what} contains part of a token");
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

pub(crate) const HOUR_MS: i64 = 3_600_000;

/// How the Claude CLI writes its file (docs/UPSTREAM.md, "Claude Code CLI").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteStyle {
    /// 2.1.112: open with `O_TRUNC`, one write, close, chmod 0600.
    InPlace,
    /// 2.1.197: `.credentials.json.tmp.<hex>` with mode 0600, renamed over the file.
    Rename,
}

/// A Claude `.credentials.json` holding `access`, with an MCP section whose content can vary.
pub(crate) fn claude_json(access: &str, refresh: &str, expires_ms: i64, mcp: &str) -> String {
    format!(
        r#"{{"claudeAiOauth":{{"accessToken":"{access}","refreshToken":"{refresh}","expiresAt":{expires_ms},"scopes":["user:inference","user:profile"],"subscriptionType":"max","rateLimitTier":null}},"mcpOAuth":{{"server":{{"state":"{mcp}"}}}}}}"#
    )
}

/// The logged-out stub 2.1.197 writes after `invalid_grant`.
pub(crate) const LOGGED_OUT_STUB: &str = r#"{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":0,"scopes":["user:inference","user:profile"],"subscriptionType":"max"}}"#;

pub(crate) fn write_source(path: &Path, contents: &str, style: WriteStyle) {
    match style {
        WriteStyle::InPlace => {
            let mut f =
                std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).unwrap();
            f.write_all(contents.as_bytes()).unwrap();
        }
        WriteStyle::Rename => {
            let tmp = path.with_file_name(format!(".credentials.json.tmp.{:08x}", random_u64() as u32));
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).unwrap();
            f.write_all(contents.as_bytes()).unwrap();
            drop(f);
            std::fs::rename(&tmp, path).unwrap();
        }
    }
}

/// A temporary home with a Claude config dir and an OpenClaw dir.
pub(crate) struct Home {
    pub(crate) dir: tempfile::TempDir,
}

impl Home {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".claude")).unwrap();
        Self { dir }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn source(&self) -> PathBuf {
        self.path(".claude/.credentials.json")
    }

    /// Writes a fresh source token (8 hours left) and returns it.
    pub(crate) fn fresh_source(&self) -> String {
        let access = access_token();
        write_source(
            &self.source(),
            &claude_json(&access, &refresh_token(), now_ms() + 8 * HOUR_MS, "a"),
            WriteStyle::Rename,
        );
        access
    }

    /// `cred-sync` with a clean environment: this home, no config file, no inherited KEEPER_*.
    pub(crate) fn cred_sync(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cred-sync"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path(".config"))
            .env("KEEPER_STATE_DIR", self.path(".local/state/keeper"))
            .arg("--from")
            .arg(self.source());
        cmd
    }
}

/// What a finished run printed.
pub(crate) struct Ran {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs to completion and checks that no token was printed.
pub(crate) fn run(cmd: &mut Command) -> Ran {
    let Output { status, stdout, stderr } = cmd.output().unwrap();
    let ran = Ran {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert_no_token(&ran.stdout, "stdout");
    assert_no_token(&ran.stderr, "stderr");
    ran
}

/// Polls `cond` until it holds or `limit` passes (the condition, not the time, is under test).
pub(crate) fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// A running `cred-sync --watch` whose stdout and stderr lines are collected.
pub(crate) struct Watch {
    pub(crate) child: Child,
    pub(crate) stdout: Arc<Mutex<Vec<String>>>,
    pub(crate) stderr: Arc<Mutex<Vec<String>>>,
}

impl Watch {
    pub(crate) fn start(mut cmd: Command) -> Self {
        cmd.arg("--watch").stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let collect = |stream: Box<dyn std::io::Read + Send>| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
            lines
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        let w = Self { child, stdout, stderr };
        assert!(w.wait_stderr(Duration::from_secs(20), "watching"), "watch did not start: {:?}", w.stderr());
        w
    }

    pub(crate) fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub(crate) fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    pub(crate) fn wait_stderr(&self, limit: Duration, needle: &str) -> bool {
        wait_for(limit, || self.stderr().iter().any(|l| l.contains(needle)))
    }

    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap()), signal).unwrap();
    }

    /// Stops it with SIGTERM, checks it exited 0 and printed no token; returns (stdout, stderr).
    pub(crate) fn stop(mut self) -> (Vec<String>, Vec<String>) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let status = self.child.wait().unwrap();
        // Let the reader threads see end-of-file.
        std::thread::sleep(Duration::from_millis(50));
        let (out, err) = (self.stdout(), self.stderr());
        assert_eq!(status.code(), Some(0), "watch exit: {status:?}; stderr: {err:?}");
        assert_no_token(&out.join("\n"), "watch stdout");
        assert_no_token(&err.join("\n"), "watch stderr");
        (out, err)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The token a target file holds, by searching its text for the registered tokens.
pub(crate) fn held_token(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    TOKENS.lock().unwrap().iter().find(|t| text.contains(t.as_str())).cloned()
}

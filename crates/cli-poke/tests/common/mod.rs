//! The `claude` stand-in, hermetic commands and fixtures for cli-poke's tests.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The install tests' leak check and webhook stand-in serve these tests too.
pub use keeper_install_tests::has_token_shape;
pub use keeper_install_tests::webhook::Webhook;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cli-poke");

/// The stand-in `claude` binary: `$CLAUDE_STAND_IN_BIN` when set, else built (once per test
/// binary) into this test binary's own target directory and profile.
pub fn stand_in() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("CLAUDE_STAND_IN_BIN").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => workspace_bin("claude-stand-in", "claude"),
    })
}

/// `cred-sync`, built (once per test binary) like [`stand_in`]: the simulation runs it.
pub fn cred_sync() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_bin("cred-sync", "cred-sync"))
}

/// `token-expiry`, built (once per test binary) like [`stand_in`]: the real-CLI tests judge the
/// file the CLI wrote with it.
pub fn token_expiry() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_bin("token-expiry", "token-expiry"))
}

/// Builds binary `bin` of workspace package `package` next to this test binary and returns it.
fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    let path = keeper_install_tests::build_workspace_packages(&[package]).join(bin);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

pub const SECOND: i64 = 1000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;

pub fn now_ms() -> i64 {
    keeper_core::clock::system_now_ms()
}

/// A fresh fake access token of the real shape (108 characters).
pub fn access_token() -> String {
    claude_stand_in::tokens::access_token()
}

/// A fresh fake refresh token of the real shape.
pub fn refresh_token() -> String {
    claude_stand_in::tokens::refresh_token()
}

/// What one run printed.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A home directory with `.claude/` and `.openclaw/`, and a hermetic way to run cli-poke on it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub claude_dir: PathBuf,
    pub creds: PathBuf,
    pub openclaw: PathBuf,
    pub flag: PathBuf,
    pub call_log: PathBuf,
    pub server: PathBuf,
    /// Every token this fixture ever saw in the credentials file: none may appear in any output.
    seen_tokens: std::cell::RefCell<Vec<String>>,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let claude_dir = home.join(".claude");
        let openclaw = home.join(".openclaw");
        std::fs::create_dir_all(&claude_dir).unwrap();
        std::fs::create_dir_all(&openclaw).unwrap();
        Self {
            creds: claude_dir.join(".credentials.json"),
            flag: openclaw.join("REAUTH_NEEDED"),
            call_log: dir.path().join("calls.jsonl"),
            server: dir.path().join("server.json"),
            home,
            claude_dir,
            openclaw,
            dir,
            seen_tokens: std::cell::RefCell::default(),
        }
    }

    /// Writes a 2.1.197-style credentials file (with fields and keys cli-poke must keep) expiring
    /// at `expires_ms`; returns (access, refresh).
    pub fn write_creds(&self, expires_ms: i64) -> (String, String) {
        self.write_creds_at(&self.creds, expires_ms)
    }

    pub fn write_creds_at(&self, path: &Path, expires_ms: i64) -> (String, String) {
        let (access, refresh) = (access_token(), refresh_token());
        let doc = serde_json::json!({
            "claudeAiOauth": {
                "accessToken": access,
                "refreshToken": refresh,
                "expiresAt": expires_ms,
                "scopes": ["user:inference", "user:profile"],
                "subscriptionType": "max",
                "rateLimitTier": "default_claude_max_20x",
                "futureField": {"kept": true}
            },
            "mcpOAuth": {"srv|1": {"accessToken": "mcp-opaque"}},
            "trustedDeviceToken": "opaque-device"
        });
        std::fs::write(path, doc.to_string()).unwrap();
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        self.seen_tokens.borrow_mut().extend([access.clone(), refresh.clone()]);
        (access, refresh)
    }

    /// The credentials file as JSON.
    pub fn creds_json(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&self.creds).unwrap()).unwrap()
    }

    /// (access, refresh, expiresAt) in the credentials file.
    pub fn current(&self) -> (String, String, i64) {
        let v = self.creds_json();
        let o = &v["claudeAiOauth"];
        let current = (
            o["accessToken"].as_str().unwrap().to_owned(),
            o["refreshToken"].as_str().unwrap().to_owned(),
            o["expiresAt"].as_i64().unwrap(),
        );
        self.remember_tokens();
        current
    }

    fn remember_tokens(&self) {
        let Ok(bytes) = std::fs::read(&self.creds) else { return };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return };
        for key in ["accessToken", "refreshToken"] {
            if let Some(t) = v["claudeAiOauth"][key].as_str().filter(|t| !t.is_empty()) {
                self.seen_tokens.borrow_mut().push(t.to_owned());
            }
        }
    }

    /// cli-poke with no config file, no inherited KEEPER_/CLAUDE_/ANTHROPIC_ variables, this
    /// fixture's HOME, the stand-in as the CLI and its call log.
    pub fn cmd(&self) -> Command {
        let mut cmd = self.bare_cmd();
        cmd.arg("--cli").arg(stand_in());
        cmd
    }

    /// Like [`Fixture::cmd`] without `--cli`.
    pub fn bare_cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if ["KEEPER_", "CLAUDE_", "ANTHROPIC_"].iter().any(|p| k.starts_with(p)) || k == "JOURNAL_STREAM" {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("KEEPER_CONFIG", "/dev/null").env("HOME", &self.home).env("CLAUDE_STAND_IN_LOG", &self.call_log);
        cmd
    }

    /// Runs a command; checks that no token this fixture has seen appears in its output, and that
    /// the stand-in never got a token on its command line or in its environment.
    pub fn run(&self, cmd: &mut Command) -> Out {
        self.remember_tokens();
        let out = cmd.output().unwrap();
        self.remember_tokens();
        let out = Out {
            code: out.status.code().expect("exited normally"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        };
        let all = out.all();
        for t in self.seen_tokens.borrow().iter() {
            assert!(!all.contains(t.as_str()), "a token leaked into the output:\n{all}");
        }
        assert!(!has_token_shape(&all), "something token-shaped is in the output:\n{all}");
        for call in self.calls() {
            assert_eq!(call["token_env"], serde_json::json!([]), "{call}");
            assert_eq!(call["token_shaped_env"], serde_json::json!([]), "{call}");
            assert_eq!(call["token_shaped_args"], serde_json::json!(false), "{call}");
        }
        out
    }

    /// The stand-in's call log, one JSON object per invocation.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.call_log)
            .map(|t| t.lines().map(|l| serde_json::from_str(l).unwrap()).collect())
            .unwrap_or_default()
    }

    /// The simulated token endpoint's state.
    pub fn server_state(&self) -> claude_stand_in::server::State {
        claude_stand_in::server::State::load(&self.server).unwrap()
    }
}

/// Whether a process is gone (or a zombie), allowing up to 5 s for one just sent SIGKILL.
pub fn gone(pid: &str) -> bool {
    let dead = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    };
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !dead() {
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

/// A temporary home for one test against the TLS mock of Anthropic (`keeper-anthropic-mock`): the
/// CLI's config dir with the path of its credentials file, OpenClaw's directory with the path of
/// the REAUTH flag, and the mock, whose CA lives in the temporary directory.
pub struct MockHome {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub claude_dir: PathBuf,
    pub creds: PathBuf,
    pub flag: PathBuf,
    pub mock: keeper_anthropic_mock::Mock,
}

impl MockHome {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let claude_dir = home.join(".claude");
        std::fs::create_dir_all(&claude_dir).unwrap();
        std::fs::create_dir_all(home.join(".openclaw")).unwrap();
        let mock = keeper_anthropic_mock::Mock::start(dir.path()).unwrap();
        Self {
            creds: claude_dir.join(".credentials.json"),
            flag: home.join(".openclaw/REAUTH_NEEDED"),
            home,
            claude_dir,
            mock,
            dir,
        }
    }
}

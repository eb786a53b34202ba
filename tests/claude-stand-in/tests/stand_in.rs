//! The stand-in behaves as docs/UPSTREAM.md ("Claude Code CLI") describes the real CLI.

use claude_stand_in::server::{FAMILY_LIFETIME_MS, State};
use claude_stand_in::tokens::{access_token, refresh_token};
use claude_stand_in::{EXPIRED_401, NOT_LOGGED_IN};
use serde_json::{Value, json};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const BIN: &str = env!("CARGO_BIN_EXE_claude");
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn now_ms() -> i64 {
    keeper_core::clock::system_now_ms()
}

struct Home {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cfg");
        std::fs::create_dir(&config).unwrap();
        Self { dir, config }
    }

    fn creds(&self) -> PathBuf {
        self.config.join(".credentials.json")
    }

    fn write(&self, expires_ms: i64) -> (String, String) {
        let (a, r) = (access_token(), refresh_token());
        let doc = json!({
            "claudeAiOauth": {"accessToken": a, "refreshToken": r, "expiresAt": expires_ms,
                              "scopes": ["user:inference"], "subscriptionType": "max", "extra": 1},
            "mcpOAuth": {"k": "v"}
        });
        std::fs::write(self.creds(), doc.to_string()).unwrap();
        (a, r)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.creds()).unwrap()).unwrap()
    }

    fn claude(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env("CLAUDE_CONFIG_DIR", &self.config).env("HOME", self.dir.path());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CLAUDE_STAND_IN_") || k == "KEEPER_FAKE_CLOCK_FILE" {
                cmd.env_remove(k);
            }
        }
        cmd
    }
}

fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap())
}

fn lock_of(config: &Path) -> PathBuf {
    PathBuf::from(format!("{}.lock", config.display()))
}

#[test]
fn answers_without_refreshing_outside_the_window() {
    let h = Home::new();
    h.write(now_ms() + 6 * MINUTE);
    let before = std::fs::read(h.creds()).unwrap();
    assert_eq!(run(&mut h.claude(&["-p", "say ok"])), (0, "ok\n".into()));
    assert_eq!(std::fs::read(h.creds()).unwrap(), before);
    assert!(!lock_of(&h.config).exists());
}

#[test]
fn version_and_auth_status_never_refresh() {
    let h = Home::new();
    h.write(now_ms() - HOUR);
    let before = std::fs::read(h.creds()).unwrap();
    assert_eq!(run(&mut h.claude(&["--version"])).0, 0);
    let (code, out) = run(&mut h.claude(&["auth", "status"]));
    assert_eq!(code, 0);
    assert!(out.contains("\"loggedIn\":true"), "{out}");
    assert_eq!(std::fs::read(h.creds()).unwrap(), before);
}

fn refresh_with(write: &str) -> (u64, u64) {
    let h = Home::new();
    let (a0, r0) = h.write(now_ms() + 4 * MINUTE);
    let ino = std::fs::metadata(h.creds()).unwrap().ino();
    std::fs::set_permissions(h.creds(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let t0 = now_ms();
    let (code, out) =
        run(h.claude(&["-p", "say ok"]).env("CLAUDE_STAND_IN_WRITE", write).env("CLAUDE_STAND_IN_EXPIRES_IN", "600"));
    assert_eq!((code, out.as_str()), (0, "ok\n"));
    let v = h.json();
    let o = &v["claudeAiOauth"];
    assert!(o["accessToken"].as_str().unwrap() != a0 && o["refreshToken"].as_str().unwrap() != r0);
    assert_eq!(o["accessToken"].as_str().unwrap().len(), 108);
    let e = o["expiresAt"].as_i64().unwrap();
    assert!((t0 + 10 * MINUTE..=now_ms() + 10 * MINUTE).contains(&e));
    assert_eq!(
        (o["scopes"].clone(), o["extra"].clone(), v["mcpOAuth"].clone()),
        (json!(["user:inference"]), json!(1), json!({"k": "v"}))
    );
    let meta = std::fs::metadata(h.creds()).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert!(!lock_of(&h.config).exists(), "lock released");
    assert_eq!(std::fs::read_dir(&h.config).unwrap().count(), 1, "no temp file left");
    (ino, meta.ino())
}

#[test]
fn refreshes_in_the_window_rotating_both_tokens_in_place() {
    let (before, after) = refresh_with("in-place");
    assert_eq!(before, after);
}

#[test]
fn refreshes_in_the_window_rotating_both_tokens_by_rename() {
    let (before, after) = refresh_with("rename");
    assert_ne!(before, after);
}

#[test]
fn dead_refresh_token_writes_the_stub_and_says_invalid_grant() {
    let h = Home::new();
    h.write(now_ms() + MINUTE);
    let (code, out) = run(h.claude(&["-p", "say ok"]).env("CLAUDE_STAND_IN_DEAD", "1"));
    assert_eq!(code, 1);
    assert!(out.contains("invalid_grant") && out.contains(NOT_LOGGED_IN), "{out}");
    let v = h.json();
    assert_eq!(
        v["claudeAiOauth"],
        json!({"accessToken": "", "refreshToken": "", "expiresAt": 0, "scopes": ["user:inference"], "subscriptionType": "max"})
    );
    assert_eq!(v["mcpOAuth"], json!({"k": "v"}));
    let stub = credmap::claude::read(&credmap::claude::parse(&std::fs::read(h.creds()).unwrap()).unwrap()).unwrap();
    assert!(matches!(stub, credmap::claude::OauthState::LoggedOut { .. }));
    assert_eq!(run(&mut h.claude(&["-p", "again"])), (1, format!("{NOT_LOGGED_IN}\n")));
}

#[test]
fn dead_refresh_token_2_1_112_style_leaves_the_file_and_fails_once_expired() {
    let h = Home::new();
    h.write(now_ms() - MINUTE);
    let before = std::fs::read(h.creds()).unwrap();
    let (code, out) =
        run(h.claude(&["-p", "x"]).env("CLAUDE_STAND_IN_DEAD", "1").env("CLAUDE_STAND_IN_ON_FAILURE", "keep"));
    assert_eq!((code, out), (1, format!("{EXPIRED_401}\n")));
    assert_eq!(std::fs::read(h.creds()).unwrap(), before);
}

#[test]
fn two_holders_of_one_refresh_token_log_each_other_out() {
    // The root cause the seeds describe: a copy of the refresh token, refreshed twice.
    let (a, b) = (Home::new(), Home::new());
    let (_, r0) = a.write(now_ms() + MINUTE);
    std::fs::copy(a.creds(), b.creds()).unwrap();
    let server = a.dir.path().join("server.json");
    State::for_login(&r0, now_ms() + FAMILY_LIFETIME_MS).save(&server).unwrap();
    assert_eq!(run(a.claude(&["-p", "x"]).env("CLAUDE_STAND_IN_SERVER", &server)).0, 0);
    let (code, out) = run(b.claude(&["-p", "x"]).env("CLAUDE_STAND_IN_SERVER", &server));
    assert_eq!(code, 1);
    assert!(out.contains("invalid_grant"), "{out}");
    let s = State::load(&server).unwrap();
    assert_eq!((s.refreshes, s.reuses, s.rejections), (1, 1, 1));
    let results: Vec<&str> = s.events.iter().map(|e| e.result.as_str()).collect();
    assert_eq!(results, ["rotated", "reused"]);
    let current = a.json()["claudeAiOauth"]["accessToken"].as_str().unwrap().to_owned();
    assert!(s.access_token_valid_at(&credmap::Fingerprint::of(&current).to_string(), now_ms()));
}

#[test]
fn the_family_expires_after_30_days_by_the_fake_clock() {
    let h = Home::new();
    let t0 = 1_767_225_600_000;
    let clock = h.dir.path().join("clock");
    keeper_core::clock::set_fake_now_ms(&clock, t0 + FAMILY_LIFETIME_MS - HOUR).unwrap();
    let (_, r0) = h.write(t0 + FAMILY_LIFETIME_MS - HOUR + MINUTE);
    let server = h.dir.path().join("server.json");
    State::for_login(&r0, t0 + FAMILY_LIFETIME_MS).save(&server).unwrap();
    let claude = |h: &Home| {
        let mut c = h.claude(&["-p", "x"]);
        c.env("CLAUDE_STAND_IN_SERVER", &server).env("KEEPER_FAKE_CLOCK_FILE", &clock);
        c
    };
    assert_eq!(run(&mut claude(&h)).0, 0);
    assert_eq!(h.json()["claudeAiOauth"]["expiresAt"], json!(t0 + FAMILY_LIFETIME_MS - HOUR + 8 * HOUR));
    keeper_core::clock::set_fake_now_ms(&clock, t0 + FAMILY_LIFETIME_MS + 7 * HOUR).unwrap();
    let (code, out) = run(&mut claude(&h));
    assert_eq!(code, 1);
    assert!(out.contains("invalid_grant"), "{out}");
    assert_eq!(State::load(&server).unwrap().events.last().unwrap().result, "family-expired");
}

#[test]
fn a_busy_lock_is_waited_for_and_a_stale_one_taken_over() {
    let h = Home::new();
    let lock = lock_of(&h.config);
    std::fs::create_dir(&lock).unwrap();
    // live holder, expired token: no refresh, the 401
    h.write(now_ms() - MINUTE);
    let (code, out) = run(h.claude(&["-p", "x"]).env("CLAUDE_STAND_IN_LOCK_WAIT_MS", "200"));
    assert_eq!((code, out), (1, format!("{EXPIRED_401}\n")));
    // live holder, token still valid: answers from it
    h.write(now_ms() + 2 * MINUTE);
    assert_eq!(run(h.claude(&["-p", "x"]).env("CLAUDE_STAND_IN_LOCK_WAIT_MS", "200")), (0, "ok\n".into()));
    // the holder died 11 s ago: taken over, refreshed, released
    let old = SystemTime::now() - Duration::from_secs(11);
    std::fs::File::open(&lock).unwrap().set_modified(old).unwrap();
    let (a0, _) = h.write(now_ms() + 2 * MINUTE);
    assert_eq!(run(h.claude(&["-p", "x"]).env("CLAUDE_STAND_IN_LOCK_WAIT_MS", "200")), (0, "ok\n".into()));
    assert_ne!(h.json()["claudeAiOauth"]["accessToken"], json!(a0));
    assert!(!lock.exists());
}

#[test]
fn the_call_log_records_environment_without_values_of_tokens() {
    let h = Home::new();
    h.write(now_ms() + HOUR);
    let log = h.dir.path().join("calls.jsonl");
    let (code, _) = run(h
        .claude(&["-p", "x"])
        .env("CLAUDE_STAND_IN_LOG", &log)
        .env("ANTHROPIC_BASE_URL", "http://proxy:4000")
        .env("CLAUDE_CODE_OAUTH_TOKEN", access_token()));
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let call: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(call["anthropic_base_url"], "http://proxy:4000");
    assert_eq!(call["token_env"], json!(["CLAUDE_CODE_OAUTH_TOKEN"]));
    assert_eq!(call["token_shaped_env"], json!(["CLAUDE_CODE_OAUTH_TOKEN"]));
    assert_eq!(call["outcome"], "answered");
    assert!(!text.contains("sk-ant-oat01-"), "{text}");
}

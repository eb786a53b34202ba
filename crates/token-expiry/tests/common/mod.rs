//! Fixtures built at run time, with expiries relative to now, and hermetic commands.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_token-expiry");

pub const SECOND: i64 = 1000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;

/// Every option's environment variable, removed so the test environment cannot leak in.
const KEEPER_VARS: [&str; 8] = [
    "KEEPER_CREDENTIALS",
    "KEEPER_OUTPUT",
    "KEEPER_WITHIN",
    "KEEPER_FORMAT",
    "KEEPER_PROFILE_ID",
    "KEEPER_ENV_KEY",
    "KEEPER_WAIT_UNTIL_WITHIN",
    "JOURNAL_STREAM",
];

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A fake token of a realistic length, different on every call: `sk-ant-oat01-TEST<hex>…`.
pub fn token(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed =
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
    let mut x = seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut body = String::new();
    while body.len() < 88 {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = write!(body, "{x:016x}");
    }
    body.truncate(88);
    format!("{prefix}TEST{body}")
}

pub fn access_token() -> String {
    token("sk-ant-oat01-")
}

pub fn refresh_token() -> String {
    token("sk-ant-ort01-")
}

/// A Claude CLI `.credentials.json` as 2.1.197 writes it (compact), with an MCP section beside it.
pub fn claude_json(access: &str, expires_ms: i64) -> String {
    json!({
        "claudeAiOauth": {
            "accessToken": access,
            "refreshToken": refresh_token(),
            "expiresAt": expires_ms,
            "scopes": ["user:inference", "user:profile"],
            "subscriptionType": "max",
            "rateLimitTier": null
        },
        "mcpOAuth": {"srv": {"accessToken": token("mcp-")}}
    })
    .to_string()
}

/// Same, with `refreshTokenExpiresAt`.
pub fn claude_json_with_refresh_expiry(access: &str, expires_ms: i64, refresh_expires_ms: i64) -> String {
    json!({
        "claudeAiOauth": {
            "accessToken": access,
            "refreshToken": refresh_token(),
            "expiresAt": expires_ms,
            "refreshTokenExpiresAt": refresh_expires_ms,
            "scopes": ["user:inference"]
        }
    })
    .to_string()
}

/// The logged-out stub Claude CLI 2.1.197 writes after `invalid_grant`.
pub fn stub_json() -> String {
    json!({
        "claudeAiOauth": {
            "accessToken": "",
            "refreshToken": "",
            "expiresAt": 0,
            "scopes": ["user:inference", "user:profile"],
            "subscriptionType": "max"
        }
    })
    .to_string()
}

/// OpenClaw's legacy `oauth.json` (pretty-printed), with another provider beside Anthropic.
pub fn oauth_json(access: &str, expires_ms: i64) -> String {
    let doc = json!({
        "openai-codex": {"access": token("oai-"), "expires": 1_767_225_600_000_i64},
        "anthropic": {"access": access, "refresh": refresh_token(), "expires": expires_ms}
    });
    serde_json::to_string_pretty(&doc).unwrap() + "\n"
}

/// One `auth-profiles.json` profile: (id, type, token, expires).
pub type Profile<'a> = (&'a str, &'a str, &'a str, Option<i64>);

pub fn profiles_json(profiles: &[Profile<'_>]) -> String {
    let entries: Vec<String> = profiles
        .iter()
        .map(|(id, kind, tok, expires)| {
            let field = match *kind {
                "oauth" => format!(r#""access":"{tok}","refresh":"{}""#, refresh_token()),
                "token" => format!(r#""token":"{tok}""#),
                _ => format!(r#""key":"{tok}""#),
            };
            let expires = expires.map_or(String::new(), |e| format!(r#","expires":{e}"#));
            format!(r#""{id}":{{"type":"{kind}","provider":"anthropic",{field}{expires}}}"#)
        })
        .collect();
    format!(r#"{{"version":1,"profiles":{{{}}},"usageStats":{{}}}}"#, entries.join(","))
}

pub fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// A `Command` for the binary with no config file and no `KEEPER_*` variables.
pub fn std_cmd() -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.env("KEEPER_CONFIG", "/dev/null");
    for var in KEEPER_VARS {
        cmd.env_remove(var);
    }
    // It moves the default file (CLI 2.1.332); tests that want it set it.
    cmd.env_remove("CLAUDE_SECURESTORAGE_CONFIG_DIR");
    cmd
}

/// The same as an `assert_cmd::Command`.
pub fn cmd() -> assert_cmd::Command {
    assert_cmd::Command::from_std(std_cmd())
}

/// Runs the binary and returns (exit code, stdout, stderr).
pub fn run<I, S>(args: I) -> (i32, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = std_cmd().args(args).output().unwrap();
    (
        out.status.code().expect("exited normally"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

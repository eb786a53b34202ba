//! cred-sync against the real OpenClaw: the real `cred-sync` binary writes, then the real OpenClaw
//! (run offline) says what it sees — `openclaw models status --json`, the same question cred-sync's
//! `--check` asks. Two generations: 2026.9.6 (SQLite era, `KEEPER_OPENCLAW_SQLITE`) and 2026.6.1
//! (JSON era, the last release that reads `auth-profiles.json`, `KEEPER_OPENCLAW_JSON`), both
//! installed by `scripts/install-openclaw-for-tests.sh DEST` as `DEST/bin/openclaw-{sqlite,json}`.
//!
//! Without those variables the tests skip loudly; with `KEEPER_REQUIRE_OPENCLAW=1` (CI) they fail.
//! Every test has its own HOME and `OPENCLAW_STATE_DIR`; no state directory ever sees both
//! generations (each rejects the other's `openclaw.json`). OpenClaw takes 2–7 s per command, so
//! each test asks it only what it must. `models status` is only ever run with `--json`: without
//! it 2026.6.1 may try to refresh an expired oauth profile over the network.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROFILE: &str = "anthropic:claude-code";
const REQUIRE_ENV: &str = "KEEPER_REQUIRE_OPENCLAW";
/// Far above the 2–7 s an OpenClaw command takes on 2 loaded cores: only a hang trips it.
const OPENCLAW_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generation {
    /// 2026.9.6: credentials in SQLite, written through `paste-token`.
    Sqlite,
    /// 2026.6.1: credentials in `auth-profiles.json` (and the legacy `oauth.json`).
    Json,
}

impl Generation {
    fn env_var(self) -> &'static str {
        match self {
            Generation::Sqlite => "KEEPER_OPENCLAW_SQLITE",
            Generation::Json => "KEEPER_OPENCLAW_JSON",
        }
    }
}

/// The installed OpenClaw of `generation`, or `None` after a loud banner (a panic when
/// `KEEPER_REQUIRE_OPENCLAW=1`).
fn installed(generation: Generation) -> Option<PathBuf> {
    let var = generation.env_var();
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{test}: {var}={} does not exist", path.display());
        return Some(path);
    }
    let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| v.trim() == "1");
    let reason = format!(
        "{var} is not set (scripts/install-openclaw-for-tests.sh DEST, then {var}=DEST/bin/openclaw-{})",
        if generation == Generation::Sqlite { "sqlite" } else { "json" }
    );
    assert!(!required, "{test}: {reason} ({REQUIRE_ENV}=1 makes this a failure)");
    let bar = "!".repeat(100);
    let banner = format!(
        "\n{bar}\n!!! SKIPPED {test}: {reason}\n!!! The test did NOT run. Set {REQUIRE_ENV}=1 to make this a failure (CI does).\n{bar}\n"
    );
    // Straight to the stderr handle: libtest captures only the print macros.
    let _ = std::io::stderr().lock().write_all(banner.as_bytes());
    None
}

/// `let oc = openclaw_home_or_skip!(Generation::Sqlite);` — or `return` from the test.
macro_rules! openclaw_home_or_skip {
    ($generation:expr) => {
        match installed($generation) {
            Some(program) => OpenClawHome::new(program),
            None => return,
        }
    };
}

/// A temporary home with the Claude CLI's credentials and an OpenClaw state directory, used by
/// one OpenClaw generation only.
struct OpenClawHome {
    home: Home,
    program: PathBuf,
}

impl OpenClawHome {
    fn new(program: PathBuf) -> Self {
        let home = Home::new();
        std::fs::create_dir_all(home.path(".openclaw")).unwrap();
        Self { home, program }
    }

    fn state_dir(&self) -> PathBuf {
        self.home.path(".openclaw")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.home.path(rel)
    }

    /// `cred-sync` in this home; the OpenClaw it runs (`--openclaw-cmd`) sees this state directory.
    fn cred_sync(&self) -> Command {
        let mut cmd = self.home.cred_sync();
        cmd.env("OPENCLAW_STATE_DIR", self.state_dir()).env("NO_COLOR", "1");
        cmd
    }

    /// `cred-sync … --openclaw-cmd <this OpenClaw>`.
    fn cred_sync_with_openclaw(&self) -> Command {
        let mut cmd = self.cred_sync();
        cmd.arg("--openclaw-cmd").arg(&self.program);
        cmd
    }

    /// This OpenClaw in this home, with nothing else of the caller's environment.
    fn openclaw(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.dir.path())
            .env("OPENCLAW_STATE_DIR", self.state_dir())
            .env("NO_COLOR", "1");
        cmd
    }

    /// `openclaw models status --json`: what OpenClaw would authenticate with.
    fn models_status(&self) -> Status {
        let ran = run_limited(self.openclaw(&["models", "status", "--json"]), None);
        let json = serde_json::from_str(&ran.stdout).unwrap_or(Value::Null);
        Status { code: ran.code, json, stderr: ran.stderr }
    }

    /// OpenClaw's own `paste-token`, as a user would run it, token on stdin.
    fn paste_token(&self, token: &str, profile_id: &str, expires_in: &str) {
        let cmd = self.openclaw(&[
            "models",
            "auth",
            "paste-token",
            "--provider",
            "anthropic",
            "--profile-id",
            profile_id,
            "--expires-in",
            expires_in,
        ]);
        let ran = run_limited(cmd, Some(token.as_bytes()));
        assert_eq!(ran.code, Some(0), "openclaw paste-token: {}", ran.stderr);
    }

    fn source_expires_ms(&self) -> i64 {
        let source: Value = serde_json::from_slice(&std::fs::read(self.home.source()).unwrap()).unwrap();
        source["claudeAiOauth"]["expiresAt"].as_i64().unwrap()
    }

    /// Replaces the source with a new token expiring in `hours`; returns the token.
    fn new_source(&self, hours: i64) -> String {
        let access = access_token();
        write_source(
            &self.home.source(),
            &claude_json(&access, &refresh_token(), now_ms() + hours * HOUR_MS, "b"),
            WriteStyle::Rename,
        );
        access
    }

    fn profiles_json(&self) -> PathBuf {
        self.path(".openclaw/agents/main/agent/auth-profiles.json")
    }
}

/// Runs `cmd` (stdin: `input`) to completion within [`OPENCLAW_LIMIT`]; checks no token was
/// printed.
fn run_limited(mut cmd: Command, input: Option<&[u8]>) -> Ran {
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
    }
    let reader = |mut stream: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > OPENCLAW_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {OPENCLAW_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let ran = Ran { code: status.code(), stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() };
    assert_no_token(&ran.stdout, "OpenClaw's stdout");
    assert_no_token(&ran.stderr, "OpenClaw's stderr");
    ran
}

/// What `openclaw models status --json` said.
struct Status {
    code: Option<i32>,
    json: Value,
    stderr: String,
}

impl Status {
    /// A profile of `auth.oauth.profiles[]`.
    fn profile(&self, id: &str) -> Option<&Value> {
        self.json.pointer("/auth/oauth/profiles")?.as_array()?.iter().find(|p| p["profileId"] == id)
    }

    fn anthropic_profiles(&self) -> Vec<&Value> {
        let profiles = self.json.pointer("/auth/oauth/profiles").and_then(Value::as_array);
        profiles.map(|ps| ps.iter().filter(|p| p["provider"] == "anthropic").collect()).unwrap_or_default()
    }

    /// `profiles` or `env`: where the Anthropic provider's credential comes from.
    fn anthropic_effective_kind(&self) -> Option<&str> {
        let providers = self.json.pointer("/auth/providers")?.as_array()?;
        providers.iter().find(|p| p["provider"] == "anthropic")?.pointer("/effective/kind")?.as_str()
    }

    /// For failure messages: the fields under test, never the labels (they show token fragments).
    fn summary(&self) -> String {
        let profiles: Vec<String> = self
            .json
            .pointer("/auth/oauth/profiles")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| format!("{} {} {} {}", p["profileId"], p["type"], p["status"], p["expiresAt"]))
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "exit {:?}; profiles {profiles:?}; anthropic effective {:?}; error {}; stderr {}",
            self.code,
            self.anthropic_effective_kind(),
            self.json.pointer("/error/message").unwrap_or(&Value::Null),
            self.stderr.trim()
        )
    }
}

/// `--check --json` rows after the source row.
fn check_rows(ran: &Ran) -> Vec<Value> {
    ran.stdout.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn spec(kind: &str, path: &Path) -> String {
    format!("{kind}:{}", path.display())
}

/// OpenClaw never believes the pasted token outlives the source's, and is short of it by at most
/// two minutes: `paste-token --expires-in` is whole minutes counted from OpenClaw's own start, so
/// cred-sync leaves out the paste timeout (60 s) and rounds down.
fn assert_pasted_expiry(profile: &Value, source_ms: i64, status: &Status) {
    let listed = profile["expiresAt"].as_i64().unwrap_or_else(|| panic!("no expiresAt: {}", status.summary()));
    assert!(
        listed > source_ms - 120_000 && listed <= source_ms,
        "OpenClaw's expiry {listed} vs the source's {source_ms} ({} ms off)",
        listed - source_ms
    );
}

/// (a) SQLite era: cred-sync pastes through the real 2026.9.6, whose `models status` lists the
/// profile with the source's expiry; an unchanged token is not pasted again; `--check` asks the
/// same OpenClaw and tells in-sync from stale; a new token is pasted over the old one.
#[test]
fn sqlite_era_paste_is_what_openclaw_2026_9_6_lists() {
    let oc = openclaw_home_or_skip!(Generation::Sqlite);
    oc.home.fresh_source();
    let first_expiry = oc.source_expires_ms();
    let paste = || run(oc.cred_sync_with_openclaw().args(["--to", "openclaw-paste"]));

    let ran = paste();
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let lines: Vec<Value> = ran.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "one change line: {}", ran.stdout);
    assert_eq!(lines[0]["kind"], "openclaw-paste");
    assert_eq!(lines[0]["expires_ms"], first_expiry);

    let status = oc.models_status();
    assert_eq!(status.code, Some(0), "{}", status.summary());
    let profile = status.profile(PROFILE).unwrap_or_else(|| panic!("not listed: {}", status.summary()));
    assert_eq!((&profile["type"], &profile["source"]), (&"token".into(), &"store".into()), "{}", status.summary());
    assert_eq!(profile["status"], "expiring", "under 24 hours is expiring: {}", status.summary());
    assert_pasted_expiry(profile, first_expiry, &status);
    assert_eq!(status.anthropic_effective_kind(), Some("profiles"), "{}", status.summary());

    // The same token again: nothing to do, and no paste (it would take seconds).
    let again = paste();
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    assert_eq!(again.stdout, "");

    let check = || run(oc.cred_sync_with_openclaw().args(["--check", "--json", "--to", "openclaw-paste"]));
    let in_sync = check();
    assert_eq!(in_sync.code, Some(0), "{}{}", in_sync.stdout, in_sync.stderr);
    let rows = check_rows(&in_sync);
    assert_eq!((&rows[0]["kind"], &rows[0]["state"]), (&"openclaw-paste".into(), &"in-sync".into()), "{rows:?}");

    // The CLI refreshed: OpenClaw still holds the old token until the next paste.
    oc.new_source(9);
    let second_expiry = oc.source_expires_ms();
    let stale = check();
    assert_eq!(stale.code, Some(7), "{}{}", stale.stdout, stale.stderr);
    assert_eq!(check_rows(&stale)[0]["state"], "stale", "{}", stale.stdout);
    let ran = paste();
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let status = oc.models_status();
    let profile = status.profile(PROFILE).unwrap_or_else(|| panic!("not listed: {}", status.summary()));
    assert_pasted_expiry(profile, second_expiry, &status);
    assert_eq!(status.anthropic_profiles().len(), 1, "the new paste replaced the old: {}", status.summary());
}

/// (b) In a 2026.9.6 home cred-sync refuses to create `auth-profiles.json`; forced, the real
/// OpenClaw then fails with `AUTH_PROFILE_MIGRATION_REQUIRED` — the refusal protects the user —
/// and `--check` reports OpenClaw's error.
#[test]
fn sqlite_era_refuses_the_retired_profiles_file_that_breaks_openclaw_2026_9_6() {
    let oc = openclaw_home_or_skip!(Generation::Sqlite);
    oc.home.fresh_source();
    let ran = run(oc.cred_sync_with_openclaw().args(["--to", "openclaw-paste"]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let profiles = oc.profiles_json();
    std::fs::create_dir_all(profiles.parent().unwrap()).unwrap();
    let retired = spec("openclaw-profiles", &profiles);

    let refused = run(oc.cred_sync().args(["--to", &retired]));
    assert_eq!(refused.code, Some(6), "{}", refused.stderr);
    assert!(refused.stderr.contains("AUTH_PROFILE_MIGRATION_REQUIRED"), "{}", refused.stderr);
    // The evidence is the openclaw.json 2026.9.6 wrote during the paste.
    assert!(refused.stderr.contains("last written by OpenClaw 2026.9.6"), "{}", refused.stderr);
    assert!(!profiles.exists(), "the retired file is not created");
    let status = oc.models_status();
    assert_eq!(status.code, Some(0), "OpenClaw still works: {}", status.summary());

    let forced = run(oc.cred_sync().args(["--force-legacy", "--to", &retired]));
    assert_eq!(forced.code, Some(0), "{}", forced.stderr);
    assert!(profiles.exists());
    let status = oc.models_status();
    assert_eq!(status.code, Some(1), "the retired file breaks OpenClaw: {}", status.summary());
    assert!(status.stderr.contains("AUTH_PROFILE_MIGRATION_REQUIRED"), "{}", status.summary());
    assert_eq!(status.json["ok"], false, "{}", status.summary());

    let check = run(oc.cred_sync_with_openclaw().args(["--check", "--json", "--to", "openclaw-paste"]));
    assert_eq!(check.code, Some(7), "{}{}", check.stdout, check.stderr);
    let row = &check_rows(&check)[0];
    assert_eq!(row["state"], "unreadable", "{row}");
    let detail = row["detail"].as_str().unwrap();
    assert!(detail.contains("models status --json` failed"), "{detail}");
    assert!(detail.contains("requires legacy credential migration"), "OpenClaw's own message: {detail}");
}

/// (c) JSON era: a `token` profile in `auth-profiles.json` is what 2026.6.1 uses, with the
/// source's expiry to the millisecond — also after 2026.6.1 itself created
/// `state/openclaw.sqlite`, which is no sign of the SQLite era; `--share-refresh-token` gives an
/// `oauth` profile.
#[test]
fn json_era_openclaw_2026_6_1_uses_the_profiles_file_beside_its_own_sqlite_file() {
    let oc = openclaw_home_or_skip!(Generation::Json);
    // A user pasted a token by hand two hours' worth ago: 2026.6.1 writes auth-profiles.json and
    // openclaw.json, and creates state/openclaw.sqlite too.
    oc.paste_token(&access_token(), PROFILE, "2h");
    assert!(oc.path(".openclaw/state/openclaw.sqlite").exists(), "2026.6.1 creates state/openclaw.sqlite");
    let config: Value = serde_json::from_slice(&std::fs::read(oc.path(".openclaw/openclaw.json")).unwrap()).unwrap();
    assert_eq!(config["meta"]["lastTouchedVersion"], "2026.6.1");

    let access = oc.home.fresh_source();
    let expires = oc.source_expires_ms();
    let target = spec("openclaw-profiles", &oc.profiles_json());
    let ran = run(oc.cred_sync().args(["--to", &target]));
    assert_eq!(ran.code, Some(0), "not taken for the SQLite era: {}", ran.stderr);
    assert_eq!(held_token(&oc.profiles_json()), Some(access));
    let status = oc.models_status();
    assert_eq!(status.code, Some(0), "{}", status.summary());
    let profile = status.profile(PROFILE).unwrap_or_else(|| panic!("not listed: {}", status.summary()));
    assert_eq!(profile["type"], "token", "{}", status.summary());
    assert_eq!(profile["status"], "expiring", "{}", status.summary());
    assert_eq!(profile["expiresAt"], expires, "{}", status.summary());
    assert_eq!(status.anthropic_effective_kind(), Some("profiles"), "{}", status.summary());

    let ran = run(oc.cred_sync().args(["--share-refresh-token", "--to", &target]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let status = oc.models_status();
    let profile = status.profile(PROFILE).unwrap_or_else(|| panic!("not listed: {}", status.summary()));
    assert_eq!((&profile["type"], &profile["status"]), (&"oauth".into(), &"expiring".into()), "{}", status.summary());
    assert_eq!(profile["expiresAt"], expires, "{}", status.summary());
}

/// (c) JSON era: the legacy `credentials/oauth.json` alone is imported by 2026.6.1 on read, into
/// a new `auth-profiles.json` as `anthropic:default`, with the source's expiry.
#[test]
fn json_era_openclaw_2026_6_1_imports_the_legacy_oauth_file() {
    let oc = openclaw_home_or_skip!(Generation::Json);
    oc.home.fresh_source();
    let expires = oc.source_expires_ms();
    let oauth = oc.path(".openclaw/credentials/oauth.json");
    std::fs::create_dir_all(oauth.parent().unwrap()).unwrap();
    let ran = run(oc.cred_sync().args(["--to", &spec("openclaw-oauth", &oauth)]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let status = oc.models_status();
    assert_eq!(status.code, Some(0), "{}", status.summary());
    let profile = status.profile("anthropic:default").unwrap_or_else(|| panic!("not imported: {}", status.summary()));
    assert_eq!(profile["expiresAt"], expires, "{}", status.summary());
    assert_eq!(profile["status"], "expiring", "{}", status.summary());
    assert!(oc.profiles_json().exists(), "imported into auth-profiles.json");
}

/// (d) SQLite era: `ANTHROPIC_OAUTH_TOKEN` in `~/.openclaw/.env` is what 2026.9.6 uses when no
/// profile is stored.
#[test]
fn sqlite_era_openclaw_2026_9_6_uses_the_token_in_its_dotenv() {
    let oc = openclaw_home_or_skip!(Generation::Sqlite);
    let access = oc.home.fresh_source();
    let dotenv = oc.path(".openclaw/.env");
    let ran = run(oc.cred_sync().args(["--to", &spec("dotenv", &dotenv)]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(held_token(&dotenv), Some(access));
    let status = oc.models_status();
    assert_eq!(status.code, Some(0), "{}", status.summary());
    assert_eq!(status.anthropic_effective_kind(), Some("env"), "{}", status.summary());
    assert!(status.anthropic_profiles().is_empty(), "{}", status.summary());
}

/// (d) JSON era: a stored Anthropic profile beats `ANTHROPIC_OAUTH_TOKEN`, so the dotenv token
/// alone is not used; `clear-stale` removes the profile and 2026.6.1 then uses the env token.
#[test]
fn json_era_clear_stale_lets_openclaw_2026_6_1_use_the_dotenv_token() {
    let oc = openclaw_home_or_skip!(Generation::Json);
    // A stale copy of an older subscription token, still valid for two hours.
    oc.paste_token(&access_token(), PROFILE, "2h");
    oc.home.fresh_source();
    let dotenv = spec("dotenv", &oc.path(".openclaw/.env"));
    let ran = run(oc.cred_sync().args(["--to", &dotenv]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let before = oc.models_status();
    assert_eq!(before.code, Some(0), "{}", before.summary());
    assert_eq!(before.anthropic_effective_kind(), Some("profiles"), "the profile wins: {}", before.summary());
    assert!(before.profile(PROFILE).is_some(), "{}", before.summary());

    let glob = spec("clear-stale", &oc.path(".openclaw/agents/*/agent/auth-profiles.json"));
    let ran = run(oc.cred_sync().args(["--to", &glob, "--to", &dotenv]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stdout.contains(r#""removed":["anthropic:claude-code"]"#), "{}", ran.stdout);
    let after = oc.models_status();
    assert_eq!(after.code, Some(0), "{}", after.summary());
    assert_eq!(after.anthropic_effective_kind(), Some("env"), "the env token wins: {}", after.summary());
    assert!(after.anthropic_profiles().is_empty(), "{}", after.summary());
}

/// cred-sync refuses to paste a token 2026.9.6's `paste-token` would reject (79 characters) and
/// pastes one it accepts (80): our belief about OpenClaw's limit, judged by OpenClaw.
#[test]
fn the_paste_token_length_limit_is_openclaw_2026_9_6s() {
    let oc = openclaw_home_or_skip!(Generation::Sqlite);
    let source = |len: usize| {
        let token = access_token_of_len(len);
        write_source(
            &oc.home.source(),
            &claude_json(&token, &refresh_token(), now_ms() + 8 * HOUR_MS, "a"),
            WriteStyle::Rename,
        );
        token
    };
    let short = source(79);
    let refused = run(oc.cred_sync_with_openclaw().args(["--to", "openclaw-paste"]));
    assert_eq!(refused.code, Some(6), "{}", refused.stderr);
    assert!(refused.stderr.contains("80+ characters; this one has 79"), "{}", refused.stderr);
    let direct = run_limited(
        oc.openclaw(&["models", "auth", "paste-token", "--provider", "anthropic", "--profile-id", PROFILE]),
        Some(short.as_bytes()),
    );
    assert_eq!(direct.code, Some(1), "OpenClaw rejects it too: {}", direct.stderr);
    assert!(direct.stderr.contains("too short"), "{}", direct.stderr);

    source(80);
    let ran = run(oc.cred_sync_with_openclaw().args(["--to", "openclaw-paste"]));
    assert_eq!(ran.code, Some(0), "OpenClaw accepts 80: {}", ran.stderr);
}

/// Regression: `--expires-in` was the source's remaining time rounded down to minutes, but
/// OpenClaw counts it from its own start, seconds later — so when the remainder was under those
/// seconds, 2026.9.6 believed the token outlived the source's expiry. The source here expires 1.5 s
/// past a whole number of minutes from now, the worst case.
#[test]
fn regression_openclaw_believed_a_pasted_token_outlived_the_source() {
    let oc = openclaw_home_or_skip!(Generation::Sqlite);
    let expires = now_ms() + 8 * HOUR_MS + 1_500;
    write_source(&oc.home.source(), &claude_json(&access_token(), &refresh_token(), expires, "a"), WriteStyle::Rename);
    let ran = run(oc.cred_sync_with_openclaw().args(["--to", "openclaw-paste"]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let status = oc.models_status();
    let profile = status.profile(PROFILE).unwrap_or_else(|| panic!("not listed: {}", status.summary()));
    assert_pasted_expiry(profile, expires, &status);
}

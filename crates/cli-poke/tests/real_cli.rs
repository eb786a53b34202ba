//! cli-poke against the real Claude Code CLI.
//!
//! Three builds, installed by `scripts/install-claude-for-tests.sh DEST` as
//! `DEST/bin/claude-<version>`: 2.1.112 (cli.js on node, writes in place), 2.1.197 (native,
//! temp + rename, the logged-out stub) and 2.1.332 (native, three locks, `refreshTokenExpiresAt`,
//! `loginEnded`). Point the tests at them with `KEEPER_CLAUDE_DIR=DEST/bin`, or one by one with
//! `KEEPER_CLAUDE_2_1_112=…` and friends. Without them the tests skip loudly; with
//! `KEEPER_REQUIRE_CLAUDE=1` (CI) they fail.
//!
//! Every scenario runs in a network namespace of its own with only loopback up
//! (`keeper_anthropic_mock::isolate_network`), so nothing can leave the machine; the CLI reaches
//! `tests/anthropic-mock` (a TLS-terminating proxy with a rotating token endpoint) through
//! `HTTPS_PROXY`, trusting its throw-away CA through `NODE_EXTRA_CA_CERTS` / `SSL_CERT_FILE`.
//! The facts these tests pin are listed in docs/UPSTREAM.md ("Claude Code CLI").
//!
//! With `KEEPER_CLAUDE_MATRIX=FILE` each scenario appends one line `build<TAB>scenario<TAB>result`
//! to FILE; `cli-poke`'s README matrix is generated from it (docs/cli-poke.md, "Testing").

mod common;

use common::{BIN, HOUR, MINUTE, Webhook, has_token_shape, now_ms};
use keeper_anthropic_mock::{Mock, TokenEndpoint, fingerprint, isolate_network};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const REQUIRE_ENV: &str = "KEEPER_REQUIRE_CLAUDE";
const DIR_ENV: &str = "KEEPER_CLAUDE_DIR";
const VERSIONS: [&str; 3] = ["2.1.112", "2.1.197", "2.1.332"];

/// One installed CLI build.
#[derive(Debug, Clone)]
struct Build {
    version: &'static str,
    program: PathBuf,
}

impl Build {
    /// Whether this build writes the logged-out stub on a dead refresh token (2.1.197 and later).
    fn writes_stub(&self) -> bool {
        self.version != "2.1.112"
    }
}

fn env_var(version: &str) -> String {
    format!("KEEPER_CLAUDE_{}", version.replace('.', "_"))
}

/// The installed builds, or an empty list after a loud banner (a panic when
/// `KEEPER_REQUIRE_CLAUDE=1`).
fn builds() -> Vec<Build> {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let dir = std::env::var_os(DIR_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for version in VERSIONS {
        let var = env_var(version);
        let program = std::env::var_os(&var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| dir.as_ref().map(|d| d.join(format!("claude-{version}"))));
        match program {
            Some(p) => {
                assert!(p.is_file(), "{test}: {} does not exist (from {var} or {DIR_ENV})", p.display());
                found.push(Build { version, program: p });
            }
            None => missing.push(var),
        }
    }
    let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| v.trim() == "1");
    if !missing.is_empty() {
        let reason = format!(
            "{} not set (scripts/install-claude-for-tests.sh DEST, then {DIR_ENV}=DEST/bin)",
            missing.join(", ")
        );
        assert!(!required, "{test}: {reason} ({REQUIRE_ENV}=1 makes this a failure)");
        let bar = "!".repeat(100);
        let banner = format!(
            "\n{bar}\n!!! SKIPPED {test} for the missing builds: {reason}\n!!! Those runs did NOT happen. Set {REQUIRE_ENV}=1 to make this a failure (CI does).\n{bar}\n"
        );
        // Straight to the stderr handle: libtest captures only the print macros.
        let _ = std::io::stderr().lock().write_all(banner.as_bytes());
    }
    if !nix::unistd::geteuid().is_root() {
        let reason = "a private network namespace needs root";
        assert!(!required, "{test}: {reason} ({REQUIRE_ENV}=1 makes this a failure)");
        let _ = writeln!(std::io::stderr().lock(), "\n!!! SKIPPED {test}: {reason}; the test did NOT run\n");
        return Vec::new();
    }
    found
}

/// Runs `scenario` once per installed build, each on a thread of its own in a network namespace
/// of its own (the mock is started there, so the CLI it spawns can reach it and nothing else).
/// Prints how long each took; records the results for the README matrix.
fn for_each_build(name: &'static str, scenario: fn(&World) -> String) {
    for build in builds() {
        let version = build.version;
        let start = Instant::now();
        let joined = std::thread::Builder::new()
            .name(format!("{name}-{version}"))
            .spawn(move || {
                isolate_network().unwrap();
                let world = World::new(build);
                scenario(&world)
            })
            .unwrap()
            .join();
        let secs = start.elapsed().as_secs_f64();
        let result = match &joined {
            Ok(r) => r.clone(),
            Err(_) => "FAILED".to_owned(),
        };
        let _ = writeln!(std::io::stderr().lock(), "real_cli: {name} on {version}: {result} ({secs:.1}s)");
        record_matrix(version, name, &result);
        if let Err(panic) = joined {
            std::panic::resume_unwind(panic);
        }
    }
}

/// The scenarios in the order the README matrix lists them.
const SCENARIOS: [&str; 6] =
    ["not due", "in the window", "--force", "dead token", "token endpoint 500", "endpoint blackholed"];

/// Appends `build<TAB>scenario<TAB>result` to `$KEEPER_CLAUDE_MATRIX` and renders every line so
/// far as a Markdown table into `$KEEPER_CLAUDE_MATRIX.md` (the README matrix: generated, never
/// typed). The last scenario to finish writes the complete table.
fn record_matrix(version: &str, scenario: &str, result: &str) {
    static RENDER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let Some(path) = std::env::var_os("KEEPER_CLAUDE_MATRIX").filter(|v| !v.is_empty()).map(PathBuf::from) else {
        return;
    };
    let _one_at_a_time = RENDER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
    f.write_all(format!("{version}\t{scenario}\t{result}\n").as_bytes()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let rows: Vec<(&str, &str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, '\t');
            Some((it.next()?, it.next()?, it.next()?))
        })
        .collect();
    let mut md = format!("| scenario | {} |\n|---|{}\n", VERSIONS.join(" | "), "---|".repeat(VERSIONS.len()));
    for sc in SCENARIOS {
        let cells: Vec<&str> = VERSIONS
            .iter()
            .map(|v| rows.iter().rev().find(|(rv, rs, _)| rv == v && *rs == sc).map_or("not run", |r| r.2))
            .collect();
        let _ = writeln!(md, "| {sc} | {} |", cells.join(" | "));
    }
    let mut out = path.into_os_string();
    out.push(".md");
    std::fs::write(out, md).unwrap();
}

/// What one cli-poke run did.
#[derive(Debug)]
struct Out {
    code: i32,
    stderr: String,
    took: Duration,
}

/// A home with the CLI's credentials, an OpenClaw directory for the flag, and the mock.
struct World {
    dir: tempfile::TempDir,
    home: PathBuf,
    claude_dir: PathBuf,
    creds: PathBuf,
    flag: PathBuf,
    mock: Mock,
    build: Build,
}

impl World {
    fn new(build: Build) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let claude_dir = home.join(".claude");
        std::fs::create_dir_all(&claude_dir).unwrap();
        std::fs::create_dir_all(home.join(".openclaw")).unwrap();
        let mock = Mock::start(dir.path()).unwrap();
        Self {
            creds: claude_dir.join(".credentials.json"),
            flag: home.join(".openclaw/REAUTH_NEEDED"),
            home,
            claude_dir,
            mock,
            build,
            dir,
        }
    }

    /// Writes a credentials file as the CLI would, expiring at `expires_ms`, with other keys the
    /// CLI and cli-poke must keep; the refresh token is live at the mock. Returns (access, refresh).
    fn write_creds(&self, expires_ms: i64) -> (String, String) {
        let (access, refresh) = (common::access_token(), common::refresh_token());
        let doc = json!({
            "claudeAiOauth": {
                "accessToken": access,
                "refreshToken": refresh,
                "expiresAt": expires_ms,
                "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
                "subscriptionType": "max",
                "rateLimitTier": "default_claude_max_20x"
            },
            "mcpOAuth": {"srv|1": {"accessToken": "mcp-opaque", "expiresAt": 1}},
            "trustedDeviceToken": "opaque-device"
        });
        std::fs::write(&self.creds, doc.to_string()).unwrap();
        std::fs::set_permissions(&self.creds, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        self.mock.add_refresh_token(&refresh);
        (access, refresh)
    }

    fn creds_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(&self.creds).unwrap()).unwrap()
    }

    /// (access, refresh, expiresAt) now in the file.
    fn current(&self) -> (String, String, i64) {
        let v = self.creds_json();
        let o = &v["claudeAiOauth"];
        (
            o["accessToken"].as_str().unwrap_or_default().to_owned(),
            o["refreshToken"].as_str().unwrap_or_default().to_owned(),
            o["expiresAt"].as_i64().unwrap_or_default(),
        )
    }

    /// cli-poke on this home with the real CLI, pointed at the mock; nothing of the caller's
    /// KEEPER_/CLAUDE_/ANTHROPIC_ variables.
    fn cli_poke(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if ["KEEPER_", "CLAUDE_", "ANTHROPIC_"].iter().any(|p| k.starts_with(p)) || k == "JOURNAL_STREAM" {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("KEEPER_CONFIG", "/dev/null")
            .env("HOME", &self.home)
            .env("KEEPER_STATE_DIR", self.dir.path().join("state"))
            // No CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: 2.1.112 then writes no error lines to
            // its debug log, where cli-poke reads the token endpoint's answer.
            .arg("--cli")
            .arg(&self.build.program);
        self.mock.apply_env(&mut cmd);
        cmd
    }

    /// Runs it and checks that no token (issued or written) appears in what it printed.
    fn run(&self, cmd: &mut Command) -> Out {
        let start = Instant::now();
        let out = cmd.output().unwrap();
        let took = start.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
        assert!(!has_token_shape(&all), "{}: something token-shaped in cli-poke's output:\n{all}", self.build.version);
        for issued in self.mock.issued() {
            assert!(!all.contains(&issued.access));
        }
        Out { code: out.status.code().expect("exited normally"), stderr, took }
    }

    fn token_requests(&self) -> Vec<keeper_anthropic_mock::Request> {
        self.mock
            .requests()
            .into_iter()
            .filter(|r| matches!(r.kind, keeper_anthropic_mock::RequestKind::OAuthToken { .. }))
            .collect()
    }

    /// No lock of the CLI's is left behind.
    fn assert_no_lock_left(&self) {
        for p in lock_paths(self) {
            assert!(!p.exists(), "{}: {} was left behind", self.build.version, p.display());
        }
    }

    fn v(&self) -> &'static str {
        self.build.version
    }
}

/// Every lock the builds take (docs/UPSTREAM.md, "Claude Code CLI").
fn lock_paths(w: &World) -> [PathBuf; 4] {
    [
        w.home.join(".claude.lock"),
        w.claude_dir.join(".oauth_refresh.lock"),
        w.claude_dir.join(".oauth_refresh.lock.owner"),
        w.claude_dir.join(".storage-write.lock"),
    ]
}

fn not_due(w: &World) -> String {
    let (access, _) = w.write_creds(now_ms() + 3 * HOUR);
    let out = w.run(&mut w.cli_poke());
    assert_eq!(out.code, 1, "{}: {}", w.v(), out.stderr);
    assert!(out.stderr.contains("not due"), "{}", out.stderr);
    assert!(w.mock.requests().is_empty(), "{}: the CLI was started", w.v());
    assert_eq!(w.current().0, access);
    format!("not due, CLI not started (exit 1, {:.1}s)", out.took.as_secs_f64())
}

#[test]
fn not_due_the_real_cli_is_not_started() {
    for_each_build("not due", not_due);
}

fn in_the_window(w: &World) -> String {
    let (access, refresh) = w.write_creds(now_ms() + 2 * MINUTE);
    let out = w.run(w.cli_poke().arg("--not-due-ok"));
    assert_eq!(out.code, 0, "{}: {}", w.v(), out.stderr);
    let (a, r, e) = w.current();
    assert_ne!(a, access);
    assert_ne!(r, refresh);
    let issued = w.mock.issued();
    assert_eq!(issued.len(), 1, "{}", w.v());
    assert_eq!((issued[0].access.as_str(), issued[0].refresh.as_deref()), (a.as_str(), Some(r.as_str())));
    assert!(e > now_ms() + 7 * HOUR, "{}", w.v());
    let doc = w.creds_json();
    assert_eq!(doc["trustedDeviceToken"], "opaque-device", "{}: other keys kept", w.v());
    assert_eq!(doc["mcpOAuth"]["srv|1"]["accessToken"], "mcp-opaque", "{}: other keys kept", w.v());
    assert_eq!(doc["claudeAiOauth"]["subscriptionType"], "max", "{}", w.v());
    assert_eq!(w.token_requests().len(), 1, "{}", w.v());
    assert!(!w.flag.exists());
    w.assert_no_lock_left();
    format!("refreshed (exit 0, {:.1}s)", out.took.as_secs_f64())
}

#[test]
fn in_the_window_the_real_cli_refreshes() {
    for_each_build("in the window", in_the_window);
}

fn force(w: &World) -> String {
    let (access, _) = w.write_creds(now_ms() + 5 * HOUR);
    let out = w.run(w.cli_poke().arg("--force"));
    assert_eq!(out.code, 0, "{}: {}", w.v(), out.stderr);
    assert_ne!(w.current().0, access);
    assert_eq!(w.token_requests().len(), 1, "{}: exactly one token request", w.v());
    w.assert_no_lock_left();
    format!("refreshed, 1 token request, no lock left (exit 0, {:.1}s)", out.took.as_secs_f64())
}

#[test]
fn force_the_real_cli_refreshes_once_and_leaves_no_lock() {
    for_each_build("--force", force);
}

fn dead(w: &World) -> String {
    let hook = Webhook::start();
    let (access, refresh) = w.write_creds(now_ms() - MINUTE);
    w.mock.reject_fingerprint(&fingerprint(&access));
    w.mock.set_token_endpoint(TokenEndpoint::InvalidGrant);
    let out = w.run(w.cli_poke().args(["--notify-url", &hook.url]));
    assert_eq!(out.code, 3, "{}: {}", w.v(), out.stderr);
    let flag = std::fs::read_to_string(&w.flag).unwrap();
    assert!(flag.contains(&format!("refresh_token={}", credmap::Secret::new(&refresh))), "{flag}");
    let stub = w.current();
    if w.build.writes_stub() {
        assert_eq!((stub.0.as_str(), stub.2), ("", 0), "{}: the stub", w.v());
        // cred-sync never copies the stub into OpenClaw's copy.
        let env = w.dir.path().join("openclaw.env");
        std::fs::write(&env, "ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-previous\n").unwrap();
        let sync = Command::new(common::cred_sync())
            .env("HOME", &w.home)
            .env("KEEPER_CONFIG", "/dev/null")
            .env("KEEPER_STATE_DIR", w.dir.path().join("state"))
            .arg("--from")
            .arg(&w.creds)
            .arg("--to")
            .arg(format!("dotenv:{}", env.display()))
            .output()
            .unwrap();
        assert_eq!(sync.status.code(), Some(3), "{}", String::from_utf8_lossy(&sync.stderr));
        assert_eq!(std::fs::read_to_string(&env).unwrap(), "ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-previous\n");
    } else {
        assert_eq!(stub.0, access, "{}: 2.1.112 leaves the file alone", w.v());
        assert!(flag.contains("debug log shows the token endpoint answered HTTP 400"), "{flag}");
    }
    // The same episode: nobody is told twice.
    let again = w.run(w.cli_poke().args(["--notify-url", &hook.url]));
    assert_eq!(again.code, 3, "{}: {}", w.v(), again.stderr);
    assert_eq!(hook.received().len(), 1, "{}: one post per episode", w.v());
    w.assert_no_lock_left();
    let what = if w.build.writes_stub() { "stub written, not propagated" } else { "file untouched, debug log 400" };
    format!("REAUTH, {what}, 1 post (exit 3, {:.1}s)", out.took.as_secs_f64())
}

#[test]
fn dead_token_is_reauth_with_one_post_per_episode() {
    for_each_build("dead token", dead);
}

fn server_error(w: &World) -> String {
    let hook = Webhook::start();
    let (access, refresh) = w.write_creds(now_ms() - MINUTE);
    let before = std::fs::read(&w.creds).unwrap();
    w.mock.reject_fingerprint(&fingerprint(&access));
    w.mock.set_token_endpoint(TokenEndpoint::ServerError);
    let out = w.run(w.cli_poke().args(["--notify-url", &hook.url]));
    assert_eq!(out.code, 7, "{}: {}", w.v(), out.stderr);
    assert!(!w.flag.exists(), "{}: no REAUTH for a 500", w.v());
    assert_eq!(std::fs::read(&w.creds).unwrap(), before, "{}: the file is untouched", w.v());
    assert!(hook.received().is_empty());
    // The endpoint is back: the same refresh token refreshes.
    w.mock.set_token_endpoint(TokenEndpoint::default());
    let next = w.run(w.cli_poke().args(["--notify-url", &hook.url]));
    assert_eq!(next.code, 0, "{}: {}", w.v(), next.stderr);
    let (a, r, _) = w.current();
    assert!(a != access && r != refresh);
    assert!(next.stderr.contains("recovered"), "{}", next.stderr);
    w.assert_no_lock_left();
    format!("refresh failed, will retry (exit 7, {:.1}s); next run refreshed", out.took.as_secs_f64())
}

#[test]
fn regression_a_token_endpoint_500_was_taken_for_a_dead_login() {
    for_each_build("token endpoint 500", server_error);
}

fn blackhole(w: &World) -> String {
    let (access, _) = w.write_creds(now_ms() - MINUTE);
    let before = std::fs::read(&w.creds).unwrap();
    w.mock.reject_fingerprint(&fingerprint(&access));
    w.mock.set_token_endpoint(TokenEndpoint::Blackhole);
    // The builds wait 15 s (2.1.112) or 30 s per token request; a shorter limit keeps the test
    // short and is what a hung endpoint looks like to cli-poke with the default 120 s too.
    let out = w.run(w.cli_poke().args(["--timeout", "20s"]));
    assert_eq!(out.code, 7, "{}: {}", w.v(), out.stderr);
    assert!(out.stderr.contains("did not finish within 20s"), "{}", out.stderr);
    assert!(!w.flag.exists(), "{}: no REAUTH for an endpoint that does not answer", w.v());
    assert_eq!(std::fs::read(&w.creds).unwrap(), before, "{}: the file is untouched", w.v());
    let left: Vec<String> = lock_paths(w)
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // The network is back: the next run refreshes, whatever locks the killed CLI left behind.
    w.mock.set_token_endpoint(TokenEndpoint::default());
    let next = w.run(&mut w.cli_poke());
    assert_eq!(next.code, 0, "{}: {}", w.v(), next.stderr);
    w.assert_no_lock_left();
    format!(
        "refresh failed, will retry (exit 7 at --timeout, {:.1}s); next run refreshed ({:.1}s; the killed CLI left {})",
        out.took.as_secs_f64(),
        next.took.as_secs_f64(),
        if left.is_empty() { "no lock".to_owned() } else { left.join(", ") }
    )
}

#[test]
fn regression_a_blackholed_token_endpoint_was_taken_for_a_dead_login() {
    for_each_build("endpoint blackholed", blackhole);
}

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
use keeper_anthropic_mock::{TokenEndpoint, fingerprint, isolate_network};
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
const SCENARIOS: [&str; 9] = [
    "not due",
    "in the window",
    "--force",
    "dead token",
    "token endpoint 500",
    "endpoint blackholed",
    "--force while the CLI refreshes",
    "login's end",
    "cred-sync --watch during --force",
];

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
    base: common::MockHome,
    build: Build,
}

impl std::ops::Deref for World {
    type Target = common::MockHome;
    fn deref(&self) -> &common::MockHome {
        &self.base
    }
}

impl World {
    fn new(build: Build) -> Self {
        Self { base: common::MockHome::new(), build }
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

/// The real CLI, started by hand as a user's session would be: `claude -p 'say ok'` on this home,
/// pointed at the mock, with one retry.
fn spawn_cli(w: &World) -> std::process::Child {
    let mut cmd = Command::new(&w.build.program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if ["KEEPER_", "CLAUDE_", "ANTHROPIC_"].iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(&*k);
        }
    }
    cmd.env("HOME", &w.home)
        .env("CLAUDE_CODE_MAX_RETRIES", "1")
        .args(["-p", "say ok"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    w.mock.apply_env(&mut cmd);
    cmd.spawn().unwrap()
}

/// Waits until the CLI holds its refresh lock: `.oauth_refresh.lock` with its owner record
/// (2.1.332), else `~/.claude.lock`.
fn wait_for_refresh_lock(w: &World) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let owner = w.claude_dir.join(".oauth_refresh.lock.owner");
    let legacy = w.home.join(".claude.lock");
    loop {
        if let Ok(record) = std::fs::read_to_string(&owner) {
            if !record.is_empty() {
                return Some(record);
            }
        }
        if w.build.version != "2.1.332" && legacy.exists() {
            return None;
        }
        assert!(Instant::now() < deadline, "{}: the CLI never took its refresh lock", w.v());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn force_during_refresh(w: &World) -> String {
    let (access, refresh) = w.write_creds(now_ms() + 2 * MINUTE);
    w.mock.set_token_endpoint(TokenEndpoint::Blackhole);
    let mut cli = spawn_cli(w);
    let record = wait_for_refresh_lock(w);
    let before = std::fs::read(&w.creds).unwrap();

    // 1. A live CLI is refreshing: --force waits for its locks as the CLI would (5 more tries,
    //    1-2 s apart), breaks none of them, writes nothing, and gives up with exit 4. (Its window
    //    is made 1 minute, so that with 2 minutes left it forces rather than just pokes.)
    let out = w.run(w.cli_poke().args(["--force", "--refresh-window", "1m"]));
    assert_eq!(out.code, 4, "{}: {}", w.v(), out.stderr);
    assert!(out.stderr.contains("waiting for the CLI's lock"), "{}", out.stderr);
    assert!(out.stderr.contains("is held by a live process"), "{}", out.stderr);
    assert!((5..=20).contains(&out.took.as_secs()), "{}: gave up after {:?}", w.v(), out.took);
    assert_eq!(std::fs::read(&w.creds).unwrap(), before, "{}: nothing written under a live lock", w.v());
    if let Some(record) = &record {
        assert!(out.stderr.contains(&format!("pid {}, alive", cli.id())), "{}", out.stderr);
        let now = std::fs::read_to_string(w.claude_dir.join(".oauth_refresh.lock.owner")).unwrap();
        assert_eq!(&now, record, "{}: the live holder's owner record is untouched", w.v());
        assert!(w.claude_dir.join(".oauth_refresh.lock").is_dir());
        // Our own record has the CLI's shape (the same keys), so the CLI can judge ours.
        let theirs: Value = serde_json::from_str(record).unwrap();
        let keys: Vec<&String> = theirs.as_object().unwrap().keys().collect();
        for k in ["pid", "procStart", "pidDomain", "pidSpace", "lockBirthtimeMs"] {
            assert!(keys.iter().any(|t| *t == k), "{}: the CLI's record has no {k}: {record}", w.v());
        }
    }
    assert!(w.home.join(".claude.lock").is_dir(), "{}: the CLI's legacy lock is untouched", w.v());

    // 2. The endpoint answers again. A CLI whose token has not expired yet does not retry a
    //    timed-out refresh (it answers with the old token), so its next run refreshes: the CLI's
    //    change, both tokens rotated.
    w.mock.set_token_endpoint(TokenEndpoint::default());
    let wait = |cli: &mut std::process::Child| {
        let deadline = Instant::now() + Duration::from_secs(150);
        while cli.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{}: the CLI never finished", w.v());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait(&mut cli);
    if w.mock.issued().is_empty() {
        wait(&mut spawn_cli(w));
    }
    let issued = w.mock.issued();
    assert_eq!(issued.len(), 1, "{}: the CLI refreshed once", w.v());
    let (a1, r1, _) = w.current();
    assert!(a1 == issued[0].access && a1 != access && r1 != refresh, "{}: the CLI's refresh is on disk", w.v());

    // 3. Now --force takes the locks, re-reads the CLI's write under them and forces from it: the
    //    CLI refreshes with its own rotated refresh token (no reuse), every other key kept.
    let out2 = w.run(w.cli_poke().arg("--force"));
    assert_eq!(out2.code, 0, "{}: {}", w.v(), out2.stderr);
    let issued = w.mock.issued();
    assert_eq!(issued.len(), 2, "{}", w.v());
    assert_eq!(w.mock.refresh_reuses(), 0, "{}: the forced write lost the CLI's rotation", w.v());
    assert_eq!(w.current().0, issued[1].access);
    let doc = w.creds_json();
    assert_eq!(doc["mcpOAuth"]["srv|1"]["accessToken"], "mcp-opaque", "{}", w.v());
    assert_eq!(doc["trustedDeviceToken"], "opaque-device", "{}", w.v());
    w.assert_no_lock_left();

    // 4. (2.1.332) A CLI killed while it holds the locks leaves them and its owner record: a
    //    waiting --force takes them over at its next try, from the record's dead pid, not after
    //    the 60 s stale time.
    let mut killed = String::new();
    if record.is_some() {
        let _ = w.write_creds(now_ms() + 2 * MINUTE);
        w.mock.set_token_endpoint(TokenEndpoint::Blackhole);
        let mut cli = spawn_cli(w);
        wait_for_refresh_lock(w);
        let mut force = w.cli_poke();
        force.args(["--force", "--refresh-window", "1m"]);
        force.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let start = Instant::now();
        let child = force.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(700));
        w.mock.set_token_endpoint(TokenEndpoint::default());
        cli.kill().unwrap();
        cli.wait().unwrap();
        let out3 = child.wait_with_output().unwrap();
        let took = start.elapsed();
        let stderr = String::from_utf8_lossy(&out3.stderr).into_owned();
        assert!(!has_token_shape(&stderr), "{stderr}");
        assert_eq!(out3.status.code(), Some(0), "{}: {stderr}", w.v());
        assert!(stderr.contains("waiting for the CLI's lock"), "{stderr}");
        assert!(stderr.contains("owner record names pid"), "{stderr}");
        assert!(took < Duration::from_secs(30), "{}: took over only after {took:?}", w.v());
        w.assert_no_lock_left();
        killed = format!("; a killed CLI's locks taken over from its owner record ({:.1}s)", took.as_secs_f64());
    }
    format!(
        "no lock broken, gave up (exit 4, {:.1}s); after the CLI's refresh --force kept it, 0 reuses (exit 0){killed}",
        out.took.as_secs_f64()
    )
}

/// `--force` held only `~/.claude.lock`; CLI 2.1.332 takes `.oauth_refresh.lock` first and
/// `.storage-write.lock` around every write, so a forced write could land in the middle of the
/// CLI's own and one of the two changes was lost.
#[test]
fn regression_force_held_only_the_legacy_lock_and_raced_the_cli() {
    for_each_build("--force while the CLI refreshes", force_during_refresh);
}

fn login_end(w: &World) -> String {
    let hook = Webhook::start();
    let (access, _) = w.write_creds(now_ms() + 2 * MINUTE);
    // As a sign-in 28 days ago left it: the CLI adds the field only at sign-in; a refresh keeps
    // the earlier of the file's date and the answer's.
    let signed_in_end = now_ms() + 2 * 24 * HOUR * 15;
    let mut doc = w.creds_json();
    doc["claudeAiOauth"]["refreshTokenExpiresAt"] = json!(signed_in_end);
    std::fs::write(&w.creds, doc.to_string()).unwrap();
    let two_days = 2 * 24 * 3600;
    w.mock.set_token_endpoint(TokenEndpoint::Rotate {
        expires_in: 28_800,
        refresh_token_expires_in: Some(two_days),
        include_refresh_token: true,
    });
    let out = w.run(w.cli_poke().args(["--notify-url", &hook.url]));
    assert_eq!(out.code, 0, "{}: {}", w.v(), out.stderr);
    assert_ne!(w.current().0, access);
    let end = w.creds_json()["claudeAiOauth"]["refreshTokenExpiresAt"].as_i64();
    let records = w.build.version == "2.1.332";
    // The next runs (not due) read the CLI's record of the login's end.
    let next = w.run(w.cli_poke().args(["--notify-url", &hook.url]));
    assert_eq!(next.code, 1, "{}: {}", w.v(), next.stderr);
    let again = w.run(w.cli_poke().args(["--notify-url", &hook.url]));
    let te = Command::new(common::token_expiry())
        .env("KEEPER_CONFIG", "/dev/null")
        .args(["--login-within", "3d"])
        .arg(&w.creds)
        .output()
        .unwrap();
    let te_text = String::from_utf8_lossy(&te.stdout).into_owned();
    if records {
        let end = end.unwrap_or_else(|| panic!("{}: no refreshTokenExpiresAt written", w.v()));
        let want = now_ms() + i64::try_from(two_days).unwrap() * 1000;
        assert!((want - 5 * MINUTE..=want).contains(&end), "{}: refreshTokenExpiresAt {end}, want ~{want}", w.v());
        assert!(next.stderr.contains("warning: the Claude login ends"), "{}", next.stderr);
        assert!(again.stderr.contains("warning: the Claude login ends"), "{}", again.stderr);
        let posts = hook.received();
        assert_eq!(posts.len(), 1, "{}: one post a day", w.v());
        assert!(posts[0].contains("claude auth login") && posts[0].contains("claude setup-token"), "{}", posts[0]);
        assert_eq!(te.status.code(), Some(6), "{te_text}");
        assert!(te_text.contains("login-ending") && te_text.contains("login ends "), "{te_text}");
        format!(
            "refreshTokenExpiresAt moved to the earlier date (the answer's); warned, 1 post; token-expiry --login-within exit 6 ({:.1}s)",
            out.took.as_secs_f64()
        )
    } else {
        assert!(end.is_none_or(|e| e == signed_in_end), "{}: this build does not move the login's end", w.v());
        assert!(!next.stderr.contains("login ends") && hook.received().is_empty(), "{}", next.stderr);
        assert_eq!(te.status.code(), Some(0), "{te_text}");
        let kept = if end.is_some() { "kept as it was" } else { "dropped" };
        format!("refreshTokenExpiresAt {kept} (before 2.1.203): no warning ({:.1}s)", out.took.as_secs_f64())
    }
}

/// The login's hard end (`refreshTokenExpiresAt`: set at sign-in, and on a refresh the earlier of
/// it and the token answer's `refresh_token_expires_in`) was read by nothing: the keeper learnt of
/// it when the login died.
#[test]
fn regression_the_real_clis_login_end_was_not_warned_about() {
    for_each_build("login's end", login_end);
}

/// A `cli-poke --force` killed while it holds the CLI's locks (SIGKILL: no clean-up) leaves them
/// with its owner record. Unless the CLI accepts that record (its shape, `pidDomain`, `pidSpace`,
/// the locks' birth times), it cannot tell the holder is dead and is locked out until the locks go
/// stale (60 s), answering with the old token meanwhile.
#[test]
fn regression_a_killed_force_locked_the_cli_out_until_its_locks_went_stale() {
    for build in builds().into_iter().filter(|b| b.version == "2.1.332") {
        std::thread::spawn(move || {
            isolate_network().unwrap();
            let w = World::new(build);
            let (access, _) = w.write_creds(now_ms() + 2 * MINUTE);
            // A write of the CLI's in progress holds the last lock, `.storage-write.lock`: cli-poke
            // takes the two refresh locks and its owner record, then waits for it, holding them,
            // until it is killed. (The lock is left behind, as a killed writer leaves it.)
            std::fs::create_dir(w.claude_dir.join(".storage-write.lock")).unwrap();
            let mut poke = w.cli_poke();
            poke.args(["--force", "--refresh-window", "1m"]).stdout(std::process::Stdio::null());
            poke.stderr(std::process::Stdio::null());
            let mut child = poke.spawn().unwrap();
            let owner = w.claude_dir.join(".oauth_refresh.lock.owner");
            let deadline = Instant::now() + Duration::from_secs(20);
            let record = loop {
                if let Ok(r) = std::fs::read_to_string(&owner) {
                    if r.contains(&format!("\"pid\":{}", child.id())) {
                        break r;
                    }
                }
                assert!(Instant::now() < deadline, "cli-poke never took the locks");
                std::thread::sleep(Duration::from_millis(20));
            };
            std::thread::sleep(Duration::from_millis(200));
            assert!(w.claude_dir.join(".storage-write.lock").is_dir() && w.home.join(".claude.lock").is_dir());
            child.kill().unwrap();
            child.wait().unwrap();
            // The CLI's turn: in its window, it must take the dead holder's locks and refresh.
            // (.storage-write.lock has no owner record; it goes stale after 15 s.)
            let start = Instant::now();
            let mut cli = spawn_cli(&w);
            let deadline = Instant::now() + Duration::from_secs(120);
            while cli.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "the CLI never finished");
                std::thread::sleep(Duration::from_millis(100));
            }
            let took = start.elapsed();
            let issued = w.mock.issued();
            assert_eq!(issued.len(), 1, "the CLI did not refresh past our dead holder's locks: {record}");
            // The refresh locks went by the record (the 60 s stale time would take longer); the
            // storage lock by its 15 s stale time.
            assert!(took < Duration::from_secs(45), "took {took:?}: the CLI waited for the stale time");
            assert!(w.current().0 != access && w.current().0 == issued[0].access);
            w.assert_no_lock_left();
            let _ = writeln!(
                std::io::stderr().lock(),
                "real_cli: 2.1.332 took over a killed cli-poke's locks from its owner record and refreshed in {:.1}s",
                took.as_secs_f64()
            );
        })
        .join()
        .unwrap();
    }
}

/// Every version of each target a watcher saw while the real CLI refreshed: read at every
/// inotify event on the targets' directories (`MODIFY` too, so an in-place write caught half-way
/// would be read half-way), kept in memory only (never printed: they hold tokens).
struct TargetObserver {
    stop: PathBuf,
    thread: Option<std::thread::JoinHandle<Versions>>,
}

/// Each version read: (target, its bytes).
type Versions = Vec<(PathBuf, Vec<u8>)>;

impl TargetObserver {
    /// Watches the directories of `targets` (each file's name); `stop` is a file in the first
    /// directory whose creation ends the observation.
    fn start(targets: &[PathBuf]) -> Self {
        use inotify::{Inotify, WatchMask};
        let mut inotify = Inotify::init().unwrap();
        let mut dirs = Vec::new();
        for t in targets {
            let dir = t.parent().unwrap().to_path_buf();
            let wd = inotify
                .watches()
                .add(&dir, WatchMask::MODIFY | WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO | WatchMask::CREATE)
                .unwrap();
            dirs.push((wd, dir));
        }
        let stop = targets[0].parent().unwrap().join(".observer-stop");
        let (targets, stop_name) = (targets.to_vec(), stop.file_name().unwrap().to_owned());
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buffer = [0u8; 16 * 1024];
            'outer: loop {
                let events: Vec<(inotify::WatchDescriptor, std::ffi::OsString)> = inotify
                    .read_events_blocking(&mut buffer)
                    .unwrap()
                    .filter_map(|e| Some((e.wd.clone(), e.name?.to_owned())))
                    .collect();
                for (wd, name) in events {
                    if name == stop_name {
                        break 'outer;
                    }
                    let Some((_, dir)) = dirs.iter().find(|(d, _)| *d == wd) else { continue };
                    let path = dir.join(&name);
                    if targets.contains(&path) {
                        // A rename may have replaced it meanwhile: the read is of one version.
                        if let Ok(bytes) = std::fs::read(&path) {
                            seen.push((path, bytes));
                        }
                    }
                }
            }
            seen
        });
        Self { stop, thread: Some(thread) }
    }

    /// Ends the observation; every version read, in order.
    fn finish(mut self) -> Versions {
        std::fs::write(&self.stop, "").unwrap();
        let seen = self.thread.take().unwrap().join().unwrap();
        let _ = std::fs::remove_file(&self.stop);
        seen
    }
}

/// Every token-shaped string in `v`.
fn token_shaped<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) if s.starts_with("sk-ant-") => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| token_shaped(x, out)),
        Value::Object(o) => o.values().for_each(|x| token_shaped(x, out)),
        _ => {}
    }
}

/// The access token one version of a target holds, judged whole: a `.env` must be complete
/// lines with exactly one `ANTHROPIC_OAUTH_TOKEN=` line and the other lines as written; an
/// `auth-profiles.json` must parse and hold exactly one token-shaped string, in the profile.
/// Err says what is wrong, never with the token.
fn target_token(path: &std::path::Path, bytes: &[u8], env_other: &str) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    if path.extension().is_some_and(|e| e == "json") {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not complete JSON ({e})"))?;
        let mut strings = Vec::new();
        token_shaped(&doc, &mut strings);
        let profile = &doc["profiles"]["anthropic:claude-code"];
        let token = profile["token"].as_str().ok_or("no anthropic:claude-code token profile")?;
        if strings.len() != 1 || profile["type"] != "token" {
            return Err(format!("{} token-shaped strings, profile type {}", strings.len(), profile["type"]));
        }
        Ok(token.to_owned())
    } else {
        if !text.ends_with('\n') {
            return Err("the last line is incomplete".into());
        }
        let tokens: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("ANTHROPIC_OAUTH_TOKEN=")).collect();
        let others: Vec<&str> = text.lines().filter(|l| !l.starts_with("ANTHROPIC_OAUTH_TOKEN=")).collect();
        if tokens.len() != 1 || others.join("\n") != env_other.trim_end() {
            return Err(format!(
                "{} token lines; other lines kept: {}",
                tokens.len(),
                others.join("\n") == env_other.trim_end()
            ));
        }
        Ok(tokens[0].to_owned())
    }
}

/// `cred-sync --watch` from the CLI's file into `env` (dotenv) and `profiles`, stderr to `log`,
/// stdout beside it (`cred-sync.out`); none of the caller's KEEPER_/CLAUDE_/OpenClaw variables.
fn spawn_watcher(
    w: &World,
    env: &std::path::Path,
    profiles: &std::path::Path,
    log: &std::path::Path,
) -> std::process::Child {
    let mut watch = Command::new(common::cred_sync());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if ["KEEPER_", "CLAUDE_", "ANTHROPIC_", "OPENCLAW_"].iter().any(|p| k.starts_with(p)) {
            watch.env_remove(&*k);
        }
    }
    watch
        .env("HOME", &w.home)
        .env("PATH", "/usr/bin:/bin")
        .env("KEEPER_CONFIG", "/dev/null")
        .env("KEEPER_STATE_DIR", w.dir.path().join("state"))
        .arg("--from")
        .arg(&w.creds)
        .arg("--to")
        .arg(format!("dotenv:{}", env.display()))
        .arg("--to")
        .arg(format!("openclaw-profiles:{}", profiles.display()))
        .arg("--watch")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(w.dir.path().join("cred-sync.out")).unwrap())
        .stderr(std::fs::File::create(log).unwrap());
    watch.spawn().unwrap()
}

fn watch_during_refresh(w: &World) -> String {
    let (old, refresh) = w.write_creds(now_ms() + 5 * HOUR);
    let openclaw = w.home.join(".openclaw");
    std::fs::write(openclaw.join("openclaw.json"), r#"{"meta":{"lastTouchedVersion":"2026.5.20"}}"#).unwrap();
    let profiles = openclaw.join("agents/main/agent/auth-profiles.json");
    std::fs::create_dir_all(profiles.parent().unwrap()).unwrap();
    std::fs::write(&profiles, r#"{"version":1,"profiles":{}}"#).unwrap();
    let env = openclaw.join(".env");
    let env_other = "# OpenClaw's environment\nOPENCLAW_GATEWAY_PORT=18789\n";
    std::fs::write(&env, env_other).unwrap();
    let targets = [env.clone(), profiles.clone()];

    // The watcher, as the unit runs it: every target at start, then on every change.
    let log = w.dir.path().join("cred-sync.log");
    let mut watcher = spawn_watcher(w, &env, &profiles, &log);
    let holds = |t: &PathBuf, token: &str| std::fs::read_to_string(t).is_ok_and(|s| s.contains(token));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !targets.iter().all(|t| holds(t, &old)) {
        assert!(watcher.try_wait().unwrap().is_none(), "{}: cred-sync --watch exited", w.v());
        assert!(Instant::now() < deadline, "{}: the watcher's first sync never reached the targets", w.v());
        std::thread::sleep(Duration::from_millis(20));
    }

    // From here on every version of each target is read; the real CLI refreshes (--force:
    // cli-poke's own write of the old token, due now, then the CLI's temp + rename or in place).
    let observer = TargetObserver::start(&targets);
    let poked = Instant::now();
    let out = w.run(w.cli_poke().arg("--force"));
    assert_eq!(out.code, 0, "{}: {}", w.v(), out.stderr);
    let issued = w.mock.issued();
    assert_eq!(issued.len(), 1, "{}: one refresh", w.v());
    let new = issued[0].access.clone();
    assert_eq!(w.current().0, new, "{}", w.v());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !targets.iter().all(|t| holds(t, &new)) {
        assert!(watcher.try_wait().unwrap().is_none(), "{}: cred-sync --watch exited", w.v());
        assert!(Instant::now() < deadline, "{}: the new token never reached every target", w.v());
        std::thread::sleep(Duration::from_millis(20));
    }
    let delivered = poked.elapsed();
    // A moment for any later write (there must be none that changes the token).
    std::thread::sleep(Duration::from_millis(500));
    let seen = observer.finish();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(watcher.id()).unwrap()), nix::sys::signal::SIGTERM)
        .unwrap();
    watcher.wait().unwrap();

    // Every version: complete, and the old or the new token, in that order (never back).
    let secrets: Vec<String> =
        [refresh.clone()].into_iter().chain(issued.iter().filter_map(|i| i.refresh.clone())).collect();
    let mut versions = std::collections::BTreeMap::<&std::path::Path, Vec<&str>>::new();
    for (path, bytes) in &seen {
        let token = target_token(path, bytes, env_other)
            .unwrap_or_else(|why| panic!("{}: a version of {} was not whole: {why}", w.v(), path.display()));
        let text = String::from_utf8_lossy(bytes);
        assert!(!secrets.iter().any(|r| text.contains(r.as_str())), "{}: a refresh token in {}", w.v(), path.display());
        let which = if token == old {
            "old"
        } else if token == new {
            "new"
        } else {
            panic!("{}: {} held a third token ({})", w.v(), path.display(), fingerprint(&token))
        };
        let list = versions.entry(path).or_default();
        if list.last() != Some(&which) {
            list.push(which);
        }
    }
    for t in &targets {
        let list = versions.get(t.as_path()).map(Vec::as_slice).unwrap_or_default();
        assert!(list == ["new"] || list == ["old", "new"], "{}: {} went {list:?}", w.v(), t.display());
        let final_text = std::fs::read(t).unwrap();
        assert_eq!(target_token(t, &final_text, env_other).unwrap(), new, "{}: final state", w.v());
        assert!(!secrets.iter().any(|r| String::from_utf8_lossy(&final_text).contains(r.as_str())), "{}", w.v());
    }
    // Nothing printed holds a token; the forced write (the old token, due now) is no error.
    let printed = format!(
        "{}{}",
        std::fs::read_to_string(&log).unwrap(),
        std::fs::read_to_string(w.dir.path().join("cred-sync.out")).unwrap()
    );
    assert!(!has_token_shape(&printed), "{}: a token in cred-sync's output", w.v());
    for t in [&old, &new].into_iter().chain(&secrets) {
        assert!(!printed.contains(t.as_str()), "{}", w.v());
    }
    assert!(printed.contains(&fingerprint(&new)), "{}: the new token's fingerprint is logged:\n{printed}", w.v());
    assert!(!printed.contains("error"), "{}: cred-sync logged an error during the refresh:\n{printed}", w.v());
    w.assert_no_lock_left();
    let count = |t: &PathBuf| seen.iter().filter(|(p, _)| p == t).count();
    let forced_rewrote = versions.values().any(|l| l.first() == Some(&"old"));
    format!(
        "targets old → new only, never half-written, no refresh token (versions read: .env {}, auth-profiles.json {}; the forced write {}; new token everywhere {:.1}s after the poke started)",
        count(&env),
        count(&profiles),
        if forced_rewrote { "rewrote the old token" } else { "wrote nothing" },
        delivered.as_secs_f64()
    )
}

/// `cred-sync --watch` with a `.env` and an `auth-profiles.json` target while the real CLI
/// refreshes (`cli-poke --force`): every version of each target is the old token or the new
/// one, complete, never a refresh token.
#[test]
fn watch_targets_go_old_to_new_only_while_the_real_cli_refreshes() {
    for_each_build("cred-sync --watch during --force", watch_during_refresh);
}

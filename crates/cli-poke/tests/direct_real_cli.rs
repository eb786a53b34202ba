//! `cli-poke --direct` with the real Claude Code CLI 2.1.332 on the same file: one token family.
//!
//! The build is the one `scripts/install-claude-for-tests.sh DEST` installs as
//! `DEST/bin/claude-2.1.332`; point the tests at it with `KEEPER_CLAUDE_DIR=DEST/bin` (or
//! `KEEPER_CLAUDE_2_1_332=…`). Without it they skip loudly; with `KEEPER_REQUIRE_CLAUDE=1` (CI)
//! they fail. As in `real_cli.rs`, each runs in a network namespace of its own with only loopback
//! up; the CLI and cli-poke reach `tests/anthropic-mock` through `HTTPS_PROXY`.

mod common;

use common::{BIN, HOUR, MINUTE, has_token_shape, now_ms};
use keeper_anthropic_mock::{Request, RequestKind, TokenEndpoint, fingerprint, isolate_network};
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The 2.1.332 build, or None after a loud banner (a panic under `KEEPER_REQUIRE_CLAUDE=1`).
fn claude_2_1_332() -> Option<PathBuf> {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let required = std::env::var("KEEPER_REQUIRE_CLAUDE").is_ok_and(|v| v.trim() == "1");
    let program =
        std::env::var_os("KEEPER_CLAUDE_2_1_332").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
            std::env::var_os("KEEPER_CLAUDE_DIR")
                .filter(|v| !v.is_empty())
                .map(|d| PathBuf::from(d).join("claude-2.1.332"))
        });
    let reason = match &program {
        None => {
            "KEEPER_CLAUDE_2_1_332 and KEEPER_CLAUDE_DIR not set (scripts/install-claude-for-tests.sh DEST, then KEEPER_CLAUDE_DIR=DEST/bin)"
        }
        Some(_) if !nix::unistd::geteuid().is_root() => "a private network namespace needs root",
        Some(p) => {
            assert!(p.is_file(), "{test}: {} does not exist", p.display());
            return program;
        }
    };
    assert!(!required, "{test}: {reason} (KEEPER_REQUIRE_CLAUDE=1 makes this a failure)");
    let bar = "!".repeat(100);
    let _ = writeln!(std::io::stderr().lock(), "\n{bar}\n!!! SKIPPED {test}: {reason}; the test did NOT run\n{bar}\n");
    None
}

struct World {
    base: common::MockHome,
    claude: PathBuf,
}

impl std::ops::Deref for World {
    type Target = common::MockHome;
    fn deref(&self) -> &common::MockHome {
        &self.base
    }
}

impl World {
    fn new(claude: PathBuf) -> Self {
        Self { base: common::MockHome::new(), claude }
    }

    /// A file as 2.1.332 signs in: both tokens live at the mock, the login's end 30 days out.
    fn write_creds(&self, expires_ms: i64) -> (String, String) {
        let (access, refresh) = (common::access_token(), common::refresh_token());
        let doc = json!({
            "claudeAiOauth": {
                "accessToken": access,
                "refreshToken": refresh,
                "expiresAt": expires_ms,
                "refreshTokenExpiresAt": now_ms() + 30 * 24 * HOUR,
                "scopes": ["user:inference", "user:profile", "user:sessions:claude_code", "user:mcp_servers", "user:file_upload"],
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

    fn oauth(&self) -> Value {
        let v: Value = serde_json::from_slice(&std::fs::read(&self.creds).unwrap()).unwrap();
        v["claudeAiOauth"].clone()
    }

    fn clean(cmd: &mut Command) {
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if ["KEEPER_", "CLAUDE_", "ANTHROPIC_"].iter().any(|p| k.starts_with(p)) || k == "JOURNAL_STREAM" {
                cmd.env_remove(&*k);
            }
        }
    }

    /// cli-poke on this home, pointed at the mock, with the real CLI as its CLI.
    fn cli_poke(&self) -> Command {
        let mut cmd = Command::new(BIN);
        Self::clean(&mut cmd);
        cmd.env("KEEPER_CONFIG", "/dev/null")
            .env("HOME", &self.home)
            .env("KEEPER_STATE_DIR", self.dir.path().join("state"))
            .arg("--cli")
            .arg(&self.claude);
        self.mock.apply_env(&mut cmd);
        cmd
    }

    /// The real CLI as a user's session runs it: `claude -p 'say ok'`, one retry.
    fn spawn_cli(&self) -> std::process::Child {
        let mut cmd = Command::new(&self.claude);
        Self::clean(&mut cmd);
        cmd.env("HOME", &self.home)
            .env("CLAUDE_CODE_MAX_RETRIES", "1")
            .args(["-p", "say ok"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.mock.apply_env(&mut cmd);
        cmd.spawn().unwrap()
    }

    fn run(&self, cmd: &mut Command) -> (i32, String) {
        let out = cmd.output().unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!has_token_shape(&all), "something token-shaped in cli-poke's output:\n{all}");
        for issued in self.mock.issued() {
            assert!(!all.contains(&issued.access), "an issued access token in cli-poke's output");
            assert!(issued.refresh.as_ref().is_none_or(|r| !all.contains(r.as_str())), "an issued refresh token");
        }
        (out.status.code().unwrap(), all)
    }

    fn token_requests(&self) -> Vec<Request> {
        self.mock.requests().into_iter().filter(|r| matches!(r.kind, RequestKind::OAuthToken { .. })).collect()
    }

    fn assert_no_lock_left(&self) {
        for p in [
            self.home.join(".claude.lock"),
            self.claude_dir.join(".oauth_refresh.lock"),
            self.claude_dir.join(".oauth_refresh.lock.owner"),
            self.claude_dir.join(".storage-write.lock"),
        ] {
            assert!(!p.exists(), "{} was left behind", p.display());
        }
    }
}

fn refresh_fp(r: &Request) -> Option<String> {
    match &r.kind {
        RequestKind::OAuthToken { refresh_fingerprint, .. } => refresh_fingerprint.clone(),
        _ => None,
    }
}

fn wait_for(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the CLI never finished");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn in_a_namespace(test: fn(World)) {
    let Some(claude) = claude_2_1_332() else { return };
    let name = std::thread::current().name().unwrap_or("direct_real_cli").to_owned();
    let joined = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            isolate_network().unwrap();
            test(World::new(claude));
        })
        .unwrap()
        .join();
    if let Err(panic) = joined {
        std::panic::resume_unwind(panic);
    }
}

/// A direct refresh, then the real CLI: it uses the new access token, and its own next refresh
/// (forced) presents the refresh token the direct refresh wrote and succeeds; a direct refresh
/// after that rotates from the CLI's. One family throughout: no reuse at the endpoint.
#[test]
fn after_a_direct_refresh_the_real_cli_refreshes_from_its_tokens() {
    in_a_namespace(|w| {
        let (_, refresh0) = w.write_creds(now_ms() + 30 * MINUTE);
        // 1. The direct refresh.
        let (code, out) = w.run(w.cli_poke().arg("--direct"));
        assert_eq!(code, 0, "{out}");
        let issued = w.mock.issued();
        assert_eq!(issued.len(), 1);
        let (access1, refresh1) = (issued[0].access.clone(), issued[0].refresh.clone().unwrap());
        assert_eq!(w.oauth()["accessToken"], access1.as_str());
        assert_eq!(refresh_fp(&w.token_requests()[0]), Some(fingerprint(&refresh0)));

        // 2. The real CLI reads what the direct refresh wrote: 8 hours left, no refresh, and its
        //    API call carries the new access token.
        let mut cli = w.spawn_cli();
        let status = wait_for(&mut cli, Duration::from_secs(120));
        assert!(status.success(), "claude -p: {status}");
        assert_eq!(w.token_requests().len(), 1, "the CLI did not need to refresh");
        let turns = w.mock.messages();
        assert!(!turns.is_empty(), "the CLI made no API call");
        assert!(
            turns.iter().all(|t| t.token_fingerprint.as_deref() == Some(fingerprint(&access1).as_str())),
            "the CLI used another token: {turns:?}"
        );

        // 3. The CLI's own refresh (cli-poke --force: expiresAt to now, then the CLI refreshes):
        //    it presents the direct refresh's token, which the endpoint accepts.
        let (code, out) = w.run(w.cli_poke().arg("--force"));
        assert_eq!(code, 0, "{out}");
        let reqs = w.token_requests();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert_eq!(
            refresh_fp(&reqs[1]),
            Some(fingerprint(&refresh1)),
            "the CLI refreshed from the direct refresh's token"
        );
        assert_eq!(reqs[1].status, 200);
        let issued = w.mock.issued();
        assert_eq!(w.oauth()["accessToken"], issued[1].access.as_str());
        let refresh2 = issued[1].refresh.clone().unwrap();
        assert_eq!(w.oauth()["refreshToken"], refresh2.as_str());

        // 4. And a direct refresh after the CLI's rotates from the CLI's token.
        let (code, out) = w.run(w.cli_poke().args(["--direct", "--force"]));
        assert_eq!(code, 0, "{out}");
        let reqs = w.token_requests();
        assert_eq!(refresh_fp(&reqs[2]), Some(fingerprint(&refresh2)));
        assert_eq!(w.mock.refresh_reuses(), 0, "the family is intact");
        let v: Value = serde_json::from_slice(&std::fs::read(&w.creds).unwrap()).unwrap();
        assert_eq!(v["trustedDeviceToken"], "opaque-device");
        assert_eq!(v["mcpOAuth"]["srv|1"]["accessToken"], "mcp-opaque");
        w.assert_no_lock_left();
        let _ = writeln!(std::io::stderr().lock(), "direct_real_cli: direct -> CLI -> direct, 3 rotations, 0 reuses");
    });
}

/// While the real CLI refreshes (its token request hangs), `--direct` finds its live locks: it
/// waits, breaks none, sends nothing and gives up (exit 4). Once the CLI is killed, leaving its
/// locks and owner record, the next `--direct` takes them over from the dead pid and refreshes
/// with the refresh token the CLI never got to use.
#[test]
fn direct_waits_for_the_real_clis_locks_and_takes_over_a_dead_clis() {
    in_a_namespace(|w| {
        let (_, refresh) = w.write_creds(now_ms() + 2 * MINUTE);
        w.mock.set_token_endpoint(TokenEndpoint::Blackhole);
        let mut cli = w.spawn_cli();
        let owner = w.claude_dir.join(".oauth_refresh.lock.owner");
        let deadline = Instant::now() + Duration::from_secs(30);
        let record = loop {
            if let Ok(r) = std::fs::read_to_string(&owner) {
                if !r.is_empty() {
                    break r;
                }
            }
            assert!(Instant::now() < deadline, "the CLI never took its refresh lock");
            std::thread::sleep(Duration::from_millis(20));
        };
        let before = std::fs::read(&w.creds).unwrap();
        let start = Instant::now();
        let (code, out) = w.run(w.cli_poke().arg("--direct"));
        assert_eq!(code, 4, "{out}");
        assert!(out.contains(&format!("pid {}, alive", cli.id())), "{out}");
        assert!((5..=20).contains(&start.elapsed().as_secs()), "{:?}", start.elapsed());
        assert_eq!(w.token_requests().len(), 1, "only the CLI's own request");
        assert_eq!(std::fs::read(&w.creds).unwrap(), before);
        assert_eq!(std::fs::read_to_string(&owner).unwrap(), record, "the live holder's record is untouched");

        cli.kill().unwrap();
        cli.wait().unwrap();
        w.mock.set_token_endpoint(TokenEndpoint::default());
        let start = Instant::now();
        let (code, out) = w.run(w.cli_poke().arg("--direct"));
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("its owner record names pid"), "{out}");
        assert!(start.elapsed() < Duration::from_secs(20), "{:?}", start.elapsed());
        let reqs = w.token_requests();
        assert_eq!(reqs.len(), 2);
        assert_eq!(refresh_fp(&reqs[1]), Some(fingerprint(&refresh)));
        assert_eq!(w.oauth()["accessToken"], w.mock.issued()[0].access.as_str());
        assert_eq!(w.mock.refresh_reuses(), 0);
        w.assert_no_lock_left();
    });
}

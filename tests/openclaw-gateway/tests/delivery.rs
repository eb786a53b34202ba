//! The real OpenClaw gateway judges cred-sync's delivery: the real `cred-sync` binary writes the
//! CLI's new token the way the units run it, and the verdict is the token the running gateway
//! sends to the mock on its next turns, with no restart (the same gateway PID, the restart hook
//! never run), for every agent. docs/ARCHITECTURE.md ("Delivery") describes the design;
//! `upstream.rs` pins the OpenClaw behaviour it rests on.

use claude_stand_in::tokens::{access_token, refresh_token};
use keeper_anthropic_mock::fingerprint;
use keeper_gateway_test::{
    GATEWAY_TOKEN, Gateway, GatewayOptions, Generation, OpenClawHome, Output, Turn, isolated_mock, ms_from_now,
    openclaw_or_skip, run,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const HOURS_8: Duration = Duration::from_secs(8 * 3600);
/// cred-sync runs OpenClaw up to three times (paste, agents list, paste again) plus `secrets
/// reload`: far above what that takes on 2 loaded cores, only a hang trips it.
const SYNC_LIMIT: Duration = Duration::from_secs(600);

fn cred_sync_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| keeper_install_tests::build_workspace_packages(&["cred-sync"]).join("cred-sync"))
}

/// The Claude CLI's side of a test: its credentials file (written by rename, as 2.1.197+ does)
/// and the keeper's state and hook logs, beside an [`OpenClawHome`].
struct Keeper<'a> {
    home: &'a OpenClawHome<'a>,
    dir: tempfile::TempDir,
}

impl<'a> Keeper<'a> {
    fn new(home: &'a OpenClawHome<'a>) -> Self {
        let dir = tempfile::Builder::new().prefix("keeper-delivery.").tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".claude")).unwrap();
        Self { home, dir }
    }

    fn creds(&self) -> PathBuf {
        self.dir.path().join(".claude/.credentials.json")
    }

    fn hook_log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn hook_runs(&self, name: &str) -> usize {
        std::fs::read_to_string(self.hook_log(name)).map_or(0, |t| t.matches("--batch--").count())
    }

    /// The CLI refreshed: a new access token expiring in `life`.
    fn refreshed(&self, life: Duration) -> String {
        let access = access_token();
        let expires = ms_from_now(life);
        let json = format!(
            r#"{{"claudeAiOauth":{{"accessToken":"{access}","refreshToken":"{}","expiresAt":{expires},"scopes":["user:inference","user:profile"],"subscriptionType":"max"}}}}"#,
            refresh_token()
        );
        let tmp = self.creds().with_extension("tmp");
        std::fs::write(&tmp, json).unwrap();
        std::fs::rename(&tmp, self.creds()).unwrap();
        access
    }

    /// `cred-sync` once, as the units run it: OpenClaw's environment (this home, the telemetry
    /// opt-outs), the targets, hooks that record their runs; `extra` adds variables (the
    /// keeper's config may carry `OPENCLAW_GATEWAY_TOKEN`).
    fn sync(&self, targets: &[String], nudge: Option<&str>, extra: &[(&str, &str)]) -> (Output, Vec<Value>) {
        let mut cmd = Command::new(cred_sync_bin());
        let openclaw = self.home.openclaw(&[]);
        cmd.env_clear();
        for (k, v) in openclaw.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        cmd.env("KEEPER_STATE_DIR", self.dir.path().join("state")).arg("--from").arg(self.creds());
        // paste-token takes 3–5 s on an idle machine, up to a minute on 2 loaded cores.
        cmd.arg("--openclaw-cmd").arg(self.home.program()).args(["--paste-timeout", "300s"]);
        for t in targets {
            cmd.arg("--to").arg(t);
        }
        let record = |name: &str| format!("{{ echo --batch--; cat; }} >> '{}'", self.hook_log(name).display());
        cmd.arg("--restart-cmd").arg(record("restart"));
        cmd.arg("--nudge-cmd").arg(nudge.map_or_else(|| record("nudge"), |n| format!("{}; {n}", record("nudge"))));
        cmd.envs(extra.iter().copied());
        let start = Instant::now();
        let out = run(cmd, None, SYNC_LIMIT);
        eprintln!("[{}] cred-sync took {:.1} s, exit {:?}", test_name(), start.elapsed().as_secs_f64(), out.code);
        let lines = out.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        (out, lines)
    }
}

/// One real gateway at a time in this binary: two at once on 2 cores make every turn and paste
/// several times slower (the verdicts do not change, the time limits get close).
fn one_gateway_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn test_name() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

fn turn(gateway: &Gateway<'_>, agent: &str, what: &str) -> Turn {
    let turn = gateway.turn(agent);
    eprintln!("[{}] turn ({what}, agent {agent}): {}", test_name(), turn.summary());
    if !turn.ok && turn.output.contains(SUPERSEDED) {
        // docs/UPSTREAM.md: 2026.9.6 fails a turn that arrives while it re-prepares the agent's
        // model runtime (after models.authRefresh); the same turn again goes through. Counted
        // and shown, not hidden: it is a failed request a user would see.
        eprintln!("[{}] turn ({what}, agent {agent}) hit OpenClaw's re-preparation race; once more", test_name());
        let again = gateway.turn(agent);
        eprintln!("[{}] turn ({what}, agent {agent}, again): {}", test_name(), again.summary());
        return again;
    }
    turn
}

/// 2026.9.6's error for a turn that raced the re-preparation of the agent's model runtime.
const SUPERSEDED: &str = "prepared model runtime plugin generation was superseded";

/// Every request of the turn carried `token`.
fn assert_carries(turn: &Turn, token: &str, what: &str) {
    let fp = fingerprint(token);
    assert!(turn.ok && !turn.requests.is_empty(), "{what}: {}\n{}", turn.summary(), turn.output);
    assert!(
        turn.fingerprints().iter().all(|f| *f == fp),
        "{what}: every request should carry {fp}: {}",
        turn.summary()
    );
}

/// Regression (issue 11): 2026.9.6's `paste-token` without `--agent` fails as soon as a second
/// agent exists ("Pass --agent <id>"), so `cred-sync --to openclaw-paste` exited 6 on every
/// sync for any user with two or more agents. Now it pastes into the shared store through the
/// default agent; the running gateway is told, so each agent's very next request carries the
/// new token, and nothing is restarted.
#[test]
fn regression_paste_failed_as_soon_as_a_second_agent_existed() {
    openclaw_or_skip!(Generation::Sqlite);
    let _serial = one_gateway_at_a_time();
    let (_mock_dir, mock) = isolated_mock();
    let home = OpenClawHome::new(Generation::Sqlite, &mock, &["main", "second"]);
    let keeper = Keeper::new(&home);
    let gateway = Gateway::start(&home, GatewayOptions::default());
    eprintln!("[{}] gateway ready after {:.1} s", test_name(), gateway.ready_after().as_secs_f64());
    let pid = gateway.pid();

    let first = keeper.refreshed(HOURS_8);
    let (out, lines) = keeper.sync(&["openclaw-paste".to_owned()], None, &[]);
    assert_eq!(out.code, Some(0), "cred-sync: {}", out.text());
    assert!(out.stderr.contains("several agents; pasting into the shared store"), "{}", out.stderr);
    assert_eq!((&lines[0]["delivery"], &lines[0]["restart"]), (&"told".into(), &false.into()), "{lines:?}");
    for agent in ["main", "second"] {
        assert_carries(&turn(&gateway, agent, "first token"), &first, agent);
    }

    // The CLI's next refresh: told, so the very next request of each agent carries it.
    let second = keeper.refreshed(HOURS_8 + Duration::from_secs(60));
    let (out, lines) = keeper.sync(&["openclaw-paste".to_owned()], None, &[]);
    assert_eq!(out.code, Some(0), "cred-sync: {}", out.text());
    assert_eq!(lines[0]["delivery"], "told", "{lines:?}");
    for agent in ["main", "second"] {
        assert_carries(&turn(&gateway, agent, "after the rotation"), &second, agent);
    }
    assert_eq!(gateway.pid(), pid, "the gateway was not restarted");
    assert_eq!((keeper.hook_runs("restart"), keeper.hook_runs("nudge")), (0, 0), "no hook ran");
}

/// A paste that cannot tell the gateway (its auth token is only in the gateway's environment)
/// is followed by `openclaw secrets reload`, and when that cannot reach it either, by the
/// restart hook. Given the gateway's token (what the keeper's config can carry), the same paste
/// tells the gateway itself: its next request carries the new token, and no hook runs.
#[test]
fn sqlite_a_paste_the_gateway_was_not_told_of_falls_back_to_the_restart_hook() {
    openclaw_or_skip!(Generation::Sqlite);
    let _serial = one_gateway_at_a_time();
    let (_mock_dir, mock) = isolated_mock();
    let home = OpenClawHome::new(Generation::Sqlite, &mock, &["main"]);
    let keeper = Keeper::new(&home);
    let first = keeper.refreshed(HOURS_8);
    // Before the gateway runs: nothing to tell yet.
    let (out, _) = keeper.sync(&["openclaw-paste".to_owned()], None, &[]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    let gateway = Gateway::start(&home, GatewayOptions { token_in_config: false, ..GatewayOptions::default() });
    let pid = gateway.pid();
    assert_carries(&turn(&gateway, "main", "first token"), &first, "main");
    let restarts = keeper.hook_runs("restart");

    let second = keeper.refreshed(HOURS_8 + Duration::from_secs(60));
    let (out, lines) = keeper.sync(&["openclaw-paste".to_owned()], None, &[]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(out.stderr.contains("could not tell the running gateway"), "{}", out.stderr);
    assert!(out.stderr.contains("secrets reload"), "{}", out.stderr);
    assert_eq!((&lines[0]["delivery"], &lines[0]["restart"]), (&"untold".into(), &true.into()), "{lines:?}");
    assert_eq!(keeper.hook_runs("restart"), restarts + 1, "the restart hook ran once");
    // Untold, the store is still read: the first request after it may carry the old (still
    // valid) token, the next ones the new (what the restart hook is there to shorten).
    let next = turn(&gateway, "main", "after the untold paste");
    assert!(next.ok, "{}", next.summary());
    assert_carries(&turn(&gateway, "main", "the turn after"), &second, "main");

    // With the gateway's token in its environment, cred-sync's paste tells the gateway.
    let third = keeper.refreshed(HOURS_8 + Duration::from_secs(120));
    let (out, lines) = keeper.sync(&["openclaw-paste".to_owned()], None, &[("OPENCLAW_GATEWAY_TOKEN", GATEWAY_TOKEN)]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(lines[0]["delivery"], "told", "{lines:?}");
    assert_carries(&turn(&gateway, "main", "after the told paste"), &third, "main");
    assert_eq!(keeper.hook_runs("restart"), restarts + 1, "no further restart");
    assert_eq!(gateway.pid(), pid);
}

/// JSON era, three agents: the CLI's refresh (the old token still valid for minutes) reaches
/// every agent through auth-profiles.json without a restart or a nudge; at most one request per
/// agent still carries the old, valid token. When the copy the gateway held had expired (its
/// turns failing), the write alone is never seen; cred-sync notices and runs the nudge
/// (SIGUSR1, the gateway's in-process restart), after which the gateway recovers.
#[test]
fn json_era_rotation_reaches_every_agent_without_a_restart_and_an_expired_copy_is_nudged() {
    openclaw_or_skip!(Generation::Json);
    let _serial = one_gateway_at_a_time();
    let (_mock_dir, mock) = isolated_mock();
    let agents = ["main", "ops", "nova"];
    let home = OpenClawHome::new(Generation::Json, &mock, &agents);
    let keeper = Keeper::new(&home);
    let glob = format!("openclaw-profiles:{}", home.state_dir().join("agents/*/agent/auth-profiles.json").display());
    let env = format!("dotenv:{}", home.dotenv_path().display());
    let targets = [glob, env];
    for agent in agents {
        std::fs::create_dir_all(home.agent_dir(agent)).unwrap();
    }
    let first = keeper.refreshed(HOURS_8);
    let (out, lines) = keeper.sync(&targets, None, &[]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(lines.iter().any(|l| l["delivery"] == "needs-nudge"), "a first copy: {lines:?}");
    let nudges = keeper.hook_runs("nudge");
    let mut gateway = Gateway::start(&home, GatewayOptions::default());
    let pid = gateway.pid();
    for agent in agents {
        assert_carries(&turn(&gateway, agent, "first token"), &first, agent);
    }

    let second = keeper.refreshed(HOURS_8 + Duration::from_secs(60));
    let (out, lines) = keeper.sync(&targets, None, &[]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(lines.iter().all(|l| l["restart"] == false), "{lines:?}");
    assert!(lines.iter().filter(|l| l["kind"] == "openclaw-profiles").all(|l| l["delivery"] == "live"), "{lines:?}");
    let mut stale = 0;
    for agent in agents {
        let t = turn(&gateway, agent, "after the rotation");
        assert!(t.ok, "{}", t.summary());
        let (old, new) = (fingerprint(&first), fingerprint(&second));
        stale += t.fingerprints().iter().filter(|f| **f == old).count();
        assert!(t.fingerprints().iter().all(|f| *f == old || *f == new), "{}", t.summary());
        assert_carries(&turn(&gateway, agent, "the turn after"), &second, agent);
    }
    assert!(stale <= agents.len(), "at most one stale (still valid) request per agent: {stale}");
    eprintln!("[{}] stale-but-valid requests after the rotation: {stale} over {} agents", test_name(), agents.len());
    assert_eq!(gateway.pid(), pid, "no restart");
    assert_eq!((keeper.hook_runs("restart"), keeper.hook_runs("nudge")), (0, nudges), "no hook ran for the rotation");

    // The copy expires before the next refresh reaches it (the keeper was down): turns fail.
    // The tokens it held are dead at Anthropic by then: the mock rejects them, so the gateway's
    // fallback (the `.env` it loaded at start, holding the first token) fails too.
    for dead in [&first, &second] {
        mock.reject_fingerprint(&fingerprint(dead));
    }
    for agent in agents {
        home.write_profile(agent, &second, ms_from_now(Duration::ZERO) - 60_000);
    }
    let failed = turn(&gateway, "main", "with an expired copy");
    let failed = if failed.ok { turn(&gateway, "main", "with an expired copy, again") } else { failed };
    assert!(!failed.ok, "a turn with an expired copy fails: {}", failed.summary());
    // The next refresh: cred-sync sees it replaces an expired copy and nudges the gateway.
    let third = keeper.refreshed(HOURS_8 + Duration::from_secs(120));
    let log_before = gateway.log().matches("http server listening").count();
    let (out, lines) = keeper.sync(&targets, Some(&format!("kill -USR1 {pid}")), &[]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(lines.iter().any(|l| l["delivery"] == "needs-nudge"), "{lines:?}");
    assert_eq!(keeper.hook_runs("nudge"), nudges + 1, "one nudge");
    let start = Instant::now();
    while gateway.log().matches("http server listening").count() == log_before {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the nudged gateway did not listen again:\n{}",
            gateway.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("[{}] in-process restart after the nudge: {:.1} s", test_name(), start.elapsed().as_secs_f64());
    for agent in agents {
        assert_carries(&turn(&gateway, agent, "after the nudge"), &third, agent);
    }
    assert_eq!(gateway.pid(), pid, "a nudge is not a restart");
    assert_eq!(keeper.hook_runs("restart"), 0);
    gateway.stop();
}

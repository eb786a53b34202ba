//! What the real OpenClaw gateway does with a credential written while it runs: the upstream
//! behaviour the keeper's delivery design rests on (docs/ARCHITECTURE.md), pinned so that a new
//! OpenClaw release that changes it fails here first.
//!
//! The verdict is always the fingerprint of the token the gateway sent to the mock, never what
//! OpenClaw says about itself. Each test isolates its network, starts one mock and as few
//! gateways as it can (a start costs 5–40 s on 2 cores, a turn 5–45 s); figures go to stderr
//! (`--nocapture` shows them), assertions are about behaviour, not speed.

use claude_stand_in::tokens::access_token;
use keeper_anthropic_mock::fingerprint;
use keeper_gateway_test::{
    Gateway, GatewayOptions, Generation, OpenClawHome, Turn, isolated_mock, ms_from_now, openclaw_or_skip,
};
use std::time::{Duration, Instant};

const EIGHT_HOURS: Duration = Duration::from_secs(8 * 3600);

/// Prints a figure with the test's name, so parallel tests' lines can be told apart.
fn figure(what: &str, d: Duration) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    eprintln!("[{test}] {what}: {:.1} s", d.as_secs_f64());
}

/// A turn that must succeed, every request carrying `token`.
fn assert_turn_carries(turn: &Turn, token: &str, what: &str) {
    let fp = fingerprint(token);
    assert!(turn.ok, "{what}: the turn failed: {}", turn.summary());
    assert!(!turn.requests.is_empty(), "{what}: the turn made no /v1/messages request: {}", turn.summary());
    assert!(
        turn.fingerprints().iter().all(|f| *f == fp),
        "{what}: expected every request to carry {fp}: {}",
        turn.summary()
    );
}

fn turn(gateway: &Gateway<'_>, agent: &str, what: &str) -> Turn {
    let turn = gateway.turn(agent);
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    eprintln!("[{test}] turn ({what}, agent {agent}): {}", turn.summary());
    turn
}

fn start<'a>(home: &'a OpenClawHome<'a>, options: GatewayOptions) -> Gateway<'a> {
    let gateway = Gateway::start(home, options);
    figure(&format!("gateway {} ready after", home.generation().version()), gateway.ready_after());
    gateway
}

fn paste_ok(home: &OpenClawHome<'_>, token: &str, agent: Option<&str>) -> String {
    let out = home.paste(token, agent, "8h");
    figure(&format!("paste-token {} (agent {agent:?})", fingerprint(token)), out.took);
    assert!(out.success(), "paste-token failed: {}", out.text());
    for line in out.text().lines().filter(|l| l.contains("Warning")) {
        eprintln!("    paste-token said: {line}");
    }
    out.text()
}

fn count(log: &str, what: &str) -> usize {
    log.matches(what).count()
}

const REFRESH_WARNING: &str = "Model auth changes were saved, but the local Gateway could not refresh them";

/// 2026.9.6: `paste-token` that can reach the gateway (its token is in `openclaw.json`) makes it
/// reload (`models.authRefresh`), and the very next request already carries the new token.
///
/// The gateway also starts with `ANTHROPIC_OAUTH_TOKEN` in its environment, as a Docker gateway
/// does: the store profile wins over it at start (the other half of
/// [`env_token_is_read_at_start_only_and_a_store_profile_wins`], here at no extra start).
#[test]
fn sqlite_notified_paste_is_used_by_the_very_next_request() {
    openclaw_or_skip!(Generation::Sqlite);
    let test_start = Instant::now();
    let (_dir, mock) = isolated_mock();
    let home = OpenClawHome::new(Generation::Sqlite, &mock, &["main"]);
    let (old, new, env_var) = (access_token(), access_token(), access_token());
    paste_ok(&home, &old, None);
    let options =
        GatewayOptions { token_in_config: true, extra_env: vec![("ANTHROPIC_OAUTH_TOKEN".into(), env_var.clone())] };
    let gateway = start(&home, options);
    assert_turn_carries(
        &turn(&gateway, "main", "first"),
        &old,
        "before the paste (the store profile over ANTHROPIC_OAUTH_TOKEN at start)",
    );

    let refreshes = count(&gateway.log(), "models.authRefresh");
    let text = paste_ok(&home, &new, None);
    assert!(!text.contains(REFRESH_WARNING), "the paste could not reach the gateway: {text}");
    assert!(
        count(&gateway.log(), "models.authRefresh") > refreshes,
        "the gateway logged no models.authRefresh for the paste; its log ends:\n{}",
        tail(&gateway.log())
    );
    let after = turn(&gateway, "main", "after a notified paste");
    assert_eq!(after.first_fingerprint(), Some(fingerprint(&new).as_str()), "{}", after.summary());
    assert_turn_carries(&after, &new, "after a notified paste");
    home.assert_no_token_logged(&[&old, &new, &env_var]);
    figure("whole test", test_start.elapsed());
}

/// 2026.9.6: when `paste-token` cannot reach the gateway (the gateway's token is only in the
/// gateway's environment), it says so and exits 0; the gateway still picks the new token up on
/// its own, but one request late: the first request after the paste carries the old token, the
/// later ones the new.
#[test]
fn sqlite_unannounced_paste_first_request_old_then_new() {
    openclaw_or_skip!(Generation::Sqlite);
    let test_start = Instant::now();
    let (_dir, mock) = isolated_mock();
    let home = OpenClawHome::new(Generation::Sqlite, &mock, &["main"]);
    let (old, new) = (access_token(), access_token());
    // Before the start: a turn without any credential would make the gateway stop looking.
    paste_ok(&home, &old, None);
    let gateway = start(&home, GatewayOptions { token_in_config: false, extra_env: Vec::new() });
    assert_turn_carries(&turn(&gateway, "main", "before the paste"), &old, "before the paste");

    let refreshes = count(&gateway.log(), "models.authRefresh");
    let text = paste_ok(&home, &new, None);
    assert!(text.contains(REFRESH_WARNING), "expected paste-token's warning: {text}");
    assert_eq!(count(&gateway.log(), "models.authRefresh"), refreshes, "the gateway was notified after all");
    let first = turn(&gateway, "main", "first after an unannounced paste");
    assert_turn_carries(&first, &old, "the first turn after an unannounced paste");
    let second = turn(&gateway, "main", "second after an unannounced paste");
    assert_turn_carries(&second, &new, "the second turn after an unannounced paste");
    home.assert_no_token_logged(&[&old, &new]);
    figure("whole test", test_start.elapsed());
}

/// 2026.9.6 with two agents: `paste-token` without `--agent` refuses; `--agent <the default>`
/// writes the shared store, which both agents use; `--agent <the other>` writes that agent's own
/// store, which then wins for it only.
#[test]
fn sqlite_paste_without_agent_fails_with_two_agents_and_default_agent_writes_the_shared_store() {
    openclaw_or_skip!(Generation::Sqlite);
    let test_start = Instant::now();
    let (_dir, mock) = isolated_mock();
    let home = OpenClawHome::new(Generation::Sqlite, &mock, &["main", "second"]);
    let (shared, own) = (access_token(), access_token());

    let refused = home.paste(&shared, None, "8h");
    figure("paste-token without --agent (refused)", refused.took);
    eprintln!("    paste-token without --agent: exit {:?}", refused.code);
    assert!(!refused.success(), "paste-token without --agent succeeded with two agents: {}", refused.text());
    assert!(
        refused.text().contains(
            "Multiple agents are configured, but the model command has no explicit owner. Pass --agent <id>."
        ),
        "{}",
        refused.text()
    );
    assert_eq!(home.listed_default_agent().as_deref(), Some("main"), "agents list --json: the default agent");
    paste_ok(&home, &shared, Some("main"));

    let gateway = start(&home, GatewayOptions::default());
    assert_turn_carries(&turn(&gateway, "main", "shared store"), &shared, "the default agent");
    assert_turn_carries(
        &turn(&gateway, "second", "shared store"),
        &shared,
        "the other agent, without a profile of its own",
    );

    paste_ok(&home, &own, Some("second"));
    assert_turn_carries(&turn(&gateway, "second", "own store"), &own, "the other agent, after --agent second");
    assert_turn_carries(&turn(&gateway, "main", "shared store"), &shared, "the default agent, after --agent second");
    home.assert_no_token_logged(&[&shared, &own]);
    figure("whole test", test_start.elapsed());
}

/// 2026.6.1: an atomic rewrite of `auth-profiles.json` is seen without a restart, one request
/// late: the first request after it carries the old token, the later ones the new.
#[test]
fn json_profile_rewrite_is_seen_without_restart_first_request_old_then_new() {
    openclaw_or_skip!(Generation::Json);
    let test_start = Instant::now();
    let (_dir, mock) = isolated_mock();
    let home = OpenClawHome::new(Generation::Json, &mock, &["main"]);
    let (old, new) = (access_token(), access_token());
    home.write_profile("main", &old, ms_from_now(EIGHT_HOURS));
    let gateway = start(&home, GatewayOptions::default());
    assert_turn_carries(&turn(&gateway, "main", "before the rewrite"), &old, "before the rewrite");

    home.write_profile("main", &new, ms_from_now(EIGHT_HOURS));
    let first = turn(&gateway, "main", "first after the rewrite");
    assert_turn_carries(&first, &old, "the first turn after the rewrite");
    let second = turn(&gateway, "main", "second after the rewrite");
    assert_turn_carries(&second, &new, "the second turn after the rewrite");
    home.assert_no_token_logged(&[&old, &new]);
    figure("whole test", test_start.elapsed());
}

/// 2026.6.1: once a turn has failed because the stored token expired, a valid rewrite is not
/// seen (the turns keep failing, nothing reaches the API) until `kill -USR1`, the gateway's
/// in-process restart, after which the new token is used.
#[test]
fn json_after_a_failed_turn_a_rewrite_is_not_seen_until_sigusr1() {
    openclaw_or_skip!(Generation::Json);
    let test_start = Instant::now();
    let (_dir, mock) = isolated_mock();
    let home = OpenClawHome::new(Generation::Json, &mock, &["main"]);
    let (valid, expired, renewed) = (access_token(), access_token(), access_token());
    home.write_profile("main", &valid, ms_from_now(EIGHT_HOURS));
    let mut gateway = start(&home, GatewayOptions::default());
    assert_turn_carries(&turn(&gateway, "main", "valid"), &valid, "before the expiry");

    // An expired copy (as when the keeper was down): one request late, as every rewrite.
    home.write_profile("main", &expired, ms_from_now(Duration::ZERO) - 60_000);
    assert_turn_carries(&turn(&gateway, "main", "first after the expired rewrite"), &valid, "one request late");
    let failed = turn(&gateway, "main", "expired");
    assert!(!failed.ok, "a turn with an expired stored token succeeded: {}", failed.summary());
    assert!(failed.requests.is_empty(), "an expired token was sent: {}", failed.summary());
    assert!(
        failed.output.contains(r#"No API key found for provider "anthropic""#),
        "expected the missing-credential error: {}",
        failed.output
    );

    home.write_profile("main", &renewed, ms_from_now(EIGHT_HOURS));
    for n in 1..=2 {
        let still = turn(&gateway, "main", &format!("after the valid rewrite, #{n}"));
        assert!(
            !still.ok && still.requests.is_empty(),
            "the rewrite was seen after a failed turn: {}",
            still.summary()
        );
    }

    // usr1_restart panics if the process exits instead (a restart that is not in-process).
    let took = gateway.usr1_restart();
    figure("SIGUSR1 in-process restart, until listening again", took);
    assert_turn_carries(&turn(&gateway, "main", "after SIGUSR1"), &renewed, "after SIGUSR1");
    home.assert_no_token_logged(&[&valid, &expired, &renewed]);
    figure("whole test", test_start.elapsed());
}

/// 2026.9.6: `ANTHROPIC_OAUTH_TOKEN` from `OPENCLAW_STATE_DIR/.env` is read at start and only
/// then (a rewrite while it runs is not seen, not even one request late), and a store profile
/// pasted while it runs wins over it. (That a store profile also wins at start, over the
/// variable in the gateway's environment, is pinned by
/// [`sqlite_notified_paste_is_used_by_the_very_next_request`].)
#[test]
fn env_token_is_read_at_start_only_and_a_store_profile_wins() {
    openclaw_or_skip!(Generation::Sqlite);
    let test_start = Instant::now();
    let (_dir, mock) = isolated_mock();
    let home = OpenClawHome::new(Generation::Sqlite, &mock, &["main"]);
    let (dotenv_first, dotenv_second, stored) = (access_token(), access_token(), access_token());

    home.write_dotenv(&[("ANTHROPIC_OAUTH_TOKEN", &dotenv_first)]);
    let gateway = start(&home, GatewayOptions::default());
    assert_turn_carries(&turn(&gateway, "main", ".env at start"), &dotenv_first, "the .env's token, read at start");

    home.write_dotenv(&[("ANTHROPIC_OAUTH_TOKEN", &dotenv_second)]);
    // Two turns: the second tells "not re-read" from "one request late".
    for n in 1..=2 {
        let t = turn(&gateway, "main", &format!(".env rewritten, #{n}"));
        assert_turn_carries(&t, &dotenv_first, "after the .env was rewritten (not re-read)");
    }

    paste_ok(&home, &stored, None);
    assert_turn_carries(&turn(&gateway, "main", "store profile pasted"), &stored, "the store profile over the .env");
    home.assert_no_token_logged(&[&dotenv_first, &dotenv_second, &stored]);
    figure("whole test", test_start.elapsed());
}

/// 2026.6.1, the other path: `ANTHROPIC_OAUTH_TOKEN` in the gateway's own environment. A
/// gateway that started on it does not see a profile written while it runs (not one request
/// late: not at all), as a gateway that failed for lack of a credential does not; after
/// `kill -USR1` (the variable still set) the profile wins over the variable.
#[test]
fn json_env_token_gateway_sees_a_new_profile_only_after_sigusr1_then_the_profile_wins() {
    openclaw_or_skip!(Generation::Json);
    let test_start = Instant::now();
    let (_dir, mock) = isolated_mock();
    let home = OpenClawHome::new(Generation::Json, &mock, &["main"]);
    let (env_var, stored) = (access_token(), access_token());

    let options =
        GatewayOptions { token_in_config: true, extra_env: vec![("ANTHROPIC_OAUTH_TOKEN".into(), env_var.clone())] };
    let mut gateway = start(&home, options);
    assert_turn_carries(&turn(&gateway, "main", "environment at start"), &env_var, "the environment's token");

    home.write_profile("main", &stored, ms_from_now(EIGHT_HOURS));
    for n in 1..=2 {
        let t = turn(&gateway, "main", &format!("after the profile appeared, #{n}"));
        assert_turn_carries(&t, &env_var, "a profile written while running on the environment (not seen)");
    }

    let took = gateway.usr1_restart();
    figure("SIGUSR1 in-process restart, until listening again", took);
    assert_turn_carries(
        &turn(&gateway, "main", "after SIGUSR1"),
        &stored,
        "after SIGUSR1: the profile over the environment",
    );

    home.assert_no_token_logged(&[&env_var, &stored]);
    figure("whole test", test_start.elapsed());
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

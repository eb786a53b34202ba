//! REAUTH: the flag file created once per episode, the webhook told once, both cleared after
//! recovery.

mod common;

use common::{Fixture, HOUR, MINUTE, Webhook, has_token_shape, now_ms};
use credmap::Secret;

/// The flag's `key=value` lines.
fn flag_field(f: &Fixture, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(&f.flag).ok()?;
    text.lines().find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

fn dead(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("CLAUDE_STAND_IN_DEAD", "1")
}

#[test]
fn flag_created_once_notified_once_and_cleared_after_recovery() {
    let f = Fixture::new();
    let hook = Webhook::start();
    let (_, r0) = f.write_creds(now_ms() + 2 * MINUTE);

    let out = f.run(dead(&mut f.cmd()).args(["--notify-url", &hook.url]));
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(out.stderr.contains("error: REAUTH needed:"), "{}", out.stderr);
    let since = flag_field(&f, "since").expect("the flag exists");
    assert!(flag_field(&f, "reason").unwrap().contains("logged-out stub"));
    assert_eq!(flag_field(&f, "refresh_token"), Some(Secret::new(&r0).to_string()));
    assert_eq!(flag_field(&f, "credentials"), Some(f.creds.display().to_string()));
    assert_eq!(flag_field(&f, "notified").as_deref(), Some("yes"));
    let bodies = hook.received();
    assert_eq!(bodies.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("claude auth login") && text.contains(&f.creds.display().to_string()), "{text}");
    assert!(!has_token_shape(text) && !text.contains(&r0), "{text}");
    assert_eq!(body.as_object().unwrap().len(), 1, "Mattermost/Slack-compatible: just text");

    // The same episode: the stub is on disk now; every run says so, nobody is told twice.
    for _ in 0..3 {
        let out = f.run(dead(&mut f.cmd()).args(["--notify-url", &hook.url]));
        assert_eq!(out.code, 3, "{}", out.all());
    }
    assert_eq!(hook.received().len(), 1);
    assert_eq!(flag_field(&f, "since"), Some(since));
    assert_eq!(f.calls().len(), 1, "the CLI is not run against the stub");

    // A human logged in again; the next refresh ends the episode, and whoever was told hears so.
    f.write_creds(now_ms() + 2 * MINUTE);
    let out = f.run(f.cmd().args(["--notify-url", &hook.url]));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!f.flag.exists());
    assert!(out.stderr.contains("REAUTH resolved: the token refreshed again"), "{}", out.stderr);
    let bodies = hook.received();
    assert_eq!(bodies.len(), 2);
    assert!(
        bodies[1].contains("recovered: the token refreshed again") && !has_token_shape(&bodies[1]),
        "{}",
        bodies[1]
    );
    assert_eq!(f.run(f.cmd().args(["--notify-url", &hook.url, "--force"])).code, 0);
    assert_eq!(hook.received().len(), 2, "recovered once");

    // A new episode is a new notification.
    f.write_creds(now_ms() + 2 * MINUTE);
    assert_eq!(f.run(dead(&mut f.cmd()).args(["--notify-url", &hook.url])).code, 3);
    assert_eq!(hook.received().len(), 3);
}

#[test]
fn a_failed_notification_is_retried_until_delivered() {
    let f = Fixture::new();
    let hook = Webhook::start();
    *hook.status.lock().unwrap() = "500 Internal Server Error";
    f.write_creds(now_ms() + 2 * MINUTE);
    let out = f.run(dead(&mut f.cmd()).args(["--notify-url", &hook.url]));
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("REAUTH notification failed") && out.stderr.contains("HTTP 500"), "{}", out.stderr);
    assert!(!out.stderr.contains("/hooks/keeper"), "the webhook URL is a secret: {}", out.stderr);
    assert_eq!(flag_field(&f, "notified").as_deref(), Some("failed"));
    f.run(f.cmd().args(["--notify-url", &hook.url]));
    assert_eq!(hook.received().len(), 2, "retried");
    *hook.status.lock().unwrap() = "200 OK";
    f.run(f.cmd().args(["--notify-url", &hook.url]));
    assert_eq!(flag_field(&f, "notified").as_deref(), Some("yes"));
    f.run(f.cmd().args(["--notify-url", &hook.url]));
    assert_eq!(hook.received().len(), 3, "delivered once, then quiet");
}

#[test]
fn a_flag_without_a_webhook_is_notified_once_one_is_configured() {
    let f = Fixture::new();
    f.write_creds(now_ms() + 2 * MINUTE);
    assert_eq!(f.run(dead(&mut f.cmd())).code, 3);
    assert_eq!(flag_field(&f, "notified").as_deref(), Some("no"));
    let hook = Webhook::start();
    f.run(f.cmd().args(["--notify-url", &hook.url]));
    f.run(f.cmd().args(["--notify-url", &hook.url]));
    assert_eq!(hook.received().len(), 1);
}

#[test]
fn reauth_for_cli_2_1_112_from_its_debug_log_leaves_the_file_alone() {
    let f = Fixture::new();
    let hook = Webhook::start();
    f.write_creds(now_ms() - 10 * MINUTE);
    let before = std::fs::read(&f.creds).unwrap();
    let keep = |f: &Fixture| {
        let mut cmd = f.cmd();
        cmd.args(["--notify-url", &hook.url])
            .env("CLAUDE_STAND_IN_DEAD", "1")
            .env("CLAUDE_STAND_IN_ON_FAILURE", "keep");
        cmd
    };
    let out = f.run(&mut keep(&f));
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(flag_field(&f, "reason").unwrap().contains("debug log shows the token endpoint answered HTTP 400"));
    assert_eq!(std::fs::read(&f.creds).unwrap(), before);
    // the file still looks refreshable, so the next run pokes again: same episode, one message
    assert_eq!(f.run(&mut keep(&f)).code, 3);
    assert_eq!(f.calls().len(), 2);
    assert_eq!(hook.received().len(), 1);
}

#[test]
fn the_stub_alone_is_enough_without_any_message() {
    let f = Fixture::new();
    f.write_creds(now_ms() + MINUTE);
    let out = f.run(dead(&mut f.cmd()).env("CLAUDE_STAND_IN_QUIET_FAILURE", "1"));
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(!out.stderr.contains("claude stdout"), "{}", out.stderr);
    assert!(flag_field(&f, "reason").unwrap().contains("logged-out stub"));
}

#[test]
fn a_new_login_ends_the_episode_before_the_next_refresh() {
    let f = Fixture::new();
    f.write_creds(now_ms() + MINUTE);
    assert_eq!(f.run(dead(&mut f.cmd())).code, 3);
    assert!(f.flag.exists());
    // `claude auth login` wrote a fresh 8-hour credential: not due, and the flag goes.
    f.write_creds(now_ms() + 8 * HOUR);
    let out = f.run(&mut f.cmd());
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(!f.flag.exists(), "{}", out.stderr);
    assert!(out.stderr.contains("the credentials were replaced"), "{}", out.stderr);
}

#[test]
fn a_known_dead_refresh_token_keeps_its_flag_while_not_due() {
    // --force on a dead token whose access token is still valid: REAUTH, expiry put back, and the
    // later "not due" runs keep the flag, since the refresh token on disk is the dead one.
    let f = Fixture::new();
    f.write_creds(now_ms() + 5 * HOUR);
    let keep = |f: &Fixture| {
        let mut cmd = f.cmd();
        cmd.env("CLAUDE_STAND_IN_DEAD", "1").env("CLAUDE_STAND_IN_ON_FAILURE", "keep");
        cmd
    };
    let out = f.run(keep(&f).arg("--force"));
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(out.stderr.contains("put the original expiry"), "{}", out.stderr);
    let out = f.run(&mut keep(&f));
    assert_eq!(out.code, 1);
    assert!(f.flag.exists());
    assert!(out.stderr.contains("is still present"), "{}", out.stderr);
}

#[test]
fn help_never_shows_the_webhook_url() {
    let f = Fixture::new();
    let out = f.run(f.bare_cmd().arg("--help").env("KEEPER_NOTIFY_URL", "https://chat.example/hooks/SECRET123"));
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("KEEPER_NOTIFY_URL") && !out.stdout.contains("SECRET123"), "{}", out.stdout);
}

#[test]
fn the_flag_goes_where_it_is_told() {
    let f = Fixture::new();
    f.write_creds(now_ms() + MINUTE);
    let elsewhere = f.dir.path().join("oc");
    std::fs::create_dir(&elsewhere).unwrap();
    assert_eq!(f.run(dead(&mut f.cmd()).env("KEEPER_OPENCLAW_DIR", &elsewhere)).code, 3);
    assert!(elsewhere.join("REAUTH_NEEDED").exists() && !f.flag.exists());
    let custom = f.dir.path().join("flag");
    assert_eq!(f.run(f.cmd().arg("--reauth-flag").arg(&custom)).code, 3);
    assert!(custom.exists());
}

fn endpoint_down(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("CLAUDE_STAND_IN_ENDPOINT_DOWN", "1").env("CLAUDE_STAND_IN_ON_FAILURE", "keep")
}

/// Regression: a token endpoint answering 500 once the access token had expired made every CLI
/// build print "OAuth token has expired", and cli-poke raised REAUTH and told a human to log in;
/// the next run refreshed with the same refresh token. Now: exit 7, no flag, nobody told while
/// the streak is short, and the next good run ends it silently.
#[test]
fn regression_a_transient_500_raised_reauth() {
    let f = Fixture::new();
    let hook = Webhook::start();
    f.write_creds(now_ms() - MINUTE);
    let before = std::fs::read(&f.creds).unwrap();
    let state = f.dir.path().join("state");
    let cmd = |f: &Fixture| {
        let mut cmd = f.cmd();
        cmd.args(["--notify-url", &hook.url]).env("KEEPER_STATE_DIR", &state);
        cmd
    };
    let out = f.run(endpoint_down(&mut cmd(&f)));
    assert_eq!(out.code, 7, "{}", out.all());
    assert!(out.stderr.contains("refresh failed, will retry: the token endpoint answered HTTP 500"), "{}", out.stderr);
    assert!(!out.stderr.contains("REAUTH"), "{}", out.stderr);
    assert!(!f.flag.exists());
    assert_eq!(std::fs::read(&f.creds).unwrap(), before);
    assert!(hook.received().is_empty(), "a streak of one minute is nobody's business");
    assert!(state.join("refresh-failing").exists());
    // The endpoint is back: the same refresh token refreshes; the streak ends without a message.
    let out = f.run(&mut cmd(&f));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("recovered: the token refreshed again after 1 failed refreshes"), "{}", out.stderr);
    assert!(!state.join("refresh-failing").exists());
    assert!(hook.received().is_empty());
}

/// Regression: a refresh failing for hours (network down, the host asleep through the window)
/// was either a false REAUTH or, once that was fixed, silent. Now a human hears of it once the
/// access token has been expired for --notify-failing-after, at most once per --notify-every,
/// and "recovered" when it ends.
#[test]
fn regression_a_long_failure_streak_told_nobody() {
    let f = Fixture::new();
    let hook = Webhook::start();
    f.write_creds(now_ms() - 40 * MINUTE);
    let state = f.dir.path().join("state");
    let cmd = |f: &Fixture| {
        let mut cmd = f.cmd();
        cmd.args(["--notify-url", &hook.url]).env("KEEPER_STATE_DIR", &state);
        cmd
    };
    for _ in 0..3 {
        assert_eq!(f.run(endpoint_down(&mut cmd(&f))).code, 7);
    }
    let bodies = hook.received();
    assert_eq!(bodies.len(), 1, "once per --notify-every (1h): {bodies:?}");
    assert!(bodies[0].contains("refresh has been failing since") && bodies[0].contains("expired 40m"), "{}", bodies[0]);
    assert!(!has_token_shape(&bodies[0]));
    assert!(!f.flag.exists(), "still no REAUTH");
    let out = f.run(endpoint_down(cmd(&f).args(["--notify-every", "0s"])));
    assert_eq!(out.code, 7);
    assert_eq!(hook.received().len(), 2, "--notify-every 0s posts every time");
    let out = f.run(&mut cmd(&f));
    assert_eq!(out.code, 0, "{}", out.all());
    let bodies = hook.received();
    assert_eq!(bodies.len(), 3);
    assert!(bodies[2].contains("recovered: the token refreshed again, after 4 failed refreshes"), "{}", bodies[2]);
}

/// Sets `claudeAiOauth.refreshTokenExpiresAt` (the login's hard end) in the fixture's file.
fn set_login_end(f: &Fixture, end_ms: i64) {
    let mut v = f.creds_json();
    v["claudeAiOauth"]["refreshTokenExpiresAt"] = serde_json::json!(end_ms);
    std::fs::write(&f.creds, v.to_string()).unwrap();
}

/// A Max login ends ~30 days after `claude auth login` whatever the refreshes do; the keeper
/// learnt of it only once the login was dead. Now a human is warned days ahead, through the same
/// webhook, at most once a day, with when and what to do; and the REAUTH that follows names the
/// 30-day limit.
#[test]
fn regression_the_logins_hard_end_was_learnt_only_once_dead() {
    let f = Fixture::new();
    let hook = Webhook::start();
    let clock = f.dir.path().join("clock");
    let t0 = now_ms();
    keeper_core::clock::set_fake_now_ms(&clock, t0).unwrap();
    let state = f.dir.path().join("state");
    let run = |extra: &[&str]| {
        let mut cmd = f.cmd();
        cmd.env("KEEPER_FAKE_CLOCK_FILE", &clock).env("KEEPER_STATE_DIR", &state).args(["--notify-url", &hook.url]);
        f.run(cmd.args(extra))
    };
    f.write_creds(t0 + 30 * HOUR);
    let end = t0 + 2 * 24 * HOUR;
    set_login_end(&f, end);
    let end_text = credmap::ExpiresAt::from_millis(end).unwrap().to_string();

    // 2 days left: outside a 1-day window nothing is said
    let out = run(&["--warn-login-within", "1d"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(!out.stderr.contains("login ends") && hook.received().is_empty(), "{}", out.stderr);

    // inside the default 3 days: a warning in the log and one post, saying when and what to do
    let out = run(&[]);
    assert_eq!(out.code, 1, "not due as before: {}", out.all());
    assert!(out.stderr.contains(&format!("warning: the Claude login ends {end_text} (in 2d)")), "{}", out.stderr);
    let posts = hook.received();
    assert_eq!(posts.len(), 1);
    let text = serde_json::from_str::<serde_json::Value>(&posts[0]).unwrap()["text"].as_str().unwrap().to_owned();
    for needle in
        [end_text.as_str(), "claude auth login", "claude setup-token", "30 days", &f.creds.display().to_string()]
    {
        assert!(text.contains(needle), "{needle:?} missing from {text}");
    }
    assert!(!has_token_shape(&text), "{text}");
    assert!(state.join("login-ending").is_file(), "the last post is remembered in the state dir");

    // every run warns in the log, the webhook hears it at most once a day
    for _ in 0..3 {
        let out = run(&[]);
        assert!(out.stderr.contains("the Claude login ends"), "{}", out.stderr);
    }
    assert_eq!(hook.received().len(), 1);
    keeper_core::clock::set_fake_now_ms(&clock, t0 + 23 * HOUR).unwrap();
    run(&[]);
    assert_eq!(hook.received().len(), 1, "not within the day");
    keeper_core::clock::set_fake_now_ms(&clock, t0 + 25 * HOUR).unwrap();
    let out = run(&[]);
    assert!(out.stderr.contains("(in 23h)"), "{}", out.stderr);
    assert_eq!(hook.received().len(), 2, "a day later, once more");
    // the variable --help names
    let mut cmd = f.cmd();
    cmd.env("KEEPER_FAKE_CLOCK_FILE", &clock).env("KEEPER_STATE_DIR", &state).env("KEEPER_WARN_LOGIN_WITHIN", "0s");
    assert!(!f.run(&mut cmd).stderr.contains("the Claude login ends"), "0 turns it off");

    // a new login (a new end, far away) forgets the warning
    set_login_end(&f, t0 + 30 * 24 * HOUR);
    run(&[]);
    assert!(!state.join("login-ending").exists());
    assert_eq!(hook.received().len(), 2);

    // the login reached its end: the CLI's stub says loginEnded: time_limit, and the REAUTH says so
    let stub = serde_json::json!({"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": 0,
        "scopes": ["user:inference"], "subscriptionType": "max", "loginEnded": "time_limit"}});
    std::fs::write(&f.creds, stub.to_string()).unwrap();
    let out = run(&[]);
    assert_eq!(out.code, 3, "{}", out.all());
    let reason = flag_field(&f, "reason").unwrap();
    assert!(reason.contains("time_limit") && reason.contains("30 days"), "{reason}");
    let last = hook.received().pop().unwrap();
    assert!(last.contains("30 days"), "{last}");

    let help = f.run(f.cmd().arg("--help")).stdout;
    assert!(help.contains("--warn-login-within") && help.contains("KEEPER_WARN_LOGIN_WITHIN"), "{help}");
}

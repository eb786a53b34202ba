//! `--notify-failed UNIT`: what openclaw-keeper-notify@.service runs when a keeper unit fails.

mod common;

use common::{Fixture, Webhook, has_token_shape, now_ms};

fn report(f: &Fixture, unit: &str) -> std::process::Command {
    let mut cmd = f.bare_cmd();
    cmd.arg("--notify-failed").arg(unit).arg("--state-dir").arg(f.dir.path().join("state"));
    cmd
}

#[test]
fn logs_the_failed_unit_and_where_its_log_is_without_a_webhook() {
    let f = Fixture::new();
    let out = f.run(&mut report(&f, "openclaw-keeper-refresh.service"));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains(
            "error: openclaw-keeper-refresh.service failed; its log: journalctl -u openclaw-keeper-refresh.service"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    assert!(f.calls().is_empty(), "no CLI is run");

    let out = f.run(report(&f, "openclaw-keeper-sync.service").arg("--user-unit"));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("journalctl --user-unit openclaw-keeper-sync.service"), "{}", out.stderr);
}

#[test]
fn posts_once_per_interval_and_names_a_raised_reauth_flag() {
    let f = Fixture::new();
    let hook = Webhook::start();
    // Credentials are not read: a file with tokens must not matter, and no token may appear.
    f.write_creds(now_ms() + 3_600_000);
    std::fs::write(&f.flag, "since=2026-01-01T00:00:00Z\n").unwrap();

    let out = f.run(report(&f, "openclaw-keeper-refresh.service").args(["--notify-url", &hook.url]));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("posted the failure of openclaw-keeper-refresh.service"), "{}", out.stderr);
    assert!(out.stderr.contains("REAUTH flag"), "{}", out.stderr);
    let bodies = hook.received();
    assert_eq!(bodies.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("openclaw-keeper-refresh.service failed"), "{text}");
    assert!(text.contains("journalctl -u openclaw-keeper-refresh.service"), "{text}");
    assert!(text.contains("claude auth login") && text.contains(&f.flag.display().to_string()), "{text}");
    assert!(!has_token_shape(text), "{text}");

    // Within --notify-every (1h): logged again, not posted again.
    let out = f.run(report(&f, "openclaw-keeper-refresh.service").args(["--notify-url", &hook.url]));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("error: openclaw-keeper-refresh.service failed"), "{}", out.stderr);
    assert!(out.stderr.contains("not posting"), "{}", out.stderr);
    assert_eq!(hook.received().len(), 1);
    // Another unit is another message; a zero interval posts every time.
    f.run(report(&f, "openclaw-keeper-sync.service").args(["--notify-url", &hook.url]));
    assert_eq!(hook.received().len(), 2);
    f.run(report(&f, "openclaw-keeper-refresh.service").args(["--notify-url", &hook.url, "--notify-every", "0s"]));
    assert_eq!(hook.received().len(), 3);
}

#[test]
fn a_failed_post_exits_6_and_is_tried_again_next_time() {
    let f = Fixture::new();
    let hook = Webhook::start();
    *hook.status.lock().unwrap() = "500 Internal Server Error";
    let out = f.run(report(&f, "openclaw-keeper-sync.service").args(["--notify-url", &hook.url]));
    assert_eq!(out.code, 6, "{}", out.all());
    assert!(out.stderr.contains("HTTP 500") && !out.stderr.contains("/hooks/keeper"), "{}", out.stderr);
    *hook.status.lock().unwrap() = "200 OK";
    let out = f.run(report(&f, "openclaw-keeper-sync.service").args(["--notify-url", &hook.url]));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(hook.received().len(), 2, "not held back: the first post failed");
}

#[test]
fn usage_errors() {
    let f = Fixture::new();
    for bad in ["", "a b.service", "../x.service", "$(id).service"] {
        let out = f.run(&mut report(&f, bad));
        assert_eq!(out.code, 64, "{bad:?}: {}", out.all());
    }
    let out = f.run(f.bare_cmd().arg("--user-unit"));
    assert_eq!(out.code, 64, "--user-unit needs --notify-failed: {}", out.all());
    let out = f.run(report(&f, "x.service").args(["--notify-url", "ftp://h/x"]));
    assert_eq!(out.code, 64, "{}", out.all());
}

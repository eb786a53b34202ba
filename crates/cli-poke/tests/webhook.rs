//! Webhooks through the keeper's one HTTP client: every `--notify-format` as a real server
//! receives it, over plain HTTP on 127.0.0.1 and over HTTPS with a throw-away CA trusted through
//! `SSL_CERT_FILE`; an untrusted certificate, a silent server, and the URL kept secret.

mod common;

use common::{Fixture, MINUTE, now_ms};
use credmap::Secret;
use keeper_anthropic_mock::{Answer, Received, WebhookReceiver};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

const UNIT: &str = "openclaw-keeper-refresh.service";
/// The part of every webhook URL that must never be printed.
const SECRET: &str = "S3CRET-hook-9f8e7d";

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap()
}

fn user_agent() -> String {
    format!("openclaw-oauth-keeper/{} cli-poke", env!("CARGO_PKG_VERSION"))
}

/// The text `--notify-failed UNIT` posts (no REAUTH flag raised).
fn unit_failed_text() -> String {
    format!(
        "openclaw-oauth-keeper on {}: {UNIT} failed. See `journalctl -u {UNIT} (or: systemctl status {UNIT})`; \
         `scripts/verify.sh` shows every check.",
        host()
    )
}

/// A plain receiver, or an HTTPS one with its CA in the fixture's directory.
fn receiver(f: &Fixture, https: bool) -> WebhookReceiver {
    if https { WebhookReceiver::https(f.dir.path()).unwrap() } else { WebhookReceiver::http().unwrap() }
}

/// cli-poke with nothing inherited that changes how it posts: no proxy, and `SSL_CERT_FILE`
/// only when `ca` names the receiver's CA.
fn isolated(mut cmd: Command, hook: &WebhookReceiver) -> Command {
    for var in ["SSL_CERT_FILE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        cmd.env_remove(var);
    }
    if let Some(ca) = hook.ca_pem() {
        cmd.env("SSL_CERT_FILE", ca);
    }
    cmd
}

fn report(f: &Fixture, hook: &WebhookReceiver, url: &str) -> Command {
    let mut cmd = isolated(f.bare_cmd(), hook);
    cmd.args(["--notify-failed", UNIT, "--notify-url", url]).arg("--state-dir").arg(f.dir.path().join("state"));
    cmd
}

/// The one request `hook` received, with what every form sends.
fn the_request(hook: &WebhookReceiver, target: &str, content_type: &str) -> Received {
    let got = hook.wait_for(1, Duration::from_secs(5)).unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let r = got.into_iter().next().unwrap();
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, target);
    assert_eq!(r.header("content-type"), Some(content_type), "{r:?}");
    assert_eq!(r.header("user-agent"), Some(user_agent().as_str()), "{r:?}");
    assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()), "{r:?}");
    r
}

fn assert_url_secret(out: &common::Out) {
    assert!(!out.all().contains(SECRET), "the webhook URL is a secret:\n{}", out.all());
}

#[test]
fn slack_form_over_http_and_https() {
    for https in [false, true] {
        let f = Fixture::new();
        let hook = receiver(&f, https);
        let url = hook.url(&format!("/hooks/{SECRET}?channel=ops"));
        let out = f.run(&mut report(&f, &hook, &url));
        assert_eq!(out.code, 0, "https={https}: {}", out.all());
        assert!(out.stderr.contains(&format!("posted the failure of {UNIT}")), "{}", out.stderr);
        assert_url_secret(&out);
        let r = the_request(&hook, &format!("/hooks/{SECRET}?channel=ops"), "application/json");
        assert_eq!(r.body_text(), json!({ "text": unit_failed_text() }).to_string());
        // the default, spelled out, is the same request
        let hook2 = receiver(&f, https);
        let out =
            f.run(report(&f, &hook2, &hook2.url("/h")).args(["--notify-format", "slack", "--notify-every", "0s"]));
        assert_eq!(out.code, 0, "{}", out.all());
        assert_eq!(the_request(&hook2, "/h", "application/json").body, r.body);
    }
}

#[test]
fn ntfy_form_over_http_and_https() {
    for https in [false, true] {
        let f = Fixture::new();
        let hook = receiver(&f, https);
        let url = hook.url(&format!("/{SECRET}"));
        let out = f.run(report(&f, &hook, &url).args(["--notify-format", "ntfy"]));
        assert_eq!(out.code, 0, "https={https}: {}", out.all());
        assert_url_secret(&out);
        let r = the_request(&hook, &format!("/{SECRET}"), "text/plain; charset=utf-8");
        assert_eq!(r.body_text(), unit_failed_text());
        assert_eq!(
            r.header("title"),
            Some(format!("openclaw-oauth-keeper on {}: a keeper unit failed", host()).as_str())
        );
        assert_eq!(r.header("tags"), Some("x,unit_failed"));
        assert_eq!(r.header("priority"), Some("4"));
    }
}

#[test]
fn json_form_over_http_and_https() {
    for https in [false, true] {
        let f = Fixture::new();
        let hook = receiver(&f, https);
        let url = hook.url(&format!("/events/{SECRET}"));
        let out = f.run(report(&f, &hook, &url).env("KEEPER_NOTIFY_FORMAT", "json"));
        assert_eq!(out.code, 0, "https={https}: {}", out.all());
        assert_url_secret(&out);
        let r = the_request(&hook, &format!("/events/{SECRET}"), "application/json");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"event": "unit_failed", "text": unit_failed_text(), "host": host(), "fingerprint": null})
        );
    }
}

/// A REAUTH episode in the json form, the format from the config file: `reauth_needed` with the
/// dead refresh token's fingerprint (never the token), then `recovered` with the same one.
#[test]
fn json_form_names_the_episode_and_its_fingerprint_never_a_token() {
    let f = Fixture::new();
    let hook = WebhookReceiver::https(f.dir.path()).unwrap();
    let config = f.dir.path().join("keeper.env");
    std::fs::write(&config, format!("KEEPER_NOTIFY_URL={}\nKEEPER_NOTIFY_FORMAT=json\n", hook.url("/e"))).unwrap();
    let run = |dead: bool| {
        let mut cmd = isolated(f.cmd(), &hook);
        cmd.env("KEEPER_CONFIG", &config);
        if dead {
            cmd.env("CLAUDE_STAND_IN_DEAD", "1");
        }
        f.run(&mut cmd)
    };
    let (access, refresh) = f.write_creds(now_ms() + 2 * MINUTE);
    let out = run(true);
    assert_eq!(out.code, 3, "{}", out.all());
    let got = hook.wait_for(1, Duration::from_secs(5)).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["event"], "reauth_needed");
    assert_eq!(body["host"], host());
    assert_eq!(body["fingerprint"], Secret::new(&refresh).to_string());
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("claude auth login") && text.contains(&f.flag.display().to_string()), "{text}");
    for raw in [&access, &refresh] {
        assert!(!got[0].body_text().contains(raw.as_str()), "a token in the post");
    }
    assert_eq!(body.as_object().unwrap().len(), 4, "{body}");

    f.write_creds(now_ms() + 2 * MINUTE);
    let out = run(false);
    assert_eq!(out.code, 0, "{}", out.all());
    let got = hook.wait_for(2, Duration::from_secs(5)).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(body["event"], "recovered");
    assert_eq!(body["fingerprint"], Secret::new(&refresh).to_string(), "the episode's refresh token");
    assert!(body["text"].as_str().unwrap().contains("recovered: the token refreshed again"), "{body}");
}

/// A certificate that does not chain to the trusted CA: no request is sent, the error says so,
/// `--notify-failed` exits 6, a REAUTH remembers the post as failed (retried next run).
#[test]
fn an_untrusted_certificate_fails_clearly() {
    let f = Fixture::new();
    let hook = WebhookReceiver::https(f.dir.path()).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other = WebhookReceiver::https(other_dir.path()).unwrap();
    let url = hook.url(&format!("/hooks/{SECRET}"));
    // trusted: another CA; and: nothing but the system's or the built-in roots
    for trust in [Some(other.ca_pem().unwrap()), None] {
        let mut cmd = report(&f, &hook, &url);
        cmd.env_remove("SSL_CERT_FILE");
        if let Some(ca) = trust {
            cmd.env("SSL_CERT_FILE", ca);
        }
        let out = f.run(&mut cmd);
        assert_eq!(out.code, 6, "{}", out.all());
        // UnknownIssuer; BadSignature against the other CA, which has the same name
        assert!(
            out.stderr.contains("the webhook's TLS handshake failed: invalid peer certificate: "),
            "{}",
            out.stderr
        );
        let against = if trust.is_some() { "SSL_CERT_FILE " } else { "(SSL_CERT_FILE names" };
        assert!(out.stderr.contains(against), "says what it trusted: {}", out.stderr);
        assert_url_secret(&out);
    }
    assert_eq!(hook.received(), [], "nothing is sent to a server that is not trusted");

    // the same in a REAUTH: the flag says failed, the next run tries again
    f.write_creds(now_ms() + 2 * MINUTE);
    let mut cmd = isolated(f.cmd(), &hook);
    cmd.env("SSL_CERT_FILE", other.ca_pem().unwrap()).env("CLAUDE_STAND_IN_DEAD", "1").args(["--notify-url", &url]);
    let out = f.run(&mut cmd);
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(out.stderr.contains("REAUTH notification failed: the webhook's TLS handshake failed"), "{}", out.stderr);
    assert_url_secret(&out);
    assert!(std::fs::read_to_string(&f.flag).unwrap().contains("notified=failed"));
}

/// A server that accepts and never answers: the post gives up at --notify-timeout.
#[test]
fn a_silent_webhook_times_out_instead_of_hanging() {
    let f = Fixture::new();
    for https in [false, true] {
        let hook = receiver(&f, https);
        hook.set_answer(Answer::Silent);
        let started = Instant::now();
        let out = f.run(report(&f, &hook, &hook.url(&format!("/{SECRET}"))).args(["--notify-timeout", "1s"]));
        let took = started.elapsed();
        assert_eq!(out.code, 6, "{}", out.all());
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert!(took >= Duration::from_secs(1), "gave up before the timeout: {took:?}");
        assert!(
            out.stderr.contains("the webhook did not answer within 1s (--notify-timeout)"),
            "https={https}: {}",
            out.stderr
        );
        assert_url_secret(&out);
        assert_eq!(hook.received().len(), 1, "the request was sent");
    }
}

#[test]
fn an_error_status_and_a_refused_connection_fail_without_the_url() {
    let f = Fixture::new();
    let hook = WebhookReceiver::http().unwrap();
    hook.set_answer(Answer::Status(500));
    let out = f.run(&mut report(&f, &hook, &hook.url(&format!("/{SECRET}"))));
    assert_eq!(out.code, 6, "{}", out.all());
    assert!(out.stderr.contains("the webhook answered HTTP 500"), "{}", out.stderr);
    assert_url_secret(&out);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = f.run(&mut report(&f, &hook, &format!("http://127.0.0.1:{port}/{SECRET}")));
    assert_eq!(out.code, 6, "{}", out.all());
    assert!(out.stderr.contains("posting to the webhook failed: network: "), "{}", out.stderr);
    assert_url_secret(&out);
}

#[test]
fn the_format_is_checked_and_named_in_help() {
    let f = Fixture::new();
    let hook = WebhookReceiver::http().unwrap();
    let out = f.run(report(&f, &hook, &hook.url("/x")).args(["--notify-format", "teams"]));
    assert_eq!(out.code, 64, "{}", out.all());
    assert!(
        out.stderr.contains("slack") && out.stderr.contains("ntfy") && out.stderr.contains("json"),
        "{}",
        out.stderr
    );
    assert_eq!(hook.received(), []);
    let out = f.run(f.bare_cmd().arg("--help"));
    for needle in
        ["--notify-format", "KEEPER_NOTIFY_FORMAT", "--notify-timeout", "KEEPER_NOTIFY_TIMEOUT", "reauth_needed"]
    {
        assert!(out.stdout.contains(needle), "{needle}: {}", out.stdout);
    }
}

//! The Messages API through the proxy, with curl as the client.

mod common;

use common::{curl, finish, message_body, spawn_curl, token};
use keeper_anthropic_mock::{Mock, RequestKind, fingerprint};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const MESSAGES: &str = "https://api.anthropic.com/v1/messages?beta=true";

fn start() -> (tempfile::TempDir, Mock) {
    let dir = tempfile::tempdir().unwrap();
    let mock = Mock::start(dir.path()).unwrap();
    (dir, mock)
}

/// `event: NAME\ndata: JSON\n\n` blocks, parsed.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut lines = block.lines();
            let name = lines.next().unwrap().strip_prefix("event: ").expect("event line").to_owned();
            let data = lines.next().unwrap().strip_prefix("data: ").expect("data line");
            assert!(lines.next().is_none(), "one data line per event: {block:?}");
            (name, serde_json::from_str(data).expect("data is JSON"))
        })
        .collect()
}

#[test]
fn stream_reply_is_the_six_sse_events_in_order() {
    let (_dir, mock) = start();
    mock.set_reply("hello from the mock");
    let tok = token("oat", 'a');
    let auth = format!("authorization: Bearer {tok}");
    let body = message_body(true, Some("claude-sonnet-4-5"));
    let r = curl(&mock, &[MESSAGES, "-H", &auth, "-H", "content-type: application/json", "-d", &body]);
    assert_eq!((r.status, r.content_type.as_str()), (200, "text/event-stream"), "{r:?}");

    let events = sse_events(&r.body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str());
    }
    let msg = &events[0].1["message"];
    assert_eq!(msg["model"], "claude-sonnet-4-5");
    assert_eq!((msg["type"].as_str(), msg["role"].as_str()), (Some("message"), Some("assistant")));
    assert!(msg["stop_reason"].is_null() && msg["content"].as_array().unwrap().is_empty());
    assert_eq!(msg["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(events[1].1["content_block"]["text"], "");
    assert_eq!(events[2].1["delta"], serde_json::json!({"type": "text_delta", "text": "hello from the mock"}));
    assert_eq!(events[4].1["delta"]["stop_reason"], "end_turn");

    let [req] = mock.messages().try_into().unwrap();
    assert_eq!(req.connect_host, "api.anthropic.com");
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/v1/messages?beta=true"));
    assert_eq!(req.token_fingerprint, Some(fingerprint(&tok)));
    assert_eq!((req.status, req.stream, req.model.as_deref()), (200, true, Some("claude-sonnet-4-5")));
    assert!(req.user_agent.as_deref().unwrap().starts_with("curl/"));
}

#[test]
fn non_stream_reply_is_a_json_message_and_x_api_key_counts_as_the_token() {
    let (_dir, mock) = start();
    let tok = token("api", 'k');
    let key = format!("x-api-key: {tok}");
    let r = curl(&mock, &[MESSAGES, "-H", &key, "-d", &message_body(false, None)]);
    assert_eq!((r.status, r.content_type.as_str()), (200, "application/json"), "{r:?}");
    let msg: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(msg["model"], "claude-opus-4-6");
    assert_eq!(msg["content"], serde_json::json!([{"type": "text", "text": "ok"}]));
    assert_eq!(msg["stop_reason"], "end_turn");
    let req = &mock.messages()[0];
    assert_eq!((req.token_fingerprint.clone(), req.stream, req.model.clone()), (Some(fingerprint(&tok)), false, None));
}

#[test]
fn debug_output_shows_fingerprints_never_tokens() {
    let (_dir, mock) = start();
    let tok = token("oat", 's');
    let auth = format!("authorization: Bearer {tok}");
    assert_eq!(curl(&mock, &[MESSAGES, "-H", &auth, "-d", &message_body(true, None)]).status, 200);
    let shown = format!("{:?} {mock:?}", mock.requests());
    assert!(shown.contains(&fingerprint(&tok)), "{shown}");
    assert!(!shown.contains("sssssssss"), "raw token in Debug output: {shown}");
}

#[test]
fn rejected_and_missing_tokens_get_401() {
    let (_dir, mock) = start();
    let (old, new) = (token("oat", 'o'), token("oat", 'n'));
    mock.reject_fingerprint(&fingerprint(&old));
    let send = |tok: Option<&str>| {
        let auth = tok.map_or_else(|| "x-other: 1".into(), |t| format!("authorization: Bearer {t}"));
        curl(&mock, &[MESSAGES, "-H", &auth, "-d", &message_body(true, None)])
    };
    let r = send(Some(&old));
    assert_eq!(r.status, 401);
    let err: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "authentication_error");
    assert_eq!(
        err["error"]["message"],
        "OAuth token has expired. Please obtain a new token or refresh your existing token."
    );
    assert_eq!(err["request_id"], "req_mock");
    assert_eq!(send(Some(&new)).status, 200);
    let r = send(None);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("x-api-key header is required"), "{r:?}");
    mock.allow_fingerprint(&fingerprint(&old));
    assert_eq!(send(Some(&old)).status, 200);

    let statuses: Vec<(Option<String>, u16)> =
        mock.messages().into_iter().map(|r| (r.token_fingerprint, r.status)).collect();
    assert_eq!(
        statuses,
        [(Some(fingerprint(&old)), 401), (Some(fingerprint(&new)), 200), (None, 401), (Some(fingerprint(&old)), 200)]
    );
}

#[test]
fn keeps_the_connection_alive_across_requests() {
    let (_dir, mock) = start();
    let auth = format!("authorization: Bearer {}", token("oat", 'k'));
    // One curl invocation with two URLs reuses the connection (and sends `-d` to both).
    let out = common::curl_cmd(
        &mock,
        &[
            MESSAGES,
            "https://api.anthropic.com/v1/messages/count_tokens",
            "-H",
            &auth,
            "-d",
            &message_body(false, None),
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("{\"input_tokens\":10}"), "{out:?}");
    let reqs = mock.requests();
    let kinds: Vec<_> = reqs.iter().map(|r| (r.kind.clone(), r.status)).collect();
    assert_eq!(kinds, [(RequestKind::Messages, 200), (RequestKind::CountTokens, 200)]);
    assert_eq!(reqs[0].connection, reqs[1].connection, "second request came on a new connection");
    // A separate invocation is a separate connection.
    curl(&mock, &[MESSAGES, "-H", &auth, "-d", &message_body(false, None)]);
    assert_ne!(mock.requests()[2].connection, reqs[0].connection);
}

#[test]
fn reads_chunked_and_expect_continue_bodies() {
    let (dir, mock) = start();
    let auth = format!("authorization: Bearer {}", token("oat", 'c'));
    let body = message_body(true, Some("chunked-model"));
    let r = curl(&mock, &[MESSAGES, "-H", &auth, "-H", "Transfer-Encoding: chunked", "-d", &body]);
    assert_eq!(r.status, 200, "{r:?}");
    // curl sends `Expect: 100-continue` for a body this large and would stall a second without it.
    let big = dir.path().join("big.json");
    std::fs::write(
        &big,
        serde_json::json!({"model": "big-model", "stream": false, "pad": "x".repeat(200_000)}).to_string(),
    )
    .unwrap();
    let started = Instant::now();
    let r = curl(&mock, &[MESSAGES, "-H", &auth, "--data-binary", &format!("@{}", big.display())]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(started.elapsed() < Duration::from_millis(900), "{:?}", started.elapsed());
    let models: Vec<_> = mock.messages().into_iter().map(|r| (r.model, r.stream)).collect();
    assert_eq!(models, [(Some("chunked-model".into()), true), (Some("big-model".into()), false)]);
}

#[test]
fn other_paths_get_404_profile_gets_an_account_and_plain_proxying_502() {
    let (_dir, mock) = start();
    let r = curl(&mock, &["https://api.anthropic.com/v1/models"]);
    assert_eq!(r.status, 404);
    let err: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(err["error"]["type"], "not_found_error");
    let r = curl(&mock, &["https://api.anthropic.com/api/oauth/profile", "-A", "claude-cli/2.1.0 (external, cli)"]);
    assert_eq!(r.status, 200);
    let profile: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(profile["account"]["email"], "mock@example.invalid");
    let r = curl(&mock, &["http://api.anthropic.com/v1/messages"]);
    assert_eq!(r.status, 502);

    let reqs = mock.requests();
    let seen: Vec<_> = reqs.iter().map(|r| (r.path.as_str(), r.status, r.kind.clone())).collect();
    assert_eq!(
        seen,
        [
            ("/v1/models", 404, RequestKind::Other),
            ("/api/oauth/profile", 200, RequestKind::Profile),
            ("http://api.anthropic.com/v1/messages", 502, RequestKind::Other),
        ]
    );
    assert_eq!(reqs[1].user_agent.as_deref(), Some("claude-cli/2.1.0 (external, cli)"));
    assert_eq!(reqs[2].connect_host, "");
    assert!(mock.messages().is_empty());
}

#[test]
fn reply_delay_holds_a_turn_in_flight_and_wait_sees_it_arrive() {
    let (_dir, mock) = start();
    mock.set_reply_delay(Duration::from_millis(1500));
    let auth = format!("authorization: Bearer {}", token("oat", 'd'));
    let mut child = spawn_curl(&mock, &[MESSAGES, "-H", &auth, "-d", &message_body(true, None)]);
    let seen = mock.wait_for_messages(1, Duration::from_secs(10)).unwrap();
    assert_eq!(seen.len(), 1);
    assert!(child.try_wait().unwrap().is_none(), "the reply should still be held");
    assert_eq!(finish(child).status, 200);
    mock.clear();
    assert!(mock.requests().is_empty());
    let err = mock.wait_for_messages(1, Duration::from_millis(100)).unwrap_err();
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn drop_is_prompt_with_idle_held_and_half_open_connections() {
    let (_dir, mock) = start();
    // Tunnelled but silent (no ClientHello), and a connection that never sends a CONNECT.
    let mut tunnel = TcpStream::connect(("127.0.0.1", mock.port())).unwrap();
    tunnel.write_all(b"CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n\r\n").unwrap();
    let mut buf = [0_u8; 64];
    let n = tunnel.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 Connection established\r\n\r\n"));
    let silent = TcpStream::connect(("127.0.0.1", mock.port())).unwrap();
    // And a turn held by the reply delay.
    mock.set_reply_delay(Duration::from_secs(60));
    let auth = format!("authorization: Bearer {}", token("oat", 'h'));
    let child = spawn_curl(&mock, &[MESSAGES, "-H", &auth, "-d", &message_body(true, None)]);
    mock.wait_for_messages(1, Duration::from_secs(10)).unwrap();

    let started = Instant::now();
    drop(mock);
    assert!(started.elapsed() < Duration::from_secs(1), "drop took {:?}", started.elapsed());
    tunnel.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(tunnel.read(&mut buf).unwrap(), 0, "tunnel closed");
    drop(silent);
    let r = finish(child);
    assert_ne!(r.exit, Some(0), "the held curl fails once the mock is gone: {r:?}");
}

//! The OAuth token endpoint: rotation, reuse detection and the failure modes.

mod common;

use common::{curl, finish, message_body, spawn_curl, token};
use keeper_anthropic_mock::{Mock, RequestKind, TokenEndpoint, fingerprint};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TOKEN_URL: &str = "https://platform.claude.com/v1/oauth/token";
const CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";

fn start() -> (tempfile::TempDir, Mock) {
    let dir = tempfile::tempdir().unwrap();
    let mock = Mock::start(dir.path()).unwrap();
    (dir, mock)
}

/// A JSON refresh request, as the Claude CLI sends it.
fn refresh(mock: &Mock, url: &str, refresh_token: &str) -> (u16, Value) {
    let body = json!({"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID,
                      "scope": "user:inference user:profile"})
    .to_string();
    let r = curl(mock, &[url, "-H", "content-type: application/json", "-A", "axios/1.8.4", "-d", &body]);
    (r.status, serde_json::from_str(&r.body).unwrap_or(Value::Null))
}

#[test]
fn rotation_accepts_a_live_token_once_and_counts_reuse() {
    let (_dir, mock) = start();
    let seed = token("ort", 's');
    mock.add_refresh_token(&seed);
    assert_eq!(mock.live_refresh_tokens(), [fingerprint(&seed)]);

    let (status, answer) = refresh(&mock, TOKEN_URL, &seed);
    assert_eq!(status, 200, "{answer}");
    let [issued] = mock.issued().try_into().unwrap();
    let new_refresh = issued.refresh.clone().unwrap();
    assert_eq!(answer["access_token"], issued.access.as_str());
    assert_eq!(answer["refresh_token"], new_refresh.as_str());
    assert_eq!((answer["token_type"].as_str(), answer["expires_in"].as_u64()), (Some("Bearer"), Some(28_800)));
    assert!(answer.get("refresh_token_expires_in").is_none());
    assert!(answer["scope"].as_str().unwrap().contains("user:inference"));
    assert_eq!(answer["account"]["email_address"], "mock@example.invalid");
    for (t, prefix) in [(&issued.access, "sk-ant-oat01-"), (&new_refresh, "sk-ant-ort01-")] {
        assert!(t.starts_with(prefix) && t.ends_with("AA") && t.len() == 108, "{}", fingerprint(t));
    }
    assert!(!format!("{issued:?}").contains(&issued.access[13..40]), "Debug shows the raw token");
    assert_eq!(mock.live_refresh_tokens(), [fingerprint(&new_refresh)]);

    // The old token again: a reuse.
    let (status, answer) = refresh(&mock, TOKEN_URL, &seed);
    assert_eq!(status, 400);
    assert_eq!(answer, json!({"error": "invalid_grant", "error_description": "Refresh token not found or invalid"}));
    assert_eq!(mock.refresh_reuses(), 1);
    // A token never issued is refused but is no reuse.
    assert_eq!(refresh(&mock, TOKEN_URL, &token("ort", 'x')).0, 400);
    assert_eq!(mock.refresh_reuses(), 1);
    // The rotated-in token works once, on the other host and path too.
    assert_eq!(refresh(&mock, "https://console.anthropic.com/oauth/token", &new_refresh).0, 200);
    assert_eq!(mock.issued().len(), 2);

    let reqs = mock.requests();
    assert_eq!(reqs.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 400, 400, 200]);
    assert_eq!(reqs[3].connect_host, "console.anthropic.com");
    assert_eq!(reqs[0].user_agent.as_deref(), Some("axios/1.8.4"));
    assert_eq!(
        reqs[0].kind,
        RequestKind::OAuthToken {
            content_type: Some("application/json".into()),
            grant_type: Some("refresh_token".into()),
            client_id: Some(CLIENT_ID.into()),
            scope: Some("user:inference user:profile".into()),
            refresh_fingerprint: Some(fingerprint(&seed)),
        }
    );
}

#[test]
fn rotation_options_shape_the_answer() {
    let (_dir, mock) = start();
    mock.set_token_endpoint(TokenEndpoint::Rotate {
        expires_in: 600,
        refresh_token_expires_in: Some(86_400),
        include_refresh_token: false,
    });
    let seed = token("ort", 'o');
    mock.add_refresh_token(&seed);
    let (status, answer) = refresh(&mock, TOKEN_URL, &seed);
    assert_eq!(status, 200);
    assert_eq!((answer["expires_in"].as_u64(), answer["refresh_token_expires_in"].as_u64()), (Some(600), Some(86_400)));
    assert!(answer.get("refresh_token").is_none(), "{}", answer.as_object().unwrap().len());
    assert_eq!(mock.issued()[0].refresh, None);
    assert!(mock.live_refresh_tokens().is_empty());
}

#[test]
fn a_form_body_gets_400_invalid_request() {
    let (_dir, mock) = start();
    let seed = token("ort", 'f');
    mock.add_refresh_token(&seed);
    let form = format!("grant_type=refresh_token&refresh_token={seed}&client_id={CLIENT_ID}");
    let r = curl(&mock, &[TOKEN_URL, "-d", &form]);
    assert_eq!(r.status, 400);
    let answer: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(answer["error"], "invalid_request");
    assert!(answer["error_description"].is_string());
    let RequestKind::OAuthToken { content_type, grant_type, refresh_fingerprint, .. } = &mock.requests()[0].kind else {
        panic!("not recorded as a token request")
    };
    assert_eq!(content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(grant_type.as_deref(), Some("refresh_token"));
    assert_eq!(refresh_fingerprint, &Some(fingerprint(&seed)));
    // Still live: the form request did not consume it.
    assert_eq!(mock.live_refresh_tokens(), [fingerprint(&seed)]);
}

#[test]
fn invalid_grant_and_server_error_modes() {
    let (_dir, mock) = start();
    let seed = token("ort", 'g');
    mock.add_refresh_token(&seed);
    mock.set_token_endpoint(TokenEndpoint::InvalidGrant);
    let (status, answer) = refresh(&mock, TOKEN_URL, &seed);
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_grant")));
    mock.set_token_endpoint(TokenEndpoint::ServerError);
    assert_eq!(refresh(&mock, TOKEN_URL, &seed), (500, json!({"error": "server_error"})));
    assert!(mock.issued().is_empty());
    assert_eq!(mock.refresh_reuses(), 0);
}

#[test]
fn blackhole_never_answers_without_blocking_others_or_drop() {
    let (_dir, mock) = start();
    mock.set_token_endpoint(TokenEndpoint::Blackhole);
    let body = json!({"grant_type": "refresh_token", "refresh_token": token("ort", 'b')}).to_string();
    let timed = spawn_curl(&mock, &["--max-time", "2", TOKEN_URL, "-H", "content-type: application/json", "-d", &body]);
    mock.wait_until(Duration::from_secs(10), |r| !r.is_empty()).unwrap();
    // Other connections are served meanwhile.
    let auth = format!("authorization: Bearer {}", token("oat", 'b'));
    let started = Instant::now();
    let r = curl(&mock, &["https://api.anthropic.com/v1/messages", "-H", &auth, "-d", &message_body(true, None)]);
    assert_eq!(r.status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    let r = finish(timed);
    assert_eq!((r.exit, r.status), (Some(28), 0), "curl should time out: {r:?}");
    assert_eq!(mock.requests()[0].status, 0, "recorded as never answered");

    // A blackholed request still pending does not hold up Drop, and its client sees the close.
    let held = spawn_curl(&mock, &["--max-time", "30", TOKEN_URL, "-H", "content-type: application/json", "-d", &body]);
    mock.wait_until(Duration::from_secs(10), |r| r.len() == 3).unwrap();
    let started = Instant::now();
    drop(mock);
    assert!(started.elapsed() < Duration::from_secs(1), "drop took {:?}", started.elapsed());
    let r = finish(held);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_ne!(r.exit, Some(0), "{r:?}");
}
